# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""ImageStreams on the registry cluster: reading tags, and editing a tag's environment list.

An ImageStreamTag is a view computed from its ImageStream; the tag's annotations are stored
only in ``ImageStream.spec.tags[<tag>].annotations``. A tag that exists only because an image
was pushed has a ``status.tags`` entry and no spec tag; annotating it means creating the spec
tag ``{name, annotations, referencePolicy: {type: Source}}`` without ``from``.

Every write is a JSON patch (RFC 6902) that touches only the tag's own entry of ``spec.tags``:
``test`` operations check that the entry at the index that was read still has the tag's name and
that the annotation still has the value that was read, then one ``add`` or ``remove`` writes the
new value (a tag without a spec tag gets its entry appended, guarded by tests that the list still
holds exactly the entries that were read). The patch carries no resourceVersion, so a push or an
import (a status write) and an edit of another tag never make it fail; only a change of the same
tag's annotation (or of the list's entries, for a new spec tag) does: the API server answers 422
to a failed ``test``, and the edit is re-read, recomputed and retried with bounded exponential
back-off and jitter.

The functions above the I/O section are pure and take ImageStreams as dicts. The I/O goes
through kubernetes.core's client layer (``get_api_client``), imported only when used.
"""

from __future__ import annotations

import builtins
import copy
import json
import random
import re
import time
from typing import Any, Callable, Collection, NoReturn

from ansible_collections.segmented.registry.plugins.module_utils import kube
from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import (
    EnvironmentsError,
    effective,
    format_value,
    parse_value,
)
from ansible_collections.segmented.registry.plugins.module_utils.errors import ApprovalError, Module
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label
from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff

API_VERSION = "image.openshift.io/v1"
KIND = "ImageStream"
FIELD_MANAGER = "segmented.registry"

#: A new spec tag's patch tests each entry's name up to this many entries, else the whole list (the
#: API server takes at most 10,000 operations in one JSON patch).
MAX_NAME_TESTS = 1000

#: Back-off after a refused write: min(CAP, SLOT * 2 ** (attempt - 1)), half of it random (equal
#: jitter), where SLOT is the larger of BASE and the refused attempt's own round trip (read and
#: write): on a busy API server, where that window is long, racing writers spread out as widely.
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 8.0

#: A write refused because another edit landed first (a failed test) does not count against
#: max_attempts; a run still stops after this many times max_attempts attempts in all.
LOST_RACES_FACTOR = 4

# OpenShift validates ImageStream names as path segments matching a docker repository component.
_STREAM = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


class ImageStreamError(ApprovalError):
    """Something on the registry cluster is not as needed; nothing was written."""


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


def check_namespace(namespace: object, option: str = "namespace") -> str:
    if not isinstance(namespace, str) or not is_dns1123_label(namespace):
        raise ImageStreamError(
            "{} {} is not a namespace name: use a DNS-1123 label (lowercase letters, digits and '-', like myproject)".format(option, json.dumps(namespace))
        )
    return namespace


def check_stream(stream: object, option: str = "stream") -> str:
    if not isinstance(stream, str) or not stream or len(stream) > 255 or not _STREAM.match(stream):
        raise ImageStreamError(
            "{} {} is not an image stream name: use lowercase letters and digits, separated by '.', '_' or '-' (like app or my-app)".format(
                option, json.dumps(stream)
            )
        )
    return stream


def check_tag(tag: object, option: str = "tag") -> str:
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ImageStreamError(
            "{} {} is not an image tag: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-' (like v1.2.3 or latest)".format(
                option, json.dumps(tag)
            )
        )
    return tag


def split_name(name: object) -> tuple[str, str]:
    """``stream:tag`` -> (stream, tag), validated."""
    fix = "write it as <stream>:<tag>, like app:v1.2.3 (or give stream and tag separately)"
    if not isinstance(name, str) or name.count(":") != 1 or "@" in name or "/" in name:
        raise ImageStreamError(f"name {json.dumps(name)} is not an image stream tag: {fix}")
    stream, tag = name.split(":")
    if not stream or not tag:
        raise ImageStreamError(f"name {json.dumps(name)} is not an image stream tag: {fix}")
    return check_stream(stream, "the stream in name"), check_tag(tag, "the tag in name")


def resolve_tag_reference(name: str | None = None, stream: str | None = None, tag: str | None = None) -> tuple[str, str]:
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


def _spec_tags(imagestream: dict[str, Any]) -> list[dict[str, Any]]:
    return ((imagestream.get("spec") or {}).get("tags")) or []


def _status_tags(imagestream: dict[str, Any]) -> list[dict[str, Any]]:
    return ((imagestream.get("status") or {}).get("tags")) or []


def spec_tag(imagestream: dict[str, Any], tag: str) -> dict[str, Any] | None:
    for item in _spec_tags(imagestream):
        if item.get("name") == tag:
            return item
    return None


def status_tag(imagestream: dict[str, Any], tag: str) -> dict[str, Any] | None:
    for item in _status_tags(imagestream):
        if item.get("tag") == tag:
            return item
    return None


def tag_names(imagestream: dict[str, Any]) -> list[str]:
    """Every tag of the stream: spec tags and pushed (status-only) tags, sorted."""
    names = {item.get("name") for item in _spec_tags(imagestream)}
    names.update(item.get("tag") for item in _status_tags(imagestream))
    return sorted(name for name in names if name is not None)


def digest(imagestream: dict[str, Any], tag: str) -> str | None:
    """The tag's current image (``status.tags[tag].items[0].image``), or None."""
    item = status_tag(imagestream, tag)
    events = (item or {}).get("items") or []
    return events[0].get("image") if events else None


