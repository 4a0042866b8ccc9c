# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The promotion engine: make every environment registry hold exactly the approved images.

Three steps, each a function boundary:

1. **read** (I/O): what each environment registry holds (``read_state``: tag -> digest for the
   repositories in scope, with one tag listing per repository and one manifest HEAD per tag) and
   which cosign artifacts the source has for the approved digests (``read_artifacts``).
2. **plan** (pure, ``plan``): desired state from the whitelists (every approved
   ``(namespace, stream, tag, digest)`` belongs in each approved environment's registry as
   ``<namespace>/<stream>:<tag>``) against the actual state. Actions: ``copy``, ``skip`` (the
   same digest is already there), ``remove`` (the tag is there but no longer approved),
   ``gated`` (a policy holds it back: reported, not copied) and ``failed`` (cannot be planned:
   an unreadable whitelist, a registry that cannot be read).
3. **execute** (I/O, ``Executor``): bounded thread pools over images and over blobs. Per copy:
   the source must still serve the planned digest under the tag (else a "source moved" failure
   for that tag: a different digest is never tagged); every blob is HEADed at the destination,
   else mounted from another repository of the same registry that has it, else streamed from the
   source; an index's child manifests are copied first; the manifest (its exact bytes) is PUT
   last, so the destination never serves a tag whose blobs are missing.

Policies (per environment, from the inventory):

- ``after: <env>``: the digest must already be in ``<env>``'s registry under the same
  repository, or be copied there earlier in the same run (the executor runs such copies in a
  later wave and holds them back if that copy fails).
- ``scan_gate: {annotation, value}``: a scanner on the registry cluster records its verdict per
  digest on the ImageStream, in the metadata annotation ``annotation`` whose value is a JSON
  object mapping digests to results, e.g.
  ``security.example.com/scan: '{"sha256:4a5f...": "passed", "sha256:9c1e...": "failed"}'``.
  A digest enters the environment only when its result equals ``value``. The verdict is bound to
  the digest (a tag moved to another image is not covered by the old verdict), survives
  ``oc tag`` (which replaces a tag's annotations) and costs no extra API call (the ImageStream
  list already carries it).

Removal from a CNCF distribution registry, which deletes by digest only (every tag of the digest
goes): when no other tag of that digest stays, the digest is deleted. When another tag of the
same digest must stay, the tag being removed is first pointed at a placeholder (a tiny OCI
manifest unique to this removal, see ``oci.placeholder_manifest``) and the placeholder's digest
is deleted: only that tag goes, and the tag that stays is served all along (no window where it is
missing, as there would be with delete-then-re-tag). Each removal says which method it used and
which tags it kept.

Cosign signatures, attestations and SBOMs (tags ``sha256-<hex>.sig``, ``.att``, ``.sbom`` of an
approved digest in the source repository) travel with the image; they are removed with it when
the digest is no longer approved in that repository.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.segmented.registry.plugins.module_utils import oci

COPY = "copy"
SKIP = "skip"
REMOVE = "remove"
GATED = "gated"
FAILED = "failed"

DEFAULT_ENVIRONMENT = "default"


# ---------------------------------------------------------------------------------------------
# Scope (pure)
# ---------------------------------------------------------------------------------------------


class Scope:
    """What a run may look at and change: namespaces (None: all), one stream, one tag, and the
    environments (None: all of the inventory's)."""

    def __init__(self, namespaces=None, stream=None, tag=None, environments=None):
        if tag is not None and stream is None:
            raise ValueError("tag needs stream (and namespace): a tag is <namespace>/<stream>:<tag>")
        if stream is not None and not namespaces:
            raise ValueError("stream needs namespace")
        self.namespaces = sorted(set(namespaces)) if namespaces else None
        self.stream = stream
        self.tag = tag
        self.environments = sorted(set(environments)) if environments else None

    def repository_in_scope(self, repository):
        parts = repository.split("/")
        if len(parts) != 2:
            return False  # not <namespace>/<stream>: not an image stream, never touched
        namespace, stream = parts
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return self.stream is None or stream == self.stream

    def tag_in_scope(self, tag):
        if self.tag is None:
            return True
        return tag == self.tag or oci.artifact_subject(tag) is not None

    def entry_in_scope(self, entry):
        repository = "{0}/{1}".format(entry["namespace"], entry["stream"])
        return self.repository_in_scope(repository) and (self.tag is None or entry["tag"] == self.tag)

    def to_dict(self):
        return {"namespaces": self.namespaces, "stream": self.stream, "tag": self.tag,
                "environments": self.environments}


