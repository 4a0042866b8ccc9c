# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""ImageStreams on a cluster (the registry cluster): reads, and the edit of a tag's environment list
as conditional JSON patches (``imagestreams.tag_patch``), retried with back-off when another edit
landed first. The I/O goes through the registry cluster's ``Cluster``.
"""

from __future__ import annotations

import builtins
import random
import time
from typing import Any, Callable, Collection, NoReturn

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import EnvironmentsError, format_value
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import (
    ImageStreamError,
    digest,
    require_tag,
    stored_environments,
    tag_entries,
    tag_patch,
)
from ansible_collections.segmented.registry.plugins.module_utils.cluster import JSON_PATCH, Cluster, Kind
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, Conflict, Module
from ansible_collections.segmented.registry.plugins.module_utils.kinds import IMAGE_STREAM_API_VERSION, IMAGE_STREAM_KIND
from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff

#: Back-off after a refused write: min(CAP, SLOT * 2 ** (attempt - 1)), half of it random (equal
#: jitter), where SLOT is the larger of BASE and the refused attempt's own round trip (read and
#: write): on a busy API server, where that window is long, racing writers spread out as widely.
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 8.0

#: A write refused because another edit landed first (a failed test) does not count against
#: max_attempts; a run still stops after this many times max_attempts attempts in all.
LOST_RACES_FACTOR = 4


def backoff_delay(
    attempt: int, rng: Callable[[], float] = random.random, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS, round_trip: float = 0.0
) -> float:
    """Seconds to wait after refused attempt number ``attempt`` (1-based): exponential in units
    of the larger of ``base`` and the attempt's ``round_trip`` (seconds from its read to the
    refusal), capped, with "equal jitter" (half fixed, half random), so that writers that
    collided spread out over windows as long as their own, and one that keeps losing waits
    longer each time."""
    return backoff(attempt, max(base, round_trip), cap, jitter=rng)


class ImageStreamAPI:
    """The ImageStreams of one cluster (the registry cluster), through its ``Cluster``."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.host = cluster.where
        self._kind: Kind | None = None

    @classmethod
    def connect(cls, module: Module) -> ImageStreamAPI:
        """The API of the cluster named by the module's auth options (K8S_AUTH_* fallbacks)."""
        return cls(Cluster.of_module(module))

    def _forbidden(self, exc: ClusterError) -> NoReturn:
        """``exc`` again, with what a 403 needs granted."""
        if exc.status == 403:
            raise ImageStreamError(
                f"{exc}. Editing environments needs get and patch on imagestreams (image.openshift.io) in the "
                "namespace, for example the registry-editor role; listing needs list (registry-viewer)"
            )
        raise exc

    @property
    def kind(self) -> Kind:
        if self._kind is None:
            missing = (
                f"the cluster at {self.host} does not serve {IMAGE_STREAM_API_VERSION} {IMAGE_STREAM_KIND}: it is not an OpenShift cluster; "
                "point the auth options at the registry cluster"
            )
            try:
                self._kind = self.cluster.kind(IMAGE_STREAM_API_VERSION, IMAGE_STREAM_KIND, missing)
            except ClusterError as exc:
                self._forbidden(exc)
        return self._kind

    def get(self, namespace: str, stream: str) -> dict[str, Any]:
        kind = self.kind
        try:
            found = self.cluster.get(kind, stream, namespace)
        except ClusterError as exc:
            self._forbidden(exc)
        if found is None:
            raise ImageStreamError(f"image stream {namespace}/{stream} not found on the registry cluster ({self.host}): check namespace and stream")
        return found

    def list(self, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        """The ImageStreams of one namespace (one LIST call), or of the cluster (namespace None)."""
        kind = self.kind
        try:
            return self.cluster.list(kind, namespace)
        except ClusterError as exc:
            self._forbidden(exc)

    def patch(self, namespace: str, stream: str, operations: builtins.list[dict[str, Any]]) -> dict[str, Any]:
        """Apply a JSON patch (``tag_patch``) to the ImageStream, without a resourceVersion: its
        ``test`` operations are the guard. A server-side dry run in check mode (the ``Cluster``
        sends it), where the tests are checked too. Raises ``Conflict`` when a test fails (the API
        server answers 422: ``lost_race``) or on 409."""
        kind = self.kind
        try:
            return self.cluster.patch(kind, stream, namespace, operations, JSON_PATCH)
        except Conflict:
            raise
        except ClusterError as exc:
            if exc.status == 404:
                raise ImageStreamError(f"image stream {namespace}/{stream} was deleted while its tag was being edited; nothing was written")
            self._forbidden(exc)


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