def annotation_value(imagestream: dict[str, Any], tag: str, annotation_key: str) -> Any:
    item = spec_tag(imagestream, tag)
    return ((item or {}).get("annotations") or {}).get(annotation_key)


def describe(imagestream: dict[str, Any]) -> str:
    meta = imagestream.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def require_tag(imagestream: dict[str, Any], tag: str) -> None:
    if spec_tag(imagestream, tag) is None and status_tag(imagestream, tag) is None:
        names = tag_names(imagestream)
        raise ImageStreamError(
            "image stream {} has no tag {} (neither a spec tag nor a pushed tag); its tags are: {}".format(
                describe(imagestream), json.dumps(tag), ", ".join(names) if names else "(none)"
            )
        )


def stored_environments(imagestream: dict[str, Any], tag: str, annotation_key: str) -> list[str]:
    """The stored list of a tag (``[]`` = default only); EnvironmentsError when unreadable."""
    value = annotation_value(imagestream, tag, annotation_key)
    try:
        return parse_value(value, annotation_key)
    except EnvironmentsError as exc:
        raise EnvironmentsError(f"{describe(imagestream)}:{tag}: {exc}")


def tag_entries(imagestream: dict[str, Any], annotation_key: str) -> list[dict[str, Any]]:
    """One report entry per tag: namespace, stream, tag, environments (effective), digest;
    ``error`` (and ``environments: None``) when the annotation cannot be read."""
    meta = imagestream.get("metadata") or {}
    entries = []
    for tag in tag_names(imagestream):
        entry = {"namespace": meta.get("namespace"), "stream": meta.get("name"), "tag": tag, "digest": digest(imagestream, tag)}
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


def _pointer(*parts: object) -> str:
    """A JSON pointer (RFC 6901) to ``parts``."""
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _test(path: str, value: Any) -> dict[str, Any]:
    return {"op": "test", "path": path, "value": value}


