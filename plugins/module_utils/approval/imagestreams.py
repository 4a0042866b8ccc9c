# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""ImageStreams on the registry cluster: reading tags, and editing a tag's environment list.

An ImageStreamTag is a view computed from its ImageStream; the tag's annotations are stored
only in ``ImageStream.spec.tags[<tag>].annotations``. A tag that exists only because an image
was pushed has a ``status.tags`` entry and no spec tag; annotating it means creating the spec
tag ``{name, annotations, referencePolicy: {type: Source}}`` without ``from``.

Every write replaces the whole ImageStream carrying the resourceVersion that was read (status
is ignored by the main resource), changing nothing but the one annotation (or adding the one
spec tag). Any push or import to any tag of the stream bumps that version, so a 409 Conflict is
expected: the edit is re-read, recomputed and retried with bounded exponential back-off and
jitter.

The functions above the I/O section are pure and take ImageStreams as dicts. The I/O goes
through kubernetes.core's client layer (``get_api_client``), imported only when used.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import random
import re
import time

from ansible_collections.segmented.registry.plugins.module_utils import kube
from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import (
    EnvironmentsError,
    effective,
    format_value,
    parse_value,
)
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label

API_VERSION = "image.openshift.io/v1"
KIND = "ImageStream"
FIELD_MANAGER = "segmented.registry"

#: Back-off after a 409: min(CAP, BASE * 2 ** (attempt - 1)), half of it random (equal jitter).
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 8.0

# OpenShift validates ImageStream names as path segments matching a docker repository component.
_STREAM = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


class ImageStreamError(Exception):
    """Something on the registry cluster is not as needed; nothing was written."""


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


def check_namespace(namespace, option="namespace"):
    if not isinstance(namespace, str) or not is_dns1123_label(namespace):
        raise ImageStreamError("{0} {1} is not a namespace name: use a DNS-1123 label (lowercase letters, digits "
                               "and '-', like myproject)".format(option, json.dumps(namespace)))
    return namespace


def check_stream(stream, option="stream"):
    if not isinstance(stream, str) or not stream or len(stream) > 255 or not _STREAM.match(stream):
        raise ImageStreamError("{0} {1} is not an image stream name: use lowercase letters and digits, "
                               "separated by '.', '_' or '-' (like app or my-app)".format(option, json.dumps(stream)))
    return stream


def check_tag(tag, option="tag"):
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ImageStreamError("{0} {1} is not an image tag: up to 128 letters, digits, '_', '.' and '-', not "
                               "starting with '.' or '-' (like v1.2.3 or latest)".format(option, json.dumps(tag)))
    return tag


def split_name(name):
    """``stream:tag`` -> (stream, tag), validated."""
    fix = "write it as <stream>:<tag>, like app:v1.2.3 (or give stream and tag separately)"
    if not isinstance(name, str) or name.count(":") != 1 or "@" in name or "/" in name:
        raise ImageStreamError("name {0} is not an image stream tag: {1}".format(json.dumps(name), fix))
    stream, tag = name.split(":")
    if not stream or not tag:
        raise ImageStreamError("name {0} is not an image stream tag: {1}".format(json.dumps(name), fix))
    return check_stream(stream, "the stream in name"), check_tag(tag, "the tag in name")


def resolve_tag_reference(name=None, stream=None, tag=None):
    """(stream, tag) from either ``name`` (``stream:tag``) or ``stream`` and ``tag``."""
    if name is not None:
        if stream is not None or tag is not None:
            raise ImageStreamError("give either name (stream:tag) or stream and tag, not both")
        return split_name(name)
    if stream is None or tag is None:
        raise ImageStreamError("give the image stream tag: name (stream:tag), or both stream and tag")
    return check_stream(stream), check_tag(tag)


# ---------------------------------------------------------------------------------------------
# Reading an ImageStream (pure)
# ---------------------------------------------------------------------------------------------


def _spec_tags(imagestream):
    return ((imagestream.get("spec") or {}).get("tags")) or []


def _status_tags(imagestream):
    return ((imagestream.get("status") or {}).get("tags")) or []


def spec_tag(imagestream, tag):
    for item in _spec_tags(imagestream):
        if item.get("name") == tag:
            return item
    return None


def status_tag(imagestream, tag):
    for item in _status_tags(imagestream):
        if item.get("tag") == tag:
            return item
    return None


def tag_names(imagestream):
    """Every tag of the stream: spec tags and pushed (status-only) tags, sorted."""
    names = set(item.get("name") for item in _spec_tags(imagestream))
    names.update(item.get("tag") for item in _status_tags(imagestream))
    names.discard(None)
    return sorted(names)


def digest(imagestream, tag):
    """The tag's current image (``status.tags[tag].items[0].image``), or None."""
    item = status_tag(imagestream, tag)
    events = (item or {}).get("items") or []
    return events[0].get("image") if events else None


def annotation_value(imagestream, tag, annotation_key):
    item = spec_tag(imagestream, tag)
    return ((item or {}).get("annotations") or {}).get(annotation_key)


