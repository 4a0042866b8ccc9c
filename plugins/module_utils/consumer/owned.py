# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Entries this collection added to objects it shares with the administrator (pure).

The consumer-cluster role adds registries to lists other people own (``allowedRegistries``,
``blockedRegistries``, ``matchImages``), keys to ConfigMaps and Secrets they own, and must later
take exactly those out again. What it added is kept on the cluster, in an annotation of the object
it edited (``RECORD_ANNOTATION``), never on the controller: a run from another AWX node, or a
year later, still knows what to remove. The annotation goes when the last entry goes.
"""

from __future__ import annotations

import json
from typing import Any, Collection, Iterable

from ansible_collections.segmented.registry.plugins.module_utils.errors import ConsumerError

RECORD_ANNOTATION = "segmented.registry/added"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "segmented.registry"


class RecordError(ConsumerError, ValueError):
    """The record annotation cannot be read (edited by hand)."""


def is_ours(obj: dict[str, Any] | None) -> bool:
    """Whether an object carries this collection's label (it made the object)."""
    return (((obj or {}).get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY


def read_record(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The record of an object (a dict), ``{}`` when it has none."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    text = annotations.get(RECORD_ANNOTATION)
    if not text:
        return {}
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        name = ((obj or {}).get("metadata") or {}).get("name", "?")
        raise RecordError(
            f"annotation {RECORD_ANNOTATION} of {(obj or {}).get('kind', 'object')} {name} is not the JSON object "
            "this collection writes (edited by hand?): restore it, or delete it and remove the entries "
            "it listed yourself"
        )
    return record


def write_record(obj: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    """Set (or, for an empty record, remove) the record annotation of ``obj`` in place."""
    metadata = obj.setdefault("metadata", {})
    annotations = dict(metadata.get("annotations") or {})
    if record:
        annotations[RECORD_ANNOTATION] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    else:
        annotations.pop(RECORD_ANNOTATION, None)
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return obj


def merge_owned(current: Iterable[str] | None, added: Iterable[str] | None, wanted: Iterable[str]) -> tuple[list[str], list[str]]:
    """A list the administrator owns, with this collection's entries brought to ``wanted``.

    ``current``: the list now; ``added``: what this collection added earlier (its record);
    ``wanted``: what it must hold now. Entries added earlier and no longer wanted are removed;
    wanted entries missing are appended in ``wanted`` order; the administrator's entries keep their
    place. Returns ``(new list, new record of added entries)``; an entry that was already there
    before this collection wanted it is not recorded (it is not ours to remove)."""
    current = list(current or [])
    added = list(added or [])
    wanted = list(dict.fromkeys(wanted))
    result = [entry for entry in current if entry in wanted or entry not in added]
    still_ours = [entry for entry in added if entry in result]
    for entry in wanted:
        if entry not in result:
            result.append(entry)
            still_ours.append(entry)
    return result, still_ours


def remove_owned(current: Iterable[str] | None, added: Collection[str] | None) -> list[str]:
    """``current`` without the entries this collection added."""
    return [entry for entry in (current or []) if entry not in (added or [])]
