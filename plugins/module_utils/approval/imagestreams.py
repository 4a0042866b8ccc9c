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

The functions here are pure and take ImageStreams as dicts; the reads and the conditional writes
on a cluster are in ``imagestream_api``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import (
    EnvironmentsError,
    effective,
    parse_value,
)
from ansible_collections.segmented.registry.plugins.module_utils.errors import ApprovalError
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label, is_image_stream_name, is_image_tag

#: A new spec tag's patch tests each entry's name up to this many entries, else the whole list (the
#: API server takes at most 10,000 operations in one JSON patch).
MAX_NAME_TESTS = 1000


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
    if not isinstance(stream, str) or not is_image_stream_name(stream):
        raise ImageStreamError(
            "{} {} is not an image stream name: use lowercase letters and digits, separated by '.', '_' or '-' (like app or my-app)".format(
                option, json.dumps(stream)
            )
        )
    return stream


def check_tag(tag: object, option: str = "tag") -> str:
    if not isinstance(tag, str) or not is_image_tag(tag):
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