def promotion_order(environments):
    """Environment names, each after its ``after`` (stable; a cycle is left in input order)."""
    order, placed, pending = [], set(), list(environments)
    while pending:
        for name in pending:
            after = (environments[name] or {}).get("after")
            if not after or after in placed or after not in environments:
                order.append(name)
                placed.add(name)
                pending.remove(name)
                break
        else:
            order.extend(pending)
            break
    return order


# ---------------------------------------------------------------------------------------------
# Scan gate (pure)
# ---------------------------------------------------------------------------------------------


def scan_verdict(annotations, annotation, digest):
    """``(result or None, problem or None)`` of ``digest`` in the scan annotation's JSON map."""
    raw = (annotations or {}).get(annotation)
    if raw is None:
        return None, None
    try:
        verdicts = json.loads(raw)
    except ValueError:
        verdicts = None
    if not isinstance(verdicts, dict):
        return None, ("annotation {0} is not a JSON object mapping digests to scan results, like "
                      "{{\"sha256:...\": \"passed\"}}".format(annotation))
    result = verdicts.get(digest)
    return (None if result is None else str(result)), None


# ---------------------------------------------------------------------------------------------
# The plan (pure)
# ---------------------------------------------------------------------------------------------


def _action(kind, environment, repository, tag, digest, **extra):
    item = {"action": kind, "environment": environment, "repository": repository, "tag": tag, "digest": digest}
    item.update(extra)
    return item


