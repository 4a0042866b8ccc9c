# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What changed in an ImageStream's approval lists, as the events of the event source (pure).

The event source (``extensions/eda/plugins/event_source/approvals.py``) keeps, per ImageStream, the
last state it knows of each tag: its approval list (effective: ``["default"]`` when it has none),
its source digest and, when its annotation cannot be read, the problem. Given that state and the
ImageStream as it is now, ``diff`` returns the events to emit and the new state:

- ``changed``: a tag whose approval list or source digest changed (``environments_before``,
  ``environments_after``, ``digest``, ``digest_before``, and ``manager``, the field manager that
  made the change, from ``metadata.managedFields``, best effort);
- ``deleted``: a tag (or the whole stream) that is gone (``environments_after`` is ``["default"]``);
- ``error``: a tag whose approval list cannot be read or names an environment not known: the
  message names the tag and the annotation (``field``) and says how to fix it. Emitted once per
  problem; the tag keeps its last good list until it is fixed.

A tag that is and was in ``default`` only (no approval list) gives no event: a push to it or its
removal leaves nothing to promote or remove. Every event has ``type``, ``namespace``, ``stream``
and ``tag``.
"""

from __future__ import annotations

from typing import Any, Collection, Mapping, NamedTuple

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import EnvironmentsError, check_names, effective
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import describe, digest, stored_environments, tag_names
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import DEFAULT_ENVIRONMENT

#: the event types
CHANGED = "changed"
DELETED = "deleted"
ERROR = "error"


class TagState(NamedTuple):
    """What the event source last knew of a tag: its effective approval list, its source digest,
    and the problem of its annotation (None when it could be read)."""

    environments: tuple[str, ...]
    digest: str | None
    error: str | None = None


#: tag -> its state, for one ImageStream
StreamState = Mapping[str, TagState]

_DEFAULT_ONLY = (DEFAULT_ENVIRONMENT,)


def _read(imagestream: dict[str, Any], tag: str, annotation_key: str, known: Collection[str] | None, before: TagState | None) -> TagState:
    """The tag's state now; a problem keeps the last good list (``default`` for a new tag)."""
    source = digest(imagestream, tag)
    try:
        stored = stored_environments(imagestream, tag, annotation_key)
        if known is not None:
            check_names(stored, f"annotation {annotation_key} of {describe(imagestream)}:{tag}", known)
    except EnvironmentsError as exc:
        return TagState(before.environments if before else _DEFAULT_ONLY, source, str(exc))
    return TagState(tuple(effective(stored)), source)


def _fields_under(fields: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(fields, dict) or key not in fields:
            return None
        fields = fields[key]
    return fields


def _coverage(entry: Mapping[str, Any], tag: str, annotation_key: str) -> int:
    """How closely a managedFields entry covers the tag's annotation: 3 the annotation itself, 2 the
    tag's annotations, 1 the tag list as a whole (an atomic list), 0 not at all."""
    tags = _fields_under(entry.get("fieldsV1"), "f:spec", "f:tags")
    if tags is None:
        return 0
    annotations = _fields_under(tags, 'k:{"name":"%s"}' % tag, "f:annotations")
    if annotations is None:
        return 1
    return 3 if f"f:{annotation_key}" in annotations else 2


def field_manager(imagestream: dict[str, Any], tag: str, annotation_key: str) -> str | None:
    """The field manager that last wrote the tag's approval annotation, best effort: among the
    ``metadata.managedFields`` entries, the one that covers it most closely (the annotation, the
    tag's annotations, else the tag list), the latest of those; None when none covers it."""
    best: tuple[int, str] | None = None
    manager = None
    for entry in (imagestream.get("metadata") or {}).get("managedFields") or []:
        coverage = _coverage(entry, tag, annotation_key)
        if coverage and (best is None or (coverage, entry.get("time") or "") >= best):
            best = (coverage, entry.get("time") or "")
            manager = entry.get("manager")
    return manager


def stream_key(imagestream: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an ImageStream."""
    meta = imagestream.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _event(kind: str, namespace: str, stream: str, tag: str, **fields: Any) -> dict[str, Any]:
    return dict(type=kind, namespace=namespace, stream=stream, tag=tag, **fields)


def _changed(imagestream: dict[str, Any], tag: str, annotation_key: str, before: TagState | None, after: TagState) -> list[dict[str, Any]]:
    namespace, stream = stream_key(imagestream)
    if after.error is not None:
        if before is not None and before.error == after.error:
            return []
        return [_event(ERROR, namespace, stream, tag, field=annotation_key, message=after.error)]
    environments_before = before.environments if before else _DEFAULT_ONLY
    digest_before = before.digest if before else None
    if environments_before == after.environments and digest_before == after.digest:
        return []
    if environments_before == after.environments == _DEFAULT_ONLY:
        return []
    return [
        _event(
            CHANGED,
            namespace,
            stream,
            tag,
            environments_before=list(environments_before),
            environments_after=list(after.environments),
            digest=after.digest,
            digest_before=digest_before,
            manager=field_manager(imagestream, tag, annotation_key),
        )
    ]


def deleted(namespace: str, stream: str, before: StreamState, tags: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The ``deleted`` events of the tags ``tags`` of a stream (all of ``before`` when None) that
    had an approval list."""
    return [
        _event(
            DELETED, namespace, stream, tag, environments_before=list(state.environments), environments_after=list(_DEFAULT_ONLY), digest_before=state.digest
        )
        for tag, state in sorted(before.items())
        if (tags is None or tag in tags) and state.environments != _DEFAULT_ONLY
    ]


def diff(
    before: StreamState, imagestream: dict[str, Any], annotation_key: str, known: Collection[str] | None = None
) -> tuple[list[dict[str, Any]], dict[str, TagState]]:
    """The events between ``before`` (the stream's last known state, ``{}`` for a new stream) and
    ``imagestream`` now, and the new state, tags in name order."""
    after = {tag: _read(imagestream, tag, annotation_key, known, before.get(tag)) for tag in tag_names(imagestream)}
    events = []
    for tag, state in after.items():
        events.extend(_changed(imagestream, tag, annotation_key, before.get(tag), state))
    events.extend(deleted(*stream_key(imagestream), before, [tag for tag in before if tag not in after]))
    return events, after
