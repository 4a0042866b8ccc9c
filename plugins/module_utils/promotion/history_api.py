# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The promotion history on the registry cluster (I/O), through its ``Cluster``: the ConfigMaps
read (one LIST per namespace, by label), and a run's entries added with ``Cluster.edit`` (the
resourceVersion read; on 409 the gateway reads, merges and writes again). What the entries are and
how they are bounded: ``history``.

A job's account that may not read or write the history (403) is a ``HistoryForbidden`` that names
the right, the namespace and the fix. ``read`` and ``record`` take ``warn``: given, a forbidden
namespace is passed to it and skipped (a reconcile or a promotion carries on as it did before the
history existed); None, the refusal is raised (a rollback needs the history).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Collection, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.cluster import CONFIG_MAP, Cluster
from ansible_collections.segmented.registry.plugins.module_utils.credentials.labels import MANAGED_BY, MANAGED_BY_VALUE
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError
from ansible_collections.segmented.registry.plugins.module_utils.promotion.history import (
    ANNOTATION_STREAM,
    LABEL_HISTORY,
    HistoryError,
    configmap_name,
    merge,
)

LABELS = {MANAGED_BY: MANAGED_BY_VALUE, LABEL_HISTORY: "true"}
SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE},{LABEL_HISTORY}=true"

Warn = Callable[[str], None]


class HistoryForbidden(HistoryError):
    """The job's account may not read or write the history ConfigMaps of a namespace (403)."""


def _forbidden(exc: ClusterError, verbs: str, namespace: str, consequence: str) -> HistoryForbidden:
    return HistoryForbidden(
        f"{exc}. The promotion history is kept in ConfigMaps in namespace {namespace}: the job's Kubernetes account needs "
        f"{verbs} on configmaps there (name it in registry_cluster_history_editors and run the registry_cluster role, "
        f"or give it the edit role in {namespace}); {consequence}",
        field="history",
    )


def record(cluster: Cluster, entries: Mapping[tuple[str, str], list[dict[str, Any]]], limit: int, warn: Warn | None = None) -> tuple[list[str], int]:
    """Add ``entries`` (``{(namespace, stream): [entry, ...]}``, ``history.entries_of``) to each
    ImageStream's history ConfigMap, creating it when there is none. Returns the ``namespace/name``
    of each ConfigMap written and the number of API calls made. A ConfigMap of that name that this
    collection did not make is left alone (a ``HistoryError`` names it). A 403, or a namespace that
    no longer exists (404), goes to ``warn`` (that ConfigMap is not written), or is raised without it."""
    written, calls = [], [0]
    for (namespace, stream), items in sorted(entries.items()):
        try:
            if _record_one(cluster, namespace, stream, items, limit, calls):
                written.append(f"{namespace}/{configmap_name(stream)}")
        except ClusterError as exc:
            if exc.status == 404 and warn is not None:
                # the namespace was deleted (a deleted stream's event can come after it): its history went with it
                warn(f"what this run did to {namespace}/{stream} is not in its history: namespace {namespace} no longer exists ({exc})")
                continue
            if exc.status != 403:
                raise
            later = (
                "a later rollback cannot go back to it" if warn else "the rollback's pin is not recorded, so the next promotion may replace it; run it again"
            )
            refusal = _forbidden(exc, "get, create and update", namespace, f"what this run did to {namespace}/{stream} is not in its history: {later}")
            if warn is None:
                raise refusal
            warn(str(refusal))
    return written, calls[0]


def _record_one(cluster: Cluster, namespace: str, stream: str, items: list[dict[str, Any]], limit: int, calls: list[int]) -> bool:
    name = configmap_name(stream)
    where = f"ConfigMap {namespace}/{name}"
    wrote = [False]

    def compute(found: dict[str, Any] | None) -> dict[str, Any] | None:
        calls[0] += 1  # the read before
        wrote[0] = False
        if found is None:
            data = merge({}, items, limit, where)
            if not data:
                return None
            metadata = {"name": name, "namespace": namespace, "labels": dict(LABELS), "annotations": {ANNOTATION_STREAM: stream}}
            calls[0] += 1
            wrote[0] = True
            return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
        labels = (found.get("metadata") or {}).get("labels") or {}
        if any(labels.get(key) != value for key, value in LABELS.items()):
            raise HistoryError(
                f"{where} exists and was not made by this collection (it lacks the labels {SELECTOR}), so the history of "
                f"{namespace}/{stream} was not written; rename or delete that ConfigMap",
                field="history",
            )
        data = merge(found.get("data") or {}, items, limit, where)
        if data == (found.get("data") or {}):
            return None
        changed = copy.deepcopy(found)
        changed["data"] = data  # Cluster.edit writes at the resourceVersion read: a write in between is a 409
        calls[0] += 1
        wrote[0] = True
        return changed

    cluster.edit(CONFIG_MAP, name, namespace, compute)
    return wrote[0]


def read(cluster: Cluster, namespaces: Collection[str], warn: Warn | None = None) -> list[dict[str, Any]]:
    """The history ConfigMaps of ``namespaces``: one LIST per namespace, by label. A 403 goes to
    ``warn`` (that namespace reads as having no history: its rollbacks are not honoured), or is
    raised without it."""
    found = []
    for namespace in sorted(namespaces):
        try:
            found.extend(cluster.list(CONFIG_MAP, namespace, SELECTOR))
        except ClusterError as exc:
            if exc.status != 403:
                raise
            consequence = (
                "this run went on without it, so the rollbacks recorded there are not honoured (pins cannot be kept): "
                "a promotion may replace a rolled-back digest"
                if warn
                else "a rollback needs it; nothing was changed"
            )
            refusal = _forbidden(exc, "list", namespace, consequence)
            if warn is None:
                raise refusal
            warn(str(refusal))
    return found