def plan(entries, environments, actual, scope=None, prune=True, source_artifacts=None, stream_annotations=None,
         read_errors=None):
    """Compute the actions.

    ``entries``: whitelist entries ``{namespace, stream, tag, digest, environments, error?}``
    (imagestreams.tag_entries: ``environments`` is the effective list, ``["default"]`` for none).
    ``environments``: ``{name: {"after": name or None, "scan_gate": {"annotation", "value"} or
    None}}`` (the inventory's). ``actual``: ``{environment: {repository: {tag: digest}}}``, the
    repositories read (tags outside the scope left out). ``source_artifacts``: ``{repository:
    {artifact tag: digest}}`` in the source. ``stream_annotations``: ``{repository: ImageStream
    metadata.annotations}``. ``read_errors``: ``{(environment, repository or None): message}``
    for what could not be read (those tags fail instead of being planned; nothing is removed
    there).

    Returns ``{"actions": [...], "unknown_environments": [...]}``; actions are sorted by
    promotion order, repository and tag.
    """
    scope = scope or Scope()
    source_artifacts = source_artifacts or {}
    stream_annotations = stream_annotations or {}
    read_errors = read_errors or {}
    order = [name for name in promotion_order(environments)
             if scope.environments is None or name in scope.environments]
    actions = []
    unknown = set()

    # Desired state, and the tags that must not be touched.
    desired = dict((env, {}) for env in environments)  # env -> repo -> tag -> digest
    protected = set()  # (repo, tag)
    for entry in entries:
        if not scope.entry_in_scope(entry):
            continue
        repo = "{0}/{1}".format(entry["namespace"], entry["stream"])
        tag = entry["tag"]
        if entry.get("error") or entry.get("environments") is None:
            protected.add((repo, tag))
            actions.append(_action(FAILED, None, repo, tag, entry.get("digest"),
                                   reason="the environment list cannot be read, so this tag is left as it is "
                                          "everywhere: {0}".format(entry.get("error"))))
            continue
        approved = [env for env in entry["environments"] if env != DEFAULT_ENVIRONMENT]
        unknown.update(env for env in approved if env not in environments)
        for env in approved:
            if env not in environments:
                continue
            if not entry.get("digest"):
                protected.add((repo, tag))
                if env in order:
                    actions.append(_action(SKIP, env, repo, tag, None,
                                           reason="approved, but the ImageStream has no image for this tag yet"))
                continue
            desired[env].setdefault(repo, {})[tag] = entry["digest"]

    def present(env, repo):
        return ((actual.get(env) or {}).get(repo)) or {}

    def read_error(env, repo):
        return read_errors.get((env, repo)) or read_errors.get((env, None))

    planned_copies = set()  # (env, repo, digest) copied (or already there) by this plan

    for env in order:
        spec = environments[env] or {}
        after = spec.get("after")
        gate = spec.get("scan_gate")
        for repo in sorted(desired[env]):
            error = read_error(env, repo)
            tags = present(env, repo)
            here = set(tags.values())
            artifacts_done = set()
            for tag in sorted(desired[env][repo]):
                digest = desired[env][repo][tag]
                if error:
                    actions.append(_action(FAILED, env, repo, tag, digest, reason=error))
                    continue
                current = tags.get(tag)
                if current == digest:
                    actions.append(_action(SKIP, env, repo, tag, digest, current=current,
                                           reason="the registry already serves this digest"))
                    planned_copies.add((env, repo, digest))
                    ready = True
                else:
                    why, requires = None, None
                    if after:
                        if digest in set(present(after, repo).values()):
                            pass
                        elif (after, repo, digest) in planned_copies:
                            requires = {"environment": after, "repository": repo, "digest": digest}
                        elif read_error(after, repo):
                            why = "policy after {0}: {0} could not be read ({1})".format(after, read_error(after, repo))
                        else:
                            why = ("policy after {0}: this digest is not in {0}'s registry ({1}) yet; approve it "
                                   "for {0} first".format(after, repo))
                    if why is None and gate:
                        result, problem = scan_verdict(stream_annotations.get(repo), gate["annotation"], digest)
                        if problem:
                            why = "scan gate: {0}".format(problem)
                        elif result != gate.get("value", "passed"):
                            why = "scan gate: annotation {0} of ImageStream {1} {2} for this digest (needs {3!r})".format(
                                gate["annotation"], repo,
                                "has no result" if result is None else "says {0!r}".format(result), gate.get("value"))
                    if why:
                        extra = {"current": current} if current else {}
                        if current:
                            why += "; the registry keeps serving {0} under this tag".format(current)
                        actions.append(_action(GATED, env, repo, tag, digest, reason=why, **extra))
                        ready = False
                    else:
                        item = _action(COPY, env, repo, tag, digest, current=current,
                                       reason="retarget from {0}".format(current) if current else "not there yet")
                        if requires:
                            item["requires"] = requires
                            item["reason"] += "; after its copy into {0} in this run".format(after)
                        actions.append(item)
                        planned_copies.add((env, repo, digest))
                        ready = True
                if not ready or digest in artifacts_done:
                    continue
                artifacts_done.add(digest)
                for atag in oci.artifact_tags(digest):
                    adigest = (source_artifacts.get(repo) or {}).get(atag)
                    if not adigest:
                        continue
                    if tags.get(atag) == adigest:
                        actions.append(_action(SKIP, env, repo, atag, adigest, artifact_of=digest, current=adigest,
                                               reason="the registry already serves this artifact"))
                        continue
                    item = _action(COPY, env, repo, atag, adigest, artifact_of=digest, current=tags.get(atag),
                                   reason="artifact of {0}".format(digest))
                    if digest not in here:
                        item["requires"] = {"environment": env, "repository": repo, "digest": digest}
                    actions.append(item)

        if not prune:
            continue
        # Removals: what the registry holds in scope and the whitelist no longer approves.
        for repo in sorted(actual.get(env) or {}):
            if read_error(env, repo) or not scope.repository_in_scope(repo):
                continue
            tags = present(env, repo)
            wanted = desired[env].get(repo) or {}
            kept_digests = set(wanted.values())
            kept_digests.update(tags[t] for t in tags if (repo, t) in protected and t in tags)
            removing = {}
            for tag in sorted(tags):
                if not scope.tag_in_scope(tag):
                    continue
                subject = oci.artifact_subject(tag)
                if subject is not None:
                    if subject in kept_digests or (scope.tag is not None and subject not in _tag_digests(tags, scope.tag)):
                        continue
                    removing[tag] = tags[tag]
                elif tag not in wanted and (repo, tag) not in protected:
                    removing[tag] = tags[tag]
            for tag in sorted(removing):
                digest = removing[tag]
                staying = sorted(t for t in tags if tags[t] == digest and t not in removing)
                staying += sorted(t for t, d in wanted.items() if d == digest and t not in staying)
                subject = oci.artifact_subject(tag)
                extra = {"artifact_of": subject} if subject else {}
                if staying or scope.tag is not None:
                    if not staying:
                        staying_note = ("the run is narrowed to one tag, so the other tags of this digest are not "
                                        "known")
                    else:
                        staying_note = "{0} of the same digest stay{1}".format(
                            ", ".join(staying), "s" if len(staying) == 1 else "")
                    actions.append(_action(
                        REMOVE, env, repo, tag, digest, method="retarget", keeps=staying, current=digest,
                        reason=("no longer approved for {0}; {1}, so this tag is pointed at a placeholder whose "
                                "digest is then deleted (the registry deletes by digest)".format(env, staying_note)),
                        **extra))
                else:
                    same = sorted(t for t in removing if removing[t] == digest)
                    actions.append(_action(
                        REMOVE, env, repo, tag, digest, method="delete", keeps=[], current=digest,
                        removes_with=[t for t in same if t != tag],
                        reason="no longer approved for {0}; no other tag of this digest stays, so the digest is "
                               "deleted".format(env) if not subject else
                               "artifact of {0}, which is no longer approved for {1} here".format(subject, env),
                        **extra))
    rank = dict((name, index) for index, name in enumerate(order))
    actions.sort(key=lambda a: (rank.get(a["environment"], -1), a["repository"], a["tag"], a["action"]))
    return {"actions": actions, "unknown_environments": sorted(unknown)}