def tag_patch(imagestream: dict[str, Any], tag: str, annotation_key: str, value: str | None) -> list[dict[str, Any]]:
    """The JSON patch (a list of RFC 6902 operations) that sets annotation ``annotation_key`` of
    ``tag`` to ``value`` (removes it when None) in the ImageStream that was read, touching
    nothing else, guarded by ``test`` operations so that it applies only if what it depends on
    is still as read:

    - a spec tag at index i: ``test`` that entry i is still named ``tag`` and that the
      annotation still has its old value (absent: ``null``; an absent or null annotations map is
      tested and written as a whole), then ``add`` (sets) or ``remove`` the annotation;
    - no spec tag (pushed only): ``test`` that every entry of ``spec.tags`` still has the name
      that was read and that the last one is the last (so the list still has the same entries,
      and none is ``tag``), then append ``{name, annotations, referencePolicy: {type: Source}}``
      without ``from`` (an absent ``spec.tags`` or ``spec`` is tested ``null`` and added; a list
      longer than MAX_NAME_TESTS is tested as a whole).

    ``[]`` (nothing to write) when ``value`` is None and the annotation is absent. Index ``-1``
    (the last element) is an extension of RFC 6902 that the Kubernetes API server's JSON patch
    library (evanphx/json-patch, which openshift-apiserver uses too) supports.
    """
    if value is None and annotation_value(imagestream, tag, annotation_key) is None:
        return []
    for index, item in enumerate(_spec_tags(imagestream)):
        if item.get("name") != tag:
            continue
        operations = [_test(_pointer("spec", "tags", index, "name"), tag)]
        annotations = item.get("annotations")
        if annotations is None:
            return operations + [
                _test(_pointer("spec", "tags", index, "annotations"), None),
                {"op": "add", "path": _pointer("spec", "tags", index, "annotations"), "value": {annotation_key: value}},
            ]
        path = _pointer("spec", "tags", index, "annotations", annotation_key)
        operations.append(_test(path, annotations.get(annotation_key)))
        operations.append({"op": "remove", "path": path} if value is None else {"op": "add", "path": path, "value": value})
        return operations
    entry = {"name": tag, "annotations": {annotation_key: value}, "referencePolicy": {"type": "Source"}}
    spec = imagestream.get("spec")
    if spec is None:
        return [_test("/spec", None), {"op": "add", "path": "/spec", "value": {"tags": [entry]}}]
    names = [item.get("name") for item in spec.get("tags") or []]
    if not names:
        return [_test("/spec/tags", spec.get("tags")), {"op": "add", "path": "/spec/tags", "value": [entry]}]
    if len(names) > MAX_NAME_TESTS:
        operations = [_test("/spec/tags", copy.deepcopy(spec["tags"]))]
    else:
        operations = [_test(_pointer("spec", "tags", index, "name"), name) for index, name in enumerate(names)]
        operations.append(_test("/spec/tags/-1/name", names[-1]))  # the API server's index -1: the last entry
    operations.append({"op": "add", "path": "/spec/tags/-", "value": entry})
    return operations


def backoff_delay(
    attempt: int, rng: Callable[[], float] = random.random, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS, round_trip: float = 0.0
) -> float:
    """Seconds to wait after refused attempt number ``attempt`` (1-based): exponential in units
    of the larger of ``base`` and the attempt's ``round_trip`` (seconds from its read to the
    refusal), capped, with "equal jitter" (half fixed, half random), so that writers that
    collided spread out over windows as long as their own, and one that keeps losing waits
    longer each time."""
    return backoff(attempt, max(base, round_trip), cap, jitter=rng)


# ---------------------------------------------------------------------------------------------
# I/O
# ---------------------------------------------------------------------------------------------


def _patch_did_not_apply(exc: BaseException) -> bool:
    """A 422 answer to a JSON patch that the API server could not apply (a failed ``test``): it
    carries no details, where a 422 for an invalid object names it (``details.kind``, ``name``).
    The server does not say which operation failed; the patches of ``tag_patch`` test every path
    they write first, so it is one of their tests."""
    if kube.status_of(exc) != 422:
        return False
    body: Any = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        details = json.loads(body).get("details") or {}
    except (TypeError, ValueError, AttributeError):
        return False
    return not details.get("kind") and not details.get("name")


