# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The glue between the watchers (``watcher.py``) and ansible-rulebook's asyncio queue, for the event
source ``segmented.registry.approvals`` (``extensions/eda/plugins/event_source/approvals.py``).

Each watcher's watch blocks, so each runs in a daemon thread of its own and hands its events to
the event loop (``asyncio.run_coroutine_threadsafe``), waiting until the queue took each one: a
slow rulebook slows the watch down rather than piling events up. Cancelling ``run`` (ansible-rulebook
shutting down) stops the threads at their next event or back-off; a thread that fails with
anything but a cluster error (which the watcher retries itself) ends ``run`` with that error.
"""

from __future__ import annotations

import asyncio
import functools
import random
import threading
from typing import Any, Collection, Sequence

from ansible_collections.segmented.registry.plugins.module_utils.approval.watcher import LOG, Watcher
from ansible_collections.segmented.registry.plugins.module_utils.cluster import Cluster
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError
from ansible_collections.segmented.registry.plugins.module_utils.kinds import IMAGE_STREAM_API_VERSION, IMAGE_STREAM_KIND
from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff


def watchers(
    cluster: Cluster,
    namespaces: Sequence[str],
    annotation_key: str,
    known: Collection[str] | None = None,
    timeout_seconds: int = 300,
    backoff_cap: float = 30.0,
    backoff_base: float = 1.0,
) -> list[Watcher]:
    """One watcher per namespace of ``namespaces`` (one for every namespace when empty) on
    ``cluster`` (looking up the ImageStream kind reads the API's discovery: blocking)."""
    kind = cluster.kind(IMAGE_STREAM_API_VERSION, IMAGE_STREAM_KIND)
    targets: list[str | None] = list(namespaces) or [None]
    return [
        Watcher(cluster, kind, namespace, annotation_key, known, timeout_seconds=timeout_seconds, backoff_base=backoff_base, backoff_cap=backoff_cap)
        for namespace in targets
    ]


async def run(queue: Any, sources: Sequence[Watcher]) -> None:
    """Put the events of every watcher of ``sources`` on ``queue`` until cancelled."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    failed: asyncio.Future[None] = loop.create_future()

    def fail(error: BaseException) -> None:
        if not failed.done():
            failed.set_exception(error)

    def pump(source: Watcher) -> None:
        try:
            for event in source.events(stop):
                asyncio.run_coroutine_threadsafe(queue.put(event), loop).result()
        except Exception as error:  # a bug, not a cluster error: end the source with it
            if not stop.is_set():
                loop.call_soon_threadsafe(fail, error)

    for source in sources:
        threading.Thread(target=pump, args=(source,), name=f"approvals {source.namespace or '(all namespaces)'}", daemon=True).start()
    try:
        await failed
    finally:
        stop.set()


async def serve(
    queue: Any,
    auth: dict[str, Any],
    namespaces: Sequence[str],
    annotation_key: str,
    known: Collection[str] | None = None,
    timeout_seconds: int = 300,
    backoff_cap: float = 30.0,
    backoff_base: float = 1.0,
) -> None:
    """Watch the registry cluster named by kubernetes.core's auth options ``auth`` (``K8S_AUTH_*``
    fallbacks) and put the events on ``queue`` until cancelled.

    An API server that does not answer (or answers 5xx) while the watchers are set up is waited for
    with the watchers' back-off; one that refuses (401, 403, no ImageStream kind) or options that
    cannot be used end the source with a ``ClusterError`` that says what to fix."""
    cluster = Cluster.of_auth(auth, "the registry cluster")
    make = functools.partial(watchers, cluster, namespaces, annotation_key, known, timeout_seconds, backoff_cap, backoff_base)
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        try:
            sources = await loop.run_in_executor(None, make)
            break
        except ClusterError as exc:
            if exc.status is not None and exc.status < 500:
                raise
            attempt += 1
            delay = backoff(attempt, backoff_base, backoff_cap, jitter=random.random)
            LOG.warning("setting up the watch failed (%s); trying again in %.1f s", exc, delay)
            await asyncio.sleep(delay)
    await run(queue, sources)