def describe(imagestream):
    meta = imagestream.get("metadata") or {}
    return "{0}/{1}".format(meta.get("namespace"), meta.get("name"))


def require_tag(imagestream, tag):
    if spec_tag(imagestream, tag) is None and status_tag(imagestream, tag) is None:
        names = tag_names(imagestream)
        raise ImageStreamError("image stream {0} has no tag {1} (neither a spec tag nor a pushed tag); its tags "
                               "are: {2}".format(describe(imagestream), json.dumps(tag),
                                                 ", ".join(names) if names else "(none)"))


def stored_environments(imagestream, tag, annotation_key):
    """The stored list of a tag (``[]`` = default only); EnvironmentsError when unreadable."""
    value = annotation_value(imagestream, tag, annotation_key)
    try:
        return parse_value(value, annotation_key)
    except EnvironmentsError as exc:
        raise EnvironmentsError("{0}:{1}: {2}".format(describe(imagestream), tag, exc))


def tag_entries(imagestream, annotation_key):
    """One report entry per tag: namespace, stream, tag, environments (effective), digest;
    ``error`` (and ``environments: None``) when the annotation cannot be read."""
    meta = imagestream.get("metadata") or {}
    entries = []
    for tag in tag_names(imagestream):
        entry = {"namespace": meta.get("namespace"), "stream": meta.get("name"), "tag": tag,
                 "digest": digest(imagestream, tag)}
        try:
            entry["environments"] = effective(stored_environments(imagestream, tag, annotation_key))
        except EnvironmentsError as exc:
            entry["environments"] = None
            entry["error"] = str(exc)
        entries.append(entry)
    return entries


# ---------------------------------------------------------------------------------------------
# Computing the write (pure)
# ---------------------------------------------------------------------------------------------


def new_spec_tags(imagestream, tag, annotation_key, value):
    """``spec.tags`` with annotation ``annotation_key`` of ``tag`` set to ``value`` (deleted
    when None). Every other tag, field and annotation is kept as it is. A tag without a spec
    tag (pushed only) gets one: ``{name, annotations, referencePolicy: {type: Source}}``,
    without ``from``."""
    tags = copy.deepcopy(_spec_tags(imagestream))
    for item in tags:
        if item.get("name") == tag:
            annotations = dict(item.get("annotations") or {})
            if value is None:
                annotations.pop(annotation_key, None)
            else:
                annotations[annotation_key] = value
            item["annotations"] = annotations
            return tags
    if value is not None:
        tags.append({"name": tag, "annotations": {annotation_key: value}, "referencePolicy": {"type": "Source"}})
    return tags


def with_environments(imagestream, tag, annotation_key, names):
    """A copy of ``imagestream`` whose tag carries the stored list ``names`` (canonical form;
    the annotation is deleted for an empty list). metadata (with its resourceVersion) and
    everything else are kept, so the write is conditional on the version that was read."""
    updated = copy.deepcopy(imagestream)
    updated.setdefault("spec", {})
    updated["spec"] = dict(updated["spec"] or {})
    updated["spec"]["tags"] = new_spec_tags(imagestream, tag, annotation_key, format_value(names))
    return updated


def backoff_delay(attempt, rng=random.random, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS):
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped,
    with "equal jitter" (half fixed, half random), so that writers that collided spread out and
    one that keeps losing waits longer each time."""
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return ceiling / 2 + rng() * ceiling / 2


# ---------------------------------------------------------------------------------------------
# I/O
# ---------------------------------------------------------------------------------------------


class ImageStreamAPI:
    """The ImageStreams of one cluster (the registry cluster), through kubernetes.core's client."""

    def __init__(self, client, host=None):
        self.client = client
        self.host = host or kube.host_of(client)
        self._resource = None

    @classmethod
    def connect(cls, module):
        """The API of the cluster named by the module's auth options (K8S_AUTH_* fallbacks)."""
        try:
            return cls(kube.connect(module))
        except kube.ClusterError as exc:
            raise ImageStreamError(str(exc))

    def _fail(self, exc, doing):
        message = kube.api_problem(exc, doing, self.host)
        if kube.status_of(exc) == 403:
            message += (". Editing environments needs get and update on imagestreams (image.openshift.io) in the "
                        "namespace, for example the registry-editor role; listing needs list (registry-viewer)")
        raise ImageStreamError(message)

    @property
    def resource(self):
        if self._resource is None:
            try:
                self._resource = self.client.resource(KIND, API_VERSION)
            except Exception as exc:
                if kube.is_missing_kind(exc):
                    raise ImageStreamError(
                        "the cluster at {0} does not serve {1} {2}: it is not an OpenShift cluster; point the "
                        "auth options at the registry cluster".format(self.host, API_VERSION, KIND))
                self._fail(exc, "discover the {0} API".format(KIND))
        return self._resource

    def get(self, namespace, stream):
        resource = self.resource
        try:
            return self.client.get(resource, name=stream, namespace=namespace).to_dict()
        except Exception as exc:
            if kube.status_of(exc) == 404:
                raise ImageStreamError("image stream {0}/{1} not found on the registry cluster ({2}): check "
                                       "namespace and stream".format(namespace, stream, self.host))
            self._fail(exc, "read imagestream {0}/{1}".format(namespace, stream))

    def list(self, namespace=None):
        """The ImageStreams of one namespace (one LIST call), or of the cluster (namespace None)."""
        resource = self.resource
        try:
            if namespace is None:
                answer = self.client.get(resource)
            else:
                answer = self.client.get(resource, namespace=namespace)
        except Exception as exc:
            self._fail(exc, "list imagestreams {0}".format(
                "in namespace " + namespace if namespace else "in all namespaces (cluster-wide)"))
        return answer.to_dict().get("items") or []

    def replace(self, body):
        """PUT the ImageStream; conditional on body.metadata.resourceVersion. A server-side dry
        run in check mode (kubernetes.core's client sets it). Raises ``Conflict`` on 409."""
        meta = body["metadata"]
        try:
            return self.client.replace(self.resource, body, name=meta["name"], namespace=meta["namespace"],
                                       field_manager=FIELD_MANAGER).to_dict()
        except Exception as exc:
            if kube.status_of(exc) == 409:
                raise Conflict(kube.server_message(exc))
            if kube.status_of(exc) == 404:
                raise ImageStreamError("image stream {0}/{1} was deleted while its tag was being edited; nothing "
                                       "was written".format(meta["namespace"], meta["name"]))
            self._fail(exc, "update imagestream {0}/{1}".format(meta["namespace"], meta["name"]))