class ImageStreamAPI:
    """The ImageStreams of one cluster (the registry cluster), through kubernetes.core's client."""

    def __init__(self, client: Any, host: str | None = None) -> None:
        self.client = client
        self.host = host or kube.host_of(client)
        self._resource = None

    @classmethod
    def connect(cls, module: Module) -> ImageStreamAPI:
        """The API of the cluster named by the module's auth options (K8S_AUTH_* fallbacks)."""
        try:
            return cls(kube.connect(module))
        except kube.ClusterError as exc:
            raise ImageStreamError(str(exc))

    def _fail(self, exc: BaseException, doing: str) -> NoReturn:
        message = kube.api_problem(exc, doing, self.host)
        if kube.status_of(exc) == 403:
            message += (
                ". Editing environments needs get and patch on imagestreams (image.openshift.io) in the "
                "namespace, for example the registry-editor role; listing needs list (registry-viewer)"
            )
        raise ImageStreamError(message)

    @property
    def resource(self) -> Any:
        if self._resource is None:
            try:
                self._resource = self.client.resource(KIND, API_VERSION)
            except Exception as exc:
                if kube.is_missing_kind(exc):
                    raise ImageStreamError(
                        "the cluster at {} does not serve {} {}: it is not an OpenShift cluster; point the auth options at the registry cluster".format(
                            self.host, API_VERSION, KIND
                        )
                    )
                self._fail(exc, f"discover the {KIND} API")
        return self._resource

    def get(self, namespace: str, stream: str) -> dict[str, Any]:
        resource = self.resource
        try:
            return self.client.get(resource, name=stream, namespace=namespace).to_dict()
        except Exception as exc:
            if kube.status_of(exc) == 404:
                raise ImageStreamError(f"image stream {namespace}/{stream} not found on the registry cluster ({self.host}): check namespace and stream")
            self._fail(exc, f"read imagestream {namespace}/{stream}")

    def list(self, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        """The ImageStreams of one namespace (one LIST call), or of the cluster (namespace None)."""
        resource = self.resource
        where = {} if namespace is None else {"namespace": namespace}
        try:
            answer = self.client.get(resource, serializer=kube.plain, **where)
        except Exception as exc:
            self._fail(exc, f"list imagestreams {'in namespace ' + namespace if namespace else 'in all namespaces (cluster-wide)'}")
        return answer.get("items") or []

    def patch(self, namespace: str, stream: str, operations: builtins.list[dict[str, Any]]) -> dict[str, Any]:
        """Apply a JSON patch (``tag_patch``) to the ImageStream, without a resourceVersion: its
        ``test`` operations are the guard. A server-side dry run in check mode (kubernetes.core's
        client sets it), where the tests are checked too. Raises ``Conflict`` when a test fails
        (the API server answers 422) or on 409."""
        try:
            return self.client.patch(
                self.resource, operations, name=stream, namespace=namespace, content_type="application/json-patch+json", field_manager=FIELD_MANAGER
            ).to_dict()
        except Exception as exc:
            if kube.status_of(exc) == 409:
                raise Conflict(kube.server_message(exc))
            if _patch_did_not_apply(exc):
                raise Conflict("a test of the patch failed (422)", lost_race=True)
            if kube.status_of(exc) == 404:
                raise ImageStreamError(f"image stream {namespace}/{stream} was deleted while its tag was being edited; nothing was written")
            self._fail(exc, f"update imagestream {namespace}/{stream}")


class Conflict(ApprovalError):
    """The write was refused because the ImageStream changed since it was read: ``lost_race``
    when a ``test`` of the patch failed (422: another edit landed first), else a 409."""

    def __init__(self, message: str, lost_race: bool = False) -> None:
        super().__init__(message)
        self.lost_race = lost_race


def edit_tag_environments(
    api: ImageStreamAPI,
    namespace: str,
    stream: str,
    tag: str,
    change: Callable[[list[str]], list[str]],
    annotation_key: str,
    max_attempts: int = 10,
    sleep: Callable[[float], object] = time.sleep,
    rng: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.monotonic,
    replace_unreadable: bool = False,
) -> dict[str, Any]:
    """Read, recompute and write (``tag_patch``) a tag's environment list until it lands.

    ``change(stored_list) -> new stored list`` may raise EnvironmentsError. Returns a dict:
    changed, before and after (stored lists), digest, attempts, imagestream (as stored, or as
    the dry run answered), unreadable (why the old value could not be read, or None). Raises
    ImageStreamError / EnvironmentsError; nothing is written then.

    A refused write is retried after ``backoff_delay``. Only refusals without another edit
    landing first (409) count against ``max_attempts``: a failed test means another edit of the
    tag (or, for a new spec tag, of the list) landed, so the tag moved forward, and N writers of
    one tag all land (each loses at most N - 1 times); a run still stops after LOST_RACES_FACTOR
    times ``max_attempts`` attempts in all.

    An unreadable annotation is an error, unless ``replace_unreadable`` (the change sets an
    exact list, which does not depend on the old one): ``before`` is then None and the value is
    replaced.
    """
    if max_attempts < 1:
        raise ImageStreamError(f"max_attempts must be at least 1, not {max_attempts}")
    attempt = counted = 0
    while True:
        attempt += 1
        started = clock()
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
            return {
                "changed": False,
                "before": before,
                "after": after,
                "digest": digest(current, tag),
                "attempts": attempt,
                "imagestream": current,
                "unreadable": None,
            }
        try:
            stored = api.patch(namespace, stream, tag_patch(current, tag, annotation_key, format_value(after)))
        except Conflict as exc:
            counted += 0 if exc.lost_race else 1
            if counted >= max_attempts or attempt >= LOST_RACES_FACTOR * max_attempts:
                raise ImageStreamError(
                    "image stream tag {}/{}:{} kept changing under the edit: {} attempts were refused because "
                    "it had changed since it was read (last: {}); nothing was written. Run again, or raise "
                    "max_attempts".format(namespace, stream, tag, attempt, exc)
                )
            sleep(backoff_delay(attempt, rng, round_trip=clock() - started))
            continue
        return {
            "changed": True,
            "before": before,
            "after": after,
            "digest": digest(stored, tag) or digest(current, tag),
            "attempts": attempt,
            "imagestream": stored,
            "unreadable": unreadable,
        }


def _listing_order(item: dict[str, Any]) -> tuple[str, str, str]:
    return (item["namespace"] or "", item["stream"] or "", item["tag"])


def list_streams(api: ImageStreamAPI, namespaces: Collection[str] | None) -> tuple[list[dict[str, Any]], int]:
    """(ImageStreams, list calls): one list call per namespace, or one cluster-wide call when
    ``namespaces`` is None; never one call per tag."""
    streams = []
    for namespace in [None] if namespaces is None else namespaces:
        streams.extend(api.list(namespace))
    return streams, 1 if namespaces is None else len(namespaces)


def list_tags(api: ImageStreamAPI, namespaces: Collection[str] | None, annotation_key: str, environment: str | None = None) -> dict[str, Any]:
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
                errors.append({k: entry[k] for k in ("namespace", "stream", "tag", "error")})
                if environment is not None:
                    continue
            elif environment is not None and environment not in entry["environments"]:
                continue
            tags.append(entry)
    return {
        "tags": sorted(tags, key=_listing_order),
        "errors": sorted(errors, key=_listing_order),
        "namespaces": ["*"] if namespaces is None else list(namespaces),
        "list_calls": calls,
    }
