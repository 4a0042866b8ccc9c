# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Carrying out a plan (I/O): copies by digest and removals, with bounded thread pools.

Per copy: the source must still serve the planned digest under the tag, checked once per tag and
run (else a "source moved" failure for that tag: a different digest is never tagged); when the
destination repository already holds the image, only the tag is put; else every blob is HEADed
at the destination, else mounted from another repository of the same registry that has it, else
streamed from the source; an index's child manifests are copied first; the manifest (its exact
bytes) is PUT last, so the destination never serves a tag whose blobs are missing. Removals
follow the method the plan chose (``delete`` or ``retarget``, see ``plan``).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.oci.blobs import copy_blob
from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError, SourceMoved
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import (
    EMPTY_JSON,
    EMPTY_JSON_DIGEST,
    OCI_MANIFEST,
    ManifestError,
    parse_manifest,
    placeholder_manifest,
)
from ansible_collections.segmented.registry.plugins.module_utils.promotion.plan import COPY, FAILED, GATED, REMOVE, SKIP

if TYPE_CHECKING:  # only for annotations: the client module is not imported here at run time
    from ansible_collections.segmented.registry.plugins.module_utils.oci.client import RegistryClient


class Executor:
    """Carries out a plan's copies and removals.

    ``source``: the client of the registry images come from (the integrated registry);
    ``destinations``: ``{environment: client}``; ``actual``: the state the plan was made from
    (which repositories hold which digests: mount sources). ``image_workers`` images are copied
    at once and ``blob_workers`` blobs (over all images); the pools are separate, so an image
    waiting for its blobs never holds up a blob.
    """

    def __init__(
        self,
        source: RegistryClient,
        destinations: Mapping[str, RegistryClient],
        actual: dict[str, dict[str, dict[str, str]]] | None = None,
        image_workers: int = 4,
        blob_workers: int = 6,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.destinations = destinations
        self.image_workers = max(1, image_workers)
        self.blob_workers = max(1, blob_workers)
        self.clock = clock
        self._lock = threading.Lock()
        self._manifests: dict[str, tuple[bytes, str]] = {}  # digest -> (data, media type) from the source
        self._blob_home: dict[tuple[str, str], str] = {}  # (env, blob digest) -> a repository of env that has it
        self._inflight: dict[tuple[str, str], threading.Event] = {}  # (env, blob digest) -> threading.Event, set once the first attempt ended
        self._images: dict[tuple[str, str], set[str]] = {}  # (env, digest) -> set of repositories that hold the manifest (mount candidates)
        self._present: set[tuple[str, str, str]] = set()  # (env, repo, digest) there now (from the state, or copied in this run)
        self._source_checks: dict[tuple[str, str, str], list[Any]] = {}  # (source repo, tag, digest) -> [Event set once checked, error or None]
        self._image_locks: dict[tuple[str, str, str], threading.Lock] = {}  # (env, repo, digest) -> Lock: one copy of an image into a repository at a time
        for env, repos in (actual or {}).items():
            for repo, tags in (repos or {}).items():
                for digest in (tags or {}).values():
                    self._images.setdefault((env, digest), set()).add(repo)
                    self._present.add((env, repo, digest))
        self._blob_pool: Any = None  # the blob pool (a ThreadPoolExecutor) while execute runs

    # -- the run ----------------------------------------------------------------------------
    def execute(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Execute ``actions`` (the plan's) in place: each gets ``result`` (copied, skipped,
        removed, gated, failed) and, for copies, the bytes and blobs moved. Returns them."""
        copies = [a for a in actions if a["action"] == COPY]
        removals = [a for a in actions if a["action"] == REMOVE]
        for item in actions:
            if item["action"] == SKIP:
                item["result"] = "skipped"
            elif item["action"] in (GATED, FAILED):
                item["result"] = item["action"]
        waves = _waves(copies)
        with ThreadPoolExecutor(max_workers=self.blob_workers) as blob_pool:
            self._blob_pool = blob_pool
            with ThreadPoolExecutor(max_workers=self.image_workers) as image_pool:
                for wave in waves:
                    list(image_pool.map(self._run_copy, wave))
                list(image_pool.map(self._run_removal, _removal_groups(removals)))
        self._blob_pool = None
        return actions

    def estimate(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """For a check-mode preview: each copy gets ``bytes_planned``, the size of every blob its
        image refers to (every platform of an index). An upper bound: blobs the destination already
        has are mounted or skipped, not sent. Reads manifests from the source only."""
        for item in actions:
            if item["action"] != COPY:
                continue
            try:
                item["bytes_planned"] = self._size(item.get("source_repository") or item["repository"], item["digest"])
            except (RegistryError, ManifestError) as exc:
                item["bytes_planned"] = None
                item["estimate_error"] = str(exc)
        return actions

    def _size(self, repository: str, digest: str) -> int:
        data, media_type = self._manifest(repository, digest)
        refs = parse_manifest(data, media_type)
        total = sum(blob.get("size") or 0 for blob in refs["blobs"])
        return total + sum(self._size(repository, child["digest"]) for child in refs["children"])

    def _run_copy(self, item: dict[str, Any]) -> None:
        started = self.clock()
        requires = item.get("requires")
        if requires and (requires["environment"], requires["repository"], requires["digest"]) not in self._present:
            item["result"] = GATED
            if item.get("artifact_of"):
                item["reason"] = f"not copied: its image {requires['digest']} did not reach {item['environment']} in this run"
            else:
                item["reason"] = f"policy after {requires['environment']}: its copy into {requires['environment']} did not succeed in this run"
            return
        counters = {"bytes_sent": 0, "blobs_sent": 0, "blobs_mounted": 0, "blobs_present": 0, "manifests_put": 0}
        item.update(counters)
        try:
            self.copy(
                item["environment"],
                item["repository"],
                item["tag"],
                item["digest"],
                counters,
                source_repository=item.get("source_repository"),
                by_digest=bool(item.get("pinned_from")),
            )
        except RegistryError as exc:
            item["result"] = FAILED
            item["error"] = str(exc)
        except Exception as exc:  # a bug must not stop the other tags; it is reported as a failure
            item["result"] = FAILED
            item["error"] = f"{type(exc).__name__}: {exc}"
        else:
            item["result"] = "copied"
        item.update(counters)
        item["seconds"] = round(self.clock() - started, 3)

    # -- copies -----------------------------------------------------------------------------
    def copy(
        self, env: str, repository: str, tag: str, digest: str, counters: dict[str, int], source_repository: str | None = None, by_digest: bool = False
    ) -> None:
        """Copy ``digest`` into ``env``'s registry as ``repository:tag`` (the steps in the module
        docstring). Raises ``SourceMoved`` when the source serves another digest under the
        tag (``by_digest``, a rollback's pinned digest: when the source no longer has that
        digest), ``RegistryError`` otherwise."""
        destination = self.destinations[env]
        source_repository = source_repository or repository
        destination.prefetch_tokens([repository], "pull,push")  # one token for every request of this copy
        self._check_source(source_repository, digest if by_digest else tag, digest)
        with self._lock:
            image_lock = self._image_locks.setdefault((env, repository, digest), threading.Lock())
        # Tags of one image into one repository go one at a time: the first copies the tree, the
        # others only PUT their tag. (Eight at once into one repository of CNCF distribution 2.8
        # made it answer 500 "blob unknown" and 400 "manifest blob unknown" now and then.)
        with image_lock:
            if (env, repository, digest) in self._present or destination.head_manifest(repository, digest) is not None:
                # the repository holds the image (under another tag; a run narrowed to one tag does
                # not read the others): its blobs and child manifests are there, only the tag is missing
                data, media_type = self._manifest(source_repository, digest)
            else:
                data, media_type = self._copy_tree(env, destination, source_repository, repository, digest, counters)
            destination.put_manifest(repository, tag, data, media_type)
            counters["manifests_put"] += 1
            self._record_image(env, repository, digest)

    def _check_source(self, source_repository: str, tag: str, digest: str) -> None:
        """Raise ``SourceMoved`` unless the source serves ``digest`` under ``tag`` (a tag, or the
        digest itself): one HEAD per (repository, tag, digest) in a run, whichever environment asks
        first; the others wait for its answer."""
        key = (source_repository, tag, digest)
        with self._lock:
            check = self._source_checks.get(key)
            owner = check is None
            if check is None:
                check = self._source_checks[key] = [threading.Event(), None]
        if owner:
            try:
                served = self.source.head_manifest(source_repository, tag)
                if tag == digest and served is None:
                    check[1] = SourceMoved(
                        f"{self.source.host}/{source_repository}@{digest} no longer exists in the source registry, so it cannot be "
                        "copied back (a rollback's pinned digest); nothing was copied for this tag",
                        registry=self.source.host,
                        repository=source_repository,
                    )
                elif served is None or served["digest"] != digest:
                    check[1] = SourceMoved(
                        "source moved: {}/{}:{} now {}, but the plan (the ImageStream's status) says {}; nothing "
                        "was copied for this tag (a different digest is never tagged). Run again once the ImageStream "
                        "shows the new image, or approve it again".format(
                            self.source.host, source_repository, tag, "serves " + served["digest"] if served else "does not exist", digest
                        ),
                        registry=self.source.host,
                        repository=source_repository,
                    )
            except Exception as exc:  # a RegistryError, or a bug: every environment waiting on it fails alike
                check[1] = exc
            finally:
                check[0].set()
        check[0].wait()
        if check[1] is not None:
            raise check[1]

    def _manifest(self, repository: str, digest: str) -> tuple[bytes, str]:
        with self._lock:
            cached = self._manifests.get(digest)
        if cached:
            return cached
        manifest = self.source.get_manifest(repository, digest)
        if manifest is None:
            raise SourceMoved(
                "source moved: {}/{}@{} no longer exists in the source registry".format(self.source.host, repository, digest),
                registry=self.source.host,
                repository=repository,
            )
        value = (manifest["data"], manifest["media_type"])
        with self._lock:
            self._manifests[digest] = value
        return value

    def _copy_tree(self, env: str, destination: Any, source_repository: str, repository: str, digest: str, counters: dict[str, int]) -> tuple[bytes, str]:
        """Everything ``digest`` refers to, into the destination (not the manifest itself);
        returns its (bytes, media type)."""
        data, media_type = self._manifest(source_repository, digest)
        try:
            refs = parse_manifest(data, media_type)
        except ManifestError as exc:
            raise RegistryError(f"{self.source.host}/{source_repository}@{digest}: {exc}", registry=self.source.host, repository=source_repository)
        if refs["index"]:
            for child in refs["children"]:
                if (env, repository, child["digest"]) in self._present or destination.head_manifest(repository, child["digest"]) is not None:
                    continue
                child_data, child_type = self._copy_tree(env, destination, source_repository, repository, child["digest"], counters)
                destination.put_manifest(repository, child["digest"], child_data, child_type)
                counters["manifests_put"] += 1
                self._record_image(env, repository, child["digest"])
            return data, media_type
        hints = sorted(self._images.get((env, digest)) or [])
        # the largest blobs first, so that the small ones (the config) fill in at the end
        blobs = sorted(refs["blobs"], key=lambda blob: -(blob.get("size") or 0))
        futures = [self._blob_pool.submit(self._ensure_blob, env, destination, source_repository, repository, blob, hints, counters) for blob in blobs]
        errors = []
        for future in futures:
            try:
                future.result()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return data, media_type

    def _record_image(self, env: str, repository: str, digest: str) -> None:
        with self._lock:
            self._images.setdefault((env, digest), set()).add(repository)
            self._present.add((env, repository, digest))

    def _ensure_blob(
        self, env: str, destination: Any, source_repository: str, repository: str, blob: dict[str, Any], hints: Any, counters: dict[str, int]
    ) -> None:
        digest = blob["digest"]
        key = (env, digest)
        with self._lock:
            event = self._inflight.get(key)
            owner = event is None
            if event is None:
                event = self._inflight[key] = threading.Event()
        if not owner:
            event.wait()  # another image is bringing this blob into this registry: mount it after
        try:
            self._ensure_blob_once(env, destination, source_repository, repository, blob, hints, counters)
        finally:
            if owner:
                event.set()

    def _ensure_blob_once(
        self, env: str, destination: Any, source_repository: str, repository: str, blob: dict[str, Any], hints: Any, counters: dict[str, int]
    ) -> None:
        digest = blob["digest"]
        if destination.head_blob(repository, digest) is not None:
            self._add(counters, "blobs_present")
            self._home(env, digest, repository)
            return
        with self._lock:
            home = self._blob_home.get((env, digest))
        candidates = [home] if home else []
        candidates += [repo for repo in hints if repo not in candidates]
        location = None
        for candidate in candidates:
            if candidate == repository:
                continue
            mounted, location = destination.mount_blob(repository, digest, candidate)
            if mounted:
                self._add(counters, "blobs_mounted")
                self._home(env, digest, repository)
                return
            break  # refused (an upload session was opened instead): stream into it
        sent = copy_blob(self.source, source_repository, destination, repository, digest, blob.get("size"), location=location)
        self._add(counters, "blobs_sent")
        self._add(counters, "bytes_sent", sent)
        self._home(env, digest, repository)

    def _home(self, env: str, digest: str, repository: str) -> None:
        with self._lock:
            self._blob_home.setdefault((env, digest), repository)

    def _add(self, counters: dict[str, int], name: str, amount: int = 1) -> None:
        with self._lock:
            counters[name] += amount

    # -- removals ---------------------------------------------------------------------------
    def _run_removal(self, group: list[dict[str, Any]]) -> None:
        first = group[0]
        env, repository, digest, method = first["environment"], first["repository"], first["digest"], first["method"]
        destination = self.destinations[env]
        try:
            live = []
            for item in group:  # remove only what still is as planned
                found = destination.head_manifest(repository, item["tag"])
                if found is None:
                    item["result"] = "skipped"
                    item["reason"] = "already gone"
                elif found["digest"] != digest:
                    item["result"] = "skipped"
                    item["reason"] = f"changed since the plan (now {found['digest']}); left for the next run"
                else:
                    live.append(item)
            if not live:
                return
            if method == "delete":
                destination.delete_manifest(repository, digest)
                for item in live:
                    item["result"] = "removed"
                return
            self._ensure_empty_config(destination, repository)
            for item in live:
                try:
                    note = f"{repository}:{item['tag']} removed at {time.time():.6f}"
                    placeholder = placeholder_manifest(note)
                    pdigest = destination.put_manifest(repository, item["tag"], placeholder, OCI_MANIFEST)
                    destination.delete_manifest(repository, pdigest)
                    item["result"] = "removed"
                    item["placeholder"] = pdigest
                except RegistryError as exc:
                    item["result"] = FAILED
                    item["error"] = str(exc)
        except Exception as exc:  # a RegistryError, or a bug: reported on these tags, the others go on
            text = str(exc) if isinstance(exc, RegistryError) else f"{type(exc).__name__}: {exc}"
            for item in group:
                if "result" not in item:
                    item["result"] = FAILED
                    item["error"] = text

    def _ensure_empty_config(self, destination: Any, repository: str) -> None:
        if destination.head_blob(repository, EMPTY_JSON_DIGEST) is None:
            destination.upload_bytes(repository, EMPTY_JSON_DIGEST, EMPTY_JSON)


def _waves(copies: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Copies grouped so that each one's ``requires`` is copied in an earlier wave."""
    produced: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for item in copies:
        produced.setdefault((item["environment"], item["repository"], item["digest"]), []).append(item)
    depth: dict[int, int] = {}

    def depth_of(item: dict[str, Any], seen: tuple[int, ...] = ()) -> int:
        key = id(item)
        if key in depth:
            return depth[key]
        requires = item.get("requires")
        level = 0
        if requires and key not in seen:
            producers = [p for p in produced.get((requires["environment"], requires["repository"], requires["digest"])) or [] if p is not item]
            if producers:
                level = 1 + max(depth_of(p, seen + (key,)) for p in producers)
        depth[key] = level
        return level

    waves: dict[int, list[dict[str, Any]]] = {}
    for item in copies:
        waves.setdefault(depth_of(item), []).append(item)
    return [waves[level] for level in sorted(waves)]


def _removal_groups(removals: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Removals grouped: one group per digest deleted outright (its tags go together), one group
    per digest for retargeted tags (done one by one)."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for item in removals:
        key = (item["environment"], item["repository"], item["digest"], item["method"])
        groups.setdefault(key, []).append(item)
    return [groups[key] for key in sorted(groups)]