def _tag_digests(tags, tag):
    return set([tags[tag]]) if tag in tags else set()


def summarize(actions):
    """Counts per action (and per result, once executed)."""
    counts = {}
    for item in actions:
        key = item.get("result") or item["action"]
        counts[key] = counts.get(key, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------
# Audit (pure)
# ---------------------------------------------------------------------------------------------


def audit_rows(entries, environments, actual, scope=None):
    """One row per whitelist tag and per registry tag the whitelist does not know: tag, digest,
    approved environments, environments serving that digest, and the drift (what reconcile would
    change)."""
    scope = scope or Scope()
    names = [name for name in promotion_order(environments) if scope.environments is None or name in scope.environments]
    rows = []
    seen = set()
    for entry in entries:
        if not scope.entry_in_scope(entry):
            continue
        repo = "{0}/{1}".format(entry["namespace"], entry["stream"])
        tag, digest = entry["tag"], entry.get("digest")
        seen.add((repo, tag))
        approved = [env for env in (entry.get("environments") or []) if env in environments]
        present, drift = [], []
        for env in names:
            current = ((actual.get(env) or {}).get(repo) or {}).get(tag)
            if current is not None and current == digest:
                present.append(env)
            if entry.get("environments") is None:
                continue
            if env in approved and digest and current != digest:
                drift.append("{0}: {1}".format(env, "missing" if current is None else "serves " + _short(current)))
            elif env not in approved and current is not None:
                drift.append("{0}: not approved".format(env))
        rows.append({"tag": "{0}:{1}".format(repo, tag), "digest": digest,
                     "approved": approved if entry.get("environments") is not None else None,
                     "present": present, "drift": drift if entry.get("environments") is not None else
                     ["whitelist unreadable: " + str(entry.get("error"))]})
    orphans = {}
    for env in names:
        for repo, tags in sorted((actual.get(env) or {}).items()):
            if not scope.repository_in_scope(repo):
                continue
            for tag, digest in sorted((tags or {}).items()):
                if (repo, tag) in seen or oci.artifact_subject(tag) or not scope.tag_in_scope(tag):
                    continue
                row = orphans.setdefault((repo, tag), {"tag": "{0}:{1}".format(repo, tag), "digest": None,
                                                       "approved": [], "present": [], "drift": []})
                row["present"].append(env)
                row["drift"].append("{0}: not in any ImageStream ({1})".format(env, _short(digest)))
    rows.extend(orphans[key] for key in sorted(orphans))
    return rows


def _short(digest):
    return digest[:19] if digest else "-"


def format_table(rows):
    """The audit rows as aligned text lines (a header first)."""
    header = ("TAG", "DIGEST", "APPROVED", "PRESENT", "DRIFT")
    lines = [header]
    for row in rows:
        approved = "?" if row["approved"] is None else (",".join(row["approved"]) or "-")
        lines.append((row["tag"], _short(row["digest"]), approved, ",".join(row["present"]) or "-",
                      "; ".join(row["drift"]) or "none"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return ["  ".join([cell.ljust(width) for cell, width in zip(line[:-1], widths)] + [line[-1]]).rstrip()
            for line in lines]


# ---------------------------------------------------------------------------------------------
# Reading registries (I/O)
# ---------------------------------------------------------------------------------------------


def read_state(client, repositories, scope=None, use_catalog=False, workers=8):
    """What one registry holds: ``({repository: {tag: digest}}, {repository or None: error})``.

    ``repositories``: the ones to read; with ``use_catalog`` the registry's catalog adds every
    repository in scope (so tags of streams that no longer exist are seen). Tags outside the
    scope are left out. One tag listing per repository, one manifest HEAD per tag, in parallel
    batches that each connection sends back to back (``oci.RegistryClient.head_manifests``).
    """
    scope = scope or Scope()
    errors = {}
    repos = set(repositories)
    if use_catalog:
        try:
            repos.update(repo for repo in client.catalog() if scope.repository_in_scope(repo))
        except oci.RegistryError as exc:
            errors[None] = "cannot list the registry's repositories (catalog), so tags of deleted image streams " \
                           "are not seen: {0}".format(exc)
    if repos:
        client.prefetch_tokens(repos, "pull")
    state = {}

    def listing(repo):
        try:
            return repo, [t for t in client.list_tags(repo) if scope.tag_in_scope(t)], None
        except oci.RegistryError as exc:
            return repo, None, str(exc)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        listed = list(pool.map(listing, sorted(repos)))
        batches = []  # (repo, tags): the HEADs one connection sends back to back (oci.head_manifests)
        for repo, tags, error in listed:
            if error:
                errors[repo] = error
                continue
            state[repo] = {}
            batches.extend((repo, tags[start:start + oci.PIPELINE_DEPTH])
                           for start in range(0, len(tags), oci.PIPELINE_DEPTH))

        def heads(batch):
            repo, tags = batch
            try:
                return repo, client.head_manifests(repo, tags), None
            except oci.RegistryError as exc:
                return repo, [], str(exc)

        for repo, found, error in pool.map(heads, batches):
            if error:
                errors[repo] = error
            for tag, head in found:
                if head:
                    state[repo][tag] = head["digest"]
    for repo in list(state):
        if repo in errors:
            del state[repo]
    return state, errors


def read_artifacts(client, wanted, workers=8):
    """Cosign artifact tags in the source: ``({repository: {tag: digest}}, warnings)`` for
    ``wanted`` = ``{repository: set(digests)}``. One tag listing per repository, one HEAD per
    artifact found."""
    found, warnings = {}, []
    if not wanted:
        return found, warnings
    client.prefetch_tokens(wanted, "pull")

    def one(repo):
        try:
            tags = client.list_tags(repo)
        except oci.RegistryError as exc:
            return repo, {}, "cosign artifacts of {0} not looked for: {1}".format(repo, exc)
        result = {}
        for tag in tags:
            subject = oci.artifact_subject(tag)
            if subject and subject in wanted[repo]:
                try:
                    head = client.head_manifest(repo, tag)
                except oci.RegistryError as exc:
                    return repo, {}, "cosign artifact {0}:{1} not read: {2}".format(repo, tag, exc)
                if head:
                    result[tag] = head["digest"]
        return repo, result, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for repo, result, warning in pool.map(one, sorted(wanted)):
            if result:
                found[repo] = result
            if warning:
                warnings.append(warning)
    return found, warnings


# ---------------------------------------------------------------------------------------------
# Executing (I/O)
# ---------------------------------------------------------------------------------------------


class Executor:
    """Carries out a plan's copies and removals.

    ``source``: the client of the registry images come from (the integrated registry);
    ``destinations``: ``{environment: client}``; ``actual``: the state the plan was made from
    (which repositories hold which digests: mount sources). ``image_workers`` images are copied
    at once and ``blob_workers`` blobs (over all images); the pools are separate, so an image
    waiting for its blobs never holds up a blob.
    """

    def __init__(self, source, destinations, actual=None, image_workers=4, blob_workers=6, clock=time.monotonic):
        self.source = source
        self.destinations = destinations
        self.image_workers = max(1, image_workers)
        self.blob_workers = max(1, blob_workers)
        self.clock = clock
        self._lock = threading.Lock()
        self._manifests = {}  # digest -> (data, media type) from the source
        self._blob_home = {}  # (env, blob digest) -> a repository of env that has it
        self._inflight = {}  # (env, blob digest) -> threading.Event, set once the first attempt ended
        self._images = {}  # (env, digest) -> set of repositories that hold the manifest (mount candidates)
        self._present = set()  # (env, repo, digest) there now (from the state, or copied in this run)
        self._source_checks = {}  # (source repo, tag, digest) -> [Event set once checked, error or None]
        self._image_locks = {}  # (env, repo, digest) -> Lock: one copy of an image into a repository at a time
        for env, repos in (actual or {}).items():
            for repo, tags in (repos or {}).items():
                for digest in (tags or {}).values():
                    self._images.setdefault((env, digest), set()).add(repo)
                    self._present.add((env, repo, digest))
        self._blob_pool = None

    # -- the run ----------------------------------------------------------------------------
    def execute(self, actions):
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

    def _run_copy(self, item):
        started = self.clock()
        requires = item.get("requires")
        if requires and (requires["environment"], requires["repository"], requires["digest"]) not in self._present:
            item["result"] = GATED
            if item.get("artifact_of"):
                item["reason"] = "not copied: its image {0} did not reach {1} in this run".format(
                    requires["digest"], item["environment"])
            else:
                item["reason"] = "policy after {0}: its copy into {0} did not succeed in this run".format(
                    requires["environment"])
            return
        counters = {"bytes_sent": 0, "blobs_sent": 0, "blobs_mounted": 0, "blobs_present": 0, "manifests_put": 0}
        item.update(counters)
        try:
            self.copy(item["environment"], item["repository"], item["tag"], item["digest"], counters,
                      source_repository=item.get("source_repository"))
        except oci.RegistryError as exc:
            item["result"] = FAILED
            item["error"] = str(exc)
        except Exception as exc:  # a bug must not stop the other tags; it is reported as a failure
            item["result"] = FAILED
            item["error"] = "{0}: {1}".format(type(exc).__name__, exc)
        else:
            item["result"] = "copied"
        item.update(counters)
        item["seconds"] = round(self.clock() - started, 3)

    # -- copies -----------------------------------------------------------------------------
    def copy(self, env, repository, tag, digest, counters, source_repository=None):
        """Copy ``digest`` into ``env``'s registry as ``repository:tag`` (the steps in the module
        docstring). Raises ``oci.SourceMoved`` when the source serves another digest under the
        tag, ``oci.RegistryError`` otherwise."""
        destination = self.destinations[env]
        source_repository = source_repository or repository
        destination.prefetch_tokens([repository], "pull,push")  # one token for every request of this copy
        self._check_source(source_repository, tag, digest)
        with self._lock:
            image_lock = self._image_locks.setdefault((env, repository, digest), threading.Lock())
        # Tags of one image into one repository go one at a time: the first copies the tree, the
        # others only PUT their tag. (Eight at once into one repository of CNCF distribution 2.8
        # made it answer 500 "blob unknown" and 400 "manifest blob unknown" now and then.)
        with image_lock:
            if (env, repository, digest) in self._present or \
                    destination.head_manifest(repository, digest) is not None:
                # the repository holds the image (under another tag; a run narrowed to one tag does
                # not read the others): its blobs and child manifests are there, only the tag is missing
                data, media_type = self._manifest(source_repository, digest)
            else:
                data, media_type = self._copy_tree(env, destination, source_repository, repository, digest,
                                                   counters)
            destination.put_manifest(repository, tag, data, media_type)
            counters["manifests_put"] += 1
            self._record_image(env, repository, digest)

    def _check_source(self, source_repository, tag, digest):
        """Raise ``oci.SourceMoved`` unless the source serves ``digest`` under ``tag``: one HEAD per
        (repository, tag, digest) in a run, whichever environment asks first; the others wait
        for its answer."""
        key = (source_repository, tag, digest)
        with self._lock:
            check = self._source_checks.get(key)
            owner = check is None
            if owner:
                check = self._source_checks[key] = [threading.Event(), None]
        if owner:
            try:
                served = self.source.head_manifest(source_repository, tag)
                if served is None or served["digest"] != digest:
                    check[1] = oci.SourceMoved(
                        "source moved: {0}/{1}:{2} now {3}, but the plan (the ImageStream's status) says {4}; nothing "
                        "was copied for this tag (a different digest is never tagged). Run again once the ImageStream "
                        "shows the new image, or approve it again".format(
                            self.source.host, source_repository, tag,
                            "serves " + served["digest"] if served else "does not exist", digest),
                        registry=self.source.host, repository=source_repository)
            except Exception as exc:  # a RegistryError, or a bug: every environment waiting on it fails alike
                check[1] = exc
            finally:
                check[0].set()
        check[0].wait()
        if check[1] is not None:
            raise check[1]

    def _manifest(self, repository, digest):
        with self._lock:
            cached = self._manifests.get(digest)
        if cached:
            return cached
        manifest = self.source.get_manifest(repository, digest)
        if manifest is None:
            raise oci.SourceMoved("source moved: {0}/{1}@{2} no longer exists in the source registry".format(
                self.source.host, repository, digest), registry=self.source.host, repository=repository)
        value = (manifest["data"], manifest["media_type"])
        with self._lock:
            self._manifests[digest] = value
        return value

    def _copy_tree(self, env, destination, source_repository, repository, digest, counters):
        """Everything ``digest`` refers to, into the destination (not the manifest itself);
        returns its (bytes, media type)."""
        data, media_type = self._manifest(source_repository, digest)
        try:
            refs = oci.parse_manifest(data, media_type)
        except oci.ManifestError as exc:
            raise oci.RegistryError("{0}/{1}@{2}: {3}".format(self.source.host, source_repository, digest, exc),
                                    registry=self.source.host, repository=source_repository)
        if refs["index"]:
            for child in refs["children"]:
                if (env, repository, child["digest"]) in self._present or \
                        destination.head_manifest(repository, child["digest"]) is not None:
                    continue
                child_data, child_type = self._copy_tree(env, destination, source_repository, repository,
                                                         child["digest"], counters)
                destination.put_manifest(repository, child["digest"], child_data, child_type)
                counters["manifests_put"] += 1
                self._record_image(env, repository, child["digest"])
            return data, media_type
        hints = sorted(self._images.get((env, digest)) or [])
        # the largest blobs first, so that the small ones (the config) fill in at the end
        blobs = sorted(refs["blobs"], key=lambda blob: -(blob.get("size") or 0))
        futures = [self._blob_pool.submit(self._ensure_blob, env, destination, source_repository, repository, blob,
                                          hints, counters) for blob in blobs]
        errors = []
        for future in futures:
            try:
                future.result()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return data, media_type

    def _record_image(self, env, repository, digest):
        with self._lock:
            self._images.setdefault((env, digest), set()).add(repository)
            self._present.add((env, repository, digest))

    def _ensure_blob(self, env, destination, source_repository, repository, blob, hints, counters):
        digest = blob["digest"]
        key = (env, digest)
        with self._lock:
            event = self._inflight.get(key)
            owner = event is None
            if owner:
                event = self._inflight[key] = threading.Event()
        if not owner:
            event.wait()  # another image is bringing this blob into this registry: mount it after
        try:
            self._ensure_blob_once(env, destination, source_repository, repository, blob, hints, counters)
        finally:
            if owner:
                event.set()

    def _ensure_blob_once(self, env, destination, source_repository, repository, blob, hints, counters):
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
        sent = oci.copy_blob(self.source, source_repository, destination, repository, digest, blob.get("size"),
                             location=location)
        self._add(counters, "blobs_sent")
        self._add(counters, "bytes_sent", sent)
        self._home(env, digest, repository)

    def _home(self, env, digest, repository):
        with self._lock:
            self._blob_home.setdefault((env, digest), repository)

    def _add(self, counters, name, amount=1):
        with self._lock:
            counters[name] += amount

    # -- removals ---------------------------------------------------------------------------
    def _run_removal(self, group):
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
                    item["reason"] = "changed since the plan (now {0}); left for the next run".format(found["digest"])
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
                    note = "{0}:{1} removed at {2:.6f}".format(repository, item["tag"], time.time())
                    placeholder = oci.placeholder_manifest(note)
                    pdigest = destination.put_manifest(repository, item["tag"], placeholder, oci.OCI_MANIFEST)
                    destination.delete_manifest(repository, pdigest)
                    item["result"] = "removed"
                    item["placeholder"] = pdigest
                except oci.RegistryError as exc:
                    item["result"] = FAILED
                    item["error"] = str(exc)
        except Exception as exc:  # a RegistryError, or a bug: reported on these tags, the others go on
            text = str(exc) if isinstance(exc, oci.RegistryError) else "{0}: {1}".format(type(exc).__name__, exc)
            for item in group:
                if "result" not in item:
                    item["result"] = FAILED
                    item["error"] = text

    def _ensure_empty_config(self, destination, repository):
        if destination.head_blob(repository, oci.EMPTY_JSON_DIGEST) is None:
            destination.upload_bytes(repository, oci.EMPTY_JSON_DIGEST, oci.EMPTY_JSON)


def _waves(copies):
    """Copies grouped so that each one's ``requires`` is copied in an earlier wave."""
    produced = {}
    for item in copies:
        produced.setdefault((item["environment"], item["repository"], item["digest"]), []).append(item)
    depth = {}

    def depth_of(item, seen=()):
        key = id(item)
        if key in depth:
            return depth[key]
        requires = item.get("requires")
        level = 0
        if requires and key not in seen:
            producers = [p for p in produced.get((requires["environment"], requires["repository"],
                                                  requires["digest"])) or [] if p is not item]
            if producers:
                level = 1 + max(depth_of(p, seen + (key,)) for p in producers)
        depth[key] = level
        return level

    waves = {}
    for item in copies:
        waves.setdefault(depth_of(item), []).append(item)
    return [waves[level] for level in sorted(waves)]


def _removal_groups(removals):
    """Removals grouped: one group per digest deleted outright (its tags go together), one group
    per digest for retargeted tags (done one by one)."""
    groups = {}
    for item in removals:
        key = (item["environment"], item["repository"], item["digest"], item["method"])
        groups.setdefault(key, []).append(item)
    return [groups[key] for key in sorted(groups)]


# ---------------------------------------------------------------------------------------------
# One reconcile run: read, plan, execute (I/O)
# ---------------------------------------------------------------------------------------------


def reconcile(entries, environments, source, destinations, scope=None, prune=True, check_mode=False,
              stream_annotations=None, image_workers=4, blob_workers=6, read_workers=8, clock=time.monotonic):
    """Read every registry in scope, plan, and (unless ``check_mode``) execute.

    ``entries`` and ``stream_annotations`` come from the ImageStreams (see ``plan``);
    ``environments`` is ``{name: {"after", "scan_gate"}}``; ``destinations`` maps every
    environment in scope, and every environment one of them waits on (``after``), to its
    ``oci.RegistryClient``; ``source`` is the integrated registry's client.

    Returns ``{"actions", "summary", "unknown_environments", "warnings", "audit", "seconds"}``;
    in check mode the actions are the plan (nothing is written anywhere).
    """
    scope = scope or Scope()
    started = clock()
    in_scope = [env for env in promotion_order(environments) if scope.environments is None or env in scope.environments]
    to_read = list(in_scope)
    for env in in_scope:
        after = (environments[env] or {}).get("after")
        if after and after in environments and after not in to_read:
            to_read.append(after)
    repos = sorted(set("{0}/{1}".format(e["namespace"], e["stream"]) for e in entries if scope.entry_in_scope(e)))

    actual, read_errors, warnings = {}, {}, []

    def read(env):
        return env, read_state(destinations[env], repos, scope, use_catalog=(env in in_scope and scope.stream is None),
                               workers=read_workers)

    with ThreadPoolExecutor(max_workers=max(1, len(to_read))) as pool:
        for env, (state, errors) in pool.map(read, to_read):
            actual[env] = state
            for repo, error in errors.items():
                if repo is None and state:
                    warnings.append("{0}: {1}".format(env, error))  # catalog refused: the known repositories were read
                    continue
                read_errors[(env, repo)] = error
    wanted = {}
    for item in entries:
        if scope.entry_in_scope(item) and item.get("digest") and item.get("environments"):
            if any(env in in_scope for env in item["environments"]):
                wanted.setdefault("{0}/{1}".format(item["namespace"], item["stream"]), set()).add(item["digest"])
    artifacts, artifact_warnings = read_artifacts(source, wanted, workers=read_workers)
    warnings.extend(artifact_warnings)
    read_seconds = clock() - started

    planned = plan(entries, environments, actual, scope=scope, prune=prune, source_artifacts=artifacts,
                   stream_annotations=stream_annotations, read_errors=read_errors)
    actions = planned["actions"]
    audit = audit_rows(entries, environments, actual, scope)
    if not check_mode:
        Executor(source, destinations, actual, image_workers=image_workers, blob_workers=blob_workers,
                 clock=clock).execute(actions)
    return {
        "actions": actions,
        "summary": summarize(actions),
        "unknown_environments": planned["unknown_environments"],
        "warnings": warnings,
        "audit": audit,
        "seconds": {"read": round(read_seconds, 3), "total": round(clock() - started, 3)},
    }