class Conflict(Exception):
    """409: the ImageStream changed since it was read."""


def edit_tag_environments(api, namespace, stream, tag, change, annotation_key, max_attempts=10,
                          sleep=time.sleep, rng=random.random, replace_unreadable=False):
    """Read, recompute and conditionally write a tag's environment list until it lands.

    ``change(stored_list) -> new stored list`` may raise EnvironmentsError. Returns a dict:
    changed, before and after (stored lists), digest, attempts, imagestream (as stored, or as
    the dry run answered), unreadable (why the old value could not be read, or None). Raises
    ImageStreamError / EnvironmentsError; nothing is written then.

    An unreadable annotation is an error, unless ``replace_unreadable`` (the change sets an
    exact list, which does not depend on the old one): ``before`` is then None and the value is
    replaced.
    """
    if max_attempts < 1:
        raise ImageStreamError("max_attempts must be at least 1, not {0}".format(max_attempts))
    attempt = 0
    while True:
        attempt += 1
        current = api.get(namespace, stream)
        require_tag(current, tag)
        unreadable = None
        try:
            before = stored_environments(current, tag, annotation_key)
        except EnvironmentsError as exc:
            if not replace_unreadable:
                raise
            before, unreadable = None, str(exc)
        after = change(before or [])
        if after == before:
            return {"changed": False, "before": before, "after": after, "digest": digest(current, tag),
                    "attempts": attempt, "imagestream": current, "unreadable": None}
        body = with_environments(current, tag, annotation_key, after)
        try:
            stored = api.replace(body)
        except Conflict as exc:
            if attempt >= max_attempts:
                raise ImageStreamError(
                    "image stream {0}/{1} kept changing under the edit: {2} attempts ended in 409 Conflict (last: "
                    "{3}); nothing was written. Run again, or raise max_attempts".format(
                        namespace, stream, attempt, exc))
            sleep(backoff_delay(attempt, rng))
            continue
        return {"changed": True, "before": before, "after": after, "digest": digest(stored, tag) or digest(current, tag),
                "attempts": attempt, "imagestream": stored, "unreadable": unreadable}


def _listing_order(item):
    return (item["namespace"] or "", item["stream"] or "", item["tag"])


def list_streams(api, namespaces):
    """(ImageStreams, list calls): one list call per namespace, or one cluster-wide call when
    ``namespaces`` is None; never one call per tag."""
    streams = []
    for namespace in ([None] if namespaces is None else namespaces):
        streams.extend(api.list(namespace))
    return streams, 1 if namespaces is None else len(namespaces)


def list_tags(api, namespaces, annotation_key, environment=None):
    """Tags of the ImageStreams of ``namespaces`` (one list call each) or of the whole cluster
    (``namespaces`` None: one cluster-wide list call), with their environments and digests.

    ``environment`` keeps only the tags approved for it (``default``: the tags without
    environments); tags whose annotation cannot be read are then left out of ``tags`` but are
    always in ``errors``. Returns {tags, errors, namespaces, list_calls}.
    """
    streams, calls = list_streams(api, namespaces)
    tags = []
    errors = []
    for imagestream in streams:
        for entry in tag_entries(imagestream, annotation_key):
            if "error" in entry:
                errors.append(dict((k, entry[k]) for k in ("namespace", "stream", "tag", "error")))
                if environment is not None:
                    continue
            elif environment is not None and environment not in entry["environments"]:
                continue
            tags.append(entry)
    return {"tags": sorted(tags, key=_listing_order), "errors": sorted(errors, key=_listing_order),
            "namespaces": ["*"] if namespaces is None else list(namespaces), "list_calls": calls}
