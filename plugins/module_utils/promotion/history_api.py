# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The promotion history on the registry cluster (I/O): its ConfigMaps read, and a run's entries
added with conditional writes (the resourceVersion read; read, merge and write again on 409).
What the entries are and how they are bounded: ``history``."""

from __future__ import annotations

import copy
from typing import Any, Collection, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ClusterObjects, ObjectsError, edit
from ansible_collections.segmented.registry.plugins.module_utils.credentials.labels import MANAGED_BY, MANAGED_BY_VALUE
from ansible_collections.segmented.registry.plugins.module_utils.promotion.history import (
    ANNOTATION_STREAM,
    LABEL_HISTORY,
    HistoryError,
    configmap_name,
    merge,
)

LABELS = {MANAGED_BY: MANAGED_BY_VALUE, LABEL_HISTORY: "true"}
SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE},{LABEL_HISTORY}=true"


def record(objects: ClusterObjects, entries: Mapping[tuple[str, str], list[dict[str, Any]]], limit: int) -> tuple[list[str], int]:
    """Add ``entries`` (``{(namespace, stream): [entry, ...]}``, ``history.entries_of``) to each
    ImageStream's history ConfigMap, creating it when there is none. Returns the ``namespace/name``
    of each ConfigMap written and the number of API calls made. A ConfigMap of that name that this
    collection did not make is left alone (a ``HistoryError`` names it)."""
    written, calls = [], [0]
    for (namespace, stream), items in sorted(entries.items()):
        if _record_one(objects, namespace, stream, items, limit, calls):
            written.append(f"{namespace}/{configmap_name(stream)}")
    return written, calls[0]


def _record_one(objects: ClusterObjects, namespace: str, stream: str, items: list[dict[str, Any]], limit: int, calls: list[int]) -> bool:
    name = configmap_name(stream)
    where = f"ConfigMap {namespace}/{name}"

    def attempt() -> bool:
        calls[0] += 1
        found = objects.get("v1", "ConfigMap", name, namespace)
        if found is None:
            data = merge({}, items, limit, where)
            if not data:
                return False
            metadata = {"name": name, "namespace": namespace, "labels": dict(LABELS), "annotations": {ANNOTATION_STREAM: stream}}
            calls[0] += 1
            objects.write({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}, "create")
            return True
        labels = (found.get("metadata") or {}).get("labels") or {}
        if any(labels.get(key) != value for key, value in LABELS.items()):
            raise HistoryError(
                f"{where} exists and was not made by this collection (it lacks the labels {SELECTOR}), so the history of "
                f"{namespace}/{stream} was not written; rename or delete that ConfigMap",
                field="history",
            )
        data = merge(found.get("data") or {}, items, limit, where)
        if data == (found.get("data") or {}):
            return False
        changed = copy.deepcopy(found)
        changed["data"] = data  # the resourceVersion read travels along: a write in between is a 409
        calls[0] += 1
        objects.write(changed, "replace")
        return True

    return edit(attempt)


def read(objects: ClusterObjects, namespaces: Collection[str]) -> list[dict[str, Any]]:
    """The history ConfigMaps of ``namespaces``: one LIST per namespace, by label. A refusal names
    the right the job's account lacks."""
    found = []
    for namespace in sorted(namespaces):
        try:
            found.extend(objects.list_labelled("v1", "ConfigMap", namespace, SELECTOR))
        except ObjectsError as exc:
            raise HistoryError(
                f"{exc}. The promotion history (and the rollbacks it pins) is read from ConfigMaps in {namespace}: the job's "
                "Kubernetes account needs list on configmaps there (registry_cluster_history_editors, or edit)",
                field="history",
            )
    return found
