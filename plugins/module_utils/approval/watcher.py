# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The ImageStreams of the registry cluster, watched: the events of the event source, forever.

``Watcher.events`` lists the ImageStreams of a namespace (or of every namespace), then watches them
from the list's resourceVersion with bookmarks (the watch ends after ``timeout_seconds`` and is
resumed from the last resourceVersion seen, a bookmark's included):

- the first list emits one ``initial`` event per namespace (the one watched, or each one the list
  found), so that the rulebook reconciles whatever changed while the source was not running
  (restart safety), and an ``error`` event per unreadable approval list;
- each ADDED, MODIFIED or DELETED ImageStream emits what ``changes.diff`` finds against the state
  the watcher keeps (tag -> environments, digest);
- 410 Gone (the resourceVersion was compacted away) lists again and emits only what changed against
  that state, deletions included: nothing missed, nothing repeated;
- an ImageStream of a shape that cannot be read is logged and skipped (its last known state kept);
- any other cluster error is logged and retried after a back-off that doubles up to
  ``backoff_cap`` seconds. An API server that could not be reached (or answered 429) is asked to
  resume the watch where it was; one that answered with another error lists again, as client-go's
  reflectors do: it may refuse that resourceVersion for good (kube-apiserver ends a watch with
  "etcd event received with PrevKv=nil" when etcd was compacted at exactly the next change's
  revision, however often it is resumed), and a list emits only what changed.

The cluster is duck-typed (``Cluster``): ``list_from`` and ``watch`` as ``cluster.Cluster`` has
them, raising ``errors.Gone`` on 410 (an ERROR event of the watch included) and ``ClusterError``
for the rest.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any, Collection, Iterator, Protocol

from ansible_collections.segmented.registry.plugins.module_utils.approval.changes import ERROR, TagState, deleted, diff, stream_key
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, Gone
from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff

#: the event type of the first list, one per namespace
INITIAL = "initial"

LOG = logging.getLogger("segmented.registry.approvals")


class Cluster(Protocol):
    """What the watcher uses of a cluster."""

    def list_from(self, kind: Any, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        """The objects of ``kind`` in ``namespace`` (every namespace when None) and the list's resourceVersion."""

    def watch(self, kind: Any, namespace: str | None, resource_version: str, timeout_seconds: int, allow_bookmarks: bool = True) -> Iterator[dict[str, Any]]:
        """The watch events (``{"type", "object"}``) from ``resource_version`` on, for ``timeout_seconds``."""


class Watcher:
    """The approval-list events of the ImageStreams of ``namespace`` (every namespace when None);
    ``kind`` is the ImageStream kind as ``cluster`` names it."""

    def __init__(
        self,
        cluster: Cluster,
        kind: Any,
        namespace: str | None,
        annotation_key: str,
        known: Collection[str] | None = None,
        timeout_seconds: int = 300,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
    ) -> None:
        self.cluster = cluster
        self.kind = kind
        self.namespace = namespace
        self.annotation_key = annotation_key
        self.known = known
        self.timeout_seconds = timeout_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.state: dict[tuple[str, str], dict[str, TagState]] = {}
        self.resource_version: str | None = None

    def events(self, stop: threading.Event) -> Iterator[dict[str, Any]]:
        """The events until ``stop`` is set (checked between events, and while backing off)."""
        first = True
        failures = 0
        while not stop.is_set():
            try:
                if self.resource_version is None:
                    yield from self._list(first)
                    first = False
                    failures = 0
                for change in self.cluster.watch(self.kind, self.namespace, self.resource_version or "", self.timeout_seconds, allow_bookmarks=True):
                    failures = 0
                    yield from self._apply(change)
                    if stop.is_set():
                        return
            except Gone as exc:
                LOG.info("the watch of %s is too far behind (%s): listing again", self._where(), exc)
                self.resource_version = None
            except ClusterError as exc:
                if exc.status is not None and exc.status != 429:
                    self.resource_version = None
                failures += 1
                delay = backoff(failures, self.backoff_base, self.backoff_cap, jitter=random.random)
                LOG.warning("watching %s failed (%s); trying again in %.1f s", self._where(), exc, delay)
                stop.wait(delay)

    def _where(self) -> str:
        return f"the ImageStreams of namespace {self.namespace}" if self.namespace else "the ImageStreams of every namespace"

    def _list(self, first: bool) -> Iterator[dict[str, Any]]:
        items, version = self.cluster.list_from(self.kind, self.namespace)
        events: list[dict[str, Any]] = []
        state = {}
        for item in items:
            key = stream_key(item)
            stream_events, state[key] = self._diff(key, item)
            events.extend(stream_events)
        for (namespace, stream), before in sorted(self.state.items()):
            if (namespace, stream) not in state:
                events.extend(deleted(namespace, stream, before))
        self.state = state
        self.resource_version = version
        if first:
            namespaces = [self.namespace] if self.namespace else sorted({namespace for namespace, _stream in state})
            yield from ({"type": INITIAL, "namespace": namespace} for namespace in namespaces)
            events = [event for event in events if event["type"] == ERROR]
        yield from events

    def _apply(self, change: dict[str, Any]) -> Iterator[dict[str, Any]]:
        kind, item = change.get("type"), change.get("object") or {}
        self.resource_version = (item.get("metadata") or {}).get("resourceVersion") or self.resource_version
        if kind == "BOOKMARK":
            return
        key = stream_key(item)
        if kind == "DELETED":
            yield from deleted(key[0], key[1], self.state.pop(key, {}))
            return
        events, self.state[key] = self._diff(key, item)
        yield from events

    def _diff(self, key: tuple[str, str], item: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, TagState]]:
        """``changes.diff`` of one ImageStream against its last known state. An object of a shape it
        cannot read (a bug, or something the API server let through) is logged and skipped, its
        last known state kept: one bad ImageStream never ends the source."""
        before = self.state.get(key, {})
        try:
            return diff(before, item, self.annotation_key, self.known)
        except Exception as exc:  # one object must not stop the watch of the others
            LOG.error("ImageStream %s/%s cannot be read (%s: %s); its events are skipped until it changes", key[0], key[1], type(exc).__name__, exc)
            return [], dict(before)
