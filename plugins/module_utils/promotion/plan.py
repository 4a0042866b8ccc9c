# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The promotion plan (pure): desired state from the approval lists against what each
environment registry holds.

Every approved ``(namespace, stream, tag, digest)`` belongs in each approved environment's
registry as ``<namespace>/<stream>:<tag>``. Actions: ``copy``, ``skip`` (the same digest is
already there), ``remove`` (the tag is there but no longer approved), ``gated`` (a policy holds
it back: reported, not copied) and ``failed`` (cannot be planned: an unreadable approval list, a
registry that cannot be read).

Removal from a CNCF distribution registry, which deletes by digest only (every tag of the digest
goes): when no other tag of that digest stays, the digest is deleted (method ``delete``). When
another tag of the same digest must stay, the tag being removed is first pointed at a
placeholder (a tiny OCI manifest unique to this removal) and the placeholder's digest is deleted
(method ``retarget``): only that tag goes, and the tag that stays is served all along.

A rollback pins a tag in one environment (``pins``, read from the promotion history): while the
source still serves the digest that was rolled back from, the environment keeps the digest it was
rolled back to (a ``copy`` or ``skip`` of that digest with ``pinned_from``); once the source serves
another digest, or the tag was demoted from the environment since, the pin no longer applies. A
pinned copy passes the environment's policies like any other.

Cosign signatures, attestations and SBOMs (tags ``sha256-<hex>.sig``, ``.att``, ``.sbom`` of an
approved digest in the source repository) travel with the image; they are removed with it when
the digest is no longer approved in that repository.
"""

from __future__ import annotations

from typing import Any, Collection, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    Environment,
    DEFAULT_ENVIRONMENT,
    promotion_order,
    promotion_targets,
)
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import artifact_subject, artifact_tags
from ansible_collections.segmented.registry.plugins.module_utils.promotion.policy import hold_back
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope

COPY = "copy"
SKIP = "skip"
REMOVE = "remove"
GATED = "gated"
FAILED = "failed"


def action(kind: str, environment: str | None, repository: str, tag: str, digest: str | None, **extra: Any) -> dict[str, Any]:
    """One planned action (a dict, so that the module can return it as it is)."""
    item = {"action": kind, "environment": environment, "repository": repository, "tag": tag, "digest": digest}
    item.update(extra)
    return item


class _State:
    """What was read, and what this plan copies, for the policies (see ``policy.hold_back``)."""

    def __init__(self, actual: dict[str, dict[str, dict[str, str]]], read_errors: Mapping[Any, str]) -> None:
        self.actual = actual
        self.read_errors = read_errors
        self.copies: set[tuple[str, str, str]] = set()  # (env, repo, digest) copied (or already there) by this plan
        self.pinned: dict[tuple[str, str, str], str] = {}  # (env, repo, tag) -> the source digest a rollback pinned it against

    def present(self, env: str, repo: str) -> dict[str, str]:
        return ((self.actual.get(env) or {}).get(repo)) or {}

    def read_error(self, env: str, repo: str) -> str | None:
        return self.read_errors.get((env, repo)) or self.read_errors.get((env, None))

    def planned(self, env: str, repo: str, digest: str) -> bool:
        return (env, repo, digest) in self.copies


def plan(
    entries: Iterable[dict[str, Any]],
    environments: Mapping[str, Environment],
    actual: dict[str, dict[str, dict[str, str]]],
    scope: Scope | None = None,
    prune: bool = True,
    source_artifacts: Mapping[str, Mapping[str, str]] | None = None,
    stream_annotations: Mapping[str, Mapping[str, str]] | None = None,
    read_errors: Mapping[Any, str] | None = None,
    pins: Mapping[tuple[str, str, str], tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Compute the actions.

    ``entries``: approval-list entries ``{namespace, stream, tag, digest, environments, error?}``
    (``approval.imagestreams.tag_entries``: ``environments`` is the effective list, ``["default"]``
    for none). ``environments``: the inventory's ``{name: Environment}``. ``actual``:
    ``{environment: {repository: {tag: digest}}}``, the repositories read (tags outside the scope
    left out). ``source_artifacts``: ``{repository: {artifact tag: digest}}`` in the source.
    ``stream_annotations``: ``{repository: ImageStream metadata.annotations}``. ``read_errors``:
    ``{(environment, repository or None): message}`` for what could not be read (those tags fail
    instead of being planned; nothing is removed there). ``pins``: ``{(repository, tag, environment):
    (digest rolled back from, digest rolled back to)}`` (``history.pins``).

    An environment with ``state: absent`` is no promotion target: nothing is planned for it (no
    copy, no skip, no removal), whatever the approval lists or its registry hold.

    Returns ``{"actions": [...], "unknown_environments": [...], "absent_environments": [...]}``
    (the names that approval lists use but the inventory does not define, or has with ``state:
    absent``); actions are sorted by promotion order, repository and tag.
    """
    scope = scope or Scope()
    state = _State(actual, read_errors or {})
    order = scope.environments_of(promotion_order(environments))
    actions: list[dict[str, Any]] = []
    desired, protected, unknown, absent = _desired(entries, environments, scope, order, actions, pins or {}, state)
    for env in order:
        for repo in sorted(desired[env]):
            actions.extend(_copies(environments[env], repo, desired[env][repo], state, source_artifacts or {}, stream_annotations or {}))
        if prune:
            for repo in sorted(actual.get(env) or {}):
                if not state.read_error(env, repo) and scope.repository_in_scope(repo):
                    actions.extend(_removals(env, repo, state.present(env, repo), desired[env].get(repo) or {}, protected, scope))
    rank = {name: index for index, name in enumerate(order)}
    actions.sort(key=lambda a: (rank.get(a["environment"], -1), a["repository"], a["tag"], a["action"]))
    return {"actions": actions, "unknown_environments": sorted(unknown), "absent_environments": sorted(absent)}


def _desired(
    entries: Iterable[dict[str, Any]],
    environments: Mapping[str, Environment],
    scope: Scope,
    order: list[str],
    actions: list[dict[str, Any]],
    pins: Mapping[tuple[str, str, str], tuple[str, str]],
    state: _State,
) -> tuple[dict[str, dict[str, dict[str, str]]], set[tuple[str, str]], set[str], set[str]]:
    """``(desired, protected, unknown, absent)``: ``{env: {repo: {tag: digest}}}`` approved for
    the promotion targets (a pinned tag's pinned digest while the source serves the digest it was
    rolled back from; ``state.pinned`` notes it), the ``(repo, tag)`` pairs that must not be touched
    (unreadable list, no image yet), the environment names that approval lists use but the
    inventory does not know, and those it has with ``state: absent``. Appends the ``failed`` and
    ``skip`` actions found on the way."""
    targets = promotion_targets(environments)
    desired: dict[str, dict[str, dict[str, str]]] = {env: {} for env in targets}
    protected: set[tuple[str, str]] = set()
    unknown: set[str] = set()
    absent: set[str] = set()
    for entry in entries:
        if not scope.entry_in_scope(entry):
            continue
        repo, tag = f"{entry['namespace']}/{entry['stream']}", entry["tag"]
        if entry.get("error") or entry.get("environments") is None:
            protected.add((repo, tag))
            actions.append(
                action(
                    FAILED,
                    None,
                    repo,
                    tag,
                    entry.get("digest"),
                    reason=f"the environment list cannot be read, so this tag is left as it is everywhere: {entry.get('error')}",
                )
            )
            continue
        approved = [env for env in entry["environments"] if env != DEFAULT_ENVIRONMENT]
        unknown.update(env for env in approved if env not in environments)
        absent.update(env for env in approved if env in environments and env not in targets)
        for env in approved:
            if env not in targets:
                continue
            if not entry.get("digest"):
                protected.add((repo, tag))
                if env in order:
                    actions.append(action(SKIP, env, repo, tag, None, reason="approved, but the ImageStream has no image for this tag yet"))
                continue
            pin = pins.get((repo, tag, env))
            if pin and pin[0] == entry["digest"]:
                state.pinned[(env, repo, tag)] = pin[0]
                desired[env].setdefault(repo, {})[tag] = pin[1]
            else:
                desired[env].setdefault(repo, {})[tag] = entry["digest"]
    return desired, protected, unknown, absent


def _copies(
    environment: Environment,
    repo: str,
    wanted: Mapping[str, str],
    state: _State,
    source_artifacts: Mapping[str, Mapping[str, str]],
    stream_annotations: Mapping[str, Mapping[str, str]],
) -> list[dict[str, Any]]:
    """Actions that bring ``wanted`` ({tag: digest}) into ``environment``'s ``repo``, with the
    cosign artifacts of each digest."""
    env = environment.name
    actions = []
    error = state.read_error(env, repo)
    tags = state.present(env, repo)
    here = set(tags.values())
    artifacts_done = set()
    for tag in sorted(wanted):
        digest = wanted[tag]
        if error:
            actions.append(action(FAILED, env, repo, tag, digest, reason=error))
            continue
        current = tags.get(tag)
        pinned_from = state.pinned.get((env, repo, tag))
        pin = {"pinned_from": pinned_from} if pinned_from else {}
        pin_note = f"; pinned by a rollback while the source serves {pinned_from}" if pinned_from else ""
        if current == digest:
            actions.append(action(SKIP, env, repo, tag, digest, current=current, reason="the registry already serves this digest" + pin_note, **pin))
            state.copies.add((env, repo, digest))
        else:
            why, requires = hold_back(environment, repo, digest, state, stream_annotations)
            if why:
                extra = {"current": current} if current else {}
                if current:
                    why += f"; the registry keeps serving {current} under this tag"
                actions.append(action(GATED, env, repo, tag, digest, reason=why, **extra))
                continue
            item = action(COPY, env, repo, tag, digest, current=current, reason=(f"retarget from {current}" if current else "not there yet") + pin_note, **pin)
            if requires:
                item["requires"] = requires
                item["reason"] += f"; after its copy into {requires['environment']} in this run"
            actions.append(item)
            state.copies.add((env, repo, digest))
        if digest not in artifacts_done:
            artifacts_done.add(digest)
            actions.extend(_artifact_copies(env, repo, digest, tags, here, source_artifacts.get(repo) or {}))
    return actions


def _artifact_copies(
    env: str, repo: str, digest: str, tags: Mapping[str, str], here: Collection[str], source_artifacts: Mapping[str, str]
) -> list[dict[str, Any]]:
    actions = []
    for atag in artifact_tags(digest):
        adigest = source_artifacts.get(atag)
        if not adigest:
            continue
        if tags.get(atag) == adigest:
            actions.append(action(SKIP, env, repo, atag, adigest, artifact_of=digest, current=adigest, reason="the registry already serves this artifact"))
            continue
        item = action(COPY, env, repo, atag, adigest, artifact_of=digest, current=tags.get(atag), reason=f"artifact of {digest}")
        if digest not in here:
            item["requires"] = {"environment": env, "repository": repo, "digest": digest}
        actions.append(item)
    return actions


def _removals(
    env: str, repo: str, tags: Mapping[str, str], wanted: Mapping[str, str], protected: Collection[tuple[str, str]], scope: Scope
) -> list[dict[str, Any]]:
    """Actions that remove from ``env``'s ``repo`` what it holds (``tags``) in scope and the
    approval lists no longer approve (``wanted`` is what stays approved there)."""
    kept_digests = set(wanted.values())
    kept_digests.update(tags[t] for t in tags if (repo, t) in protected)
    narrowed_digests = {tags[scope.tag]} if scope.tag is not None and scope.tag in tags else set()
    removing = {}
    for tag in sorted(tags):
        if not scope.tag_in_scope(tag):
            continue
        subject = artifact_subject(tag)
        if subject is not None:
            if subject in kept_digests or (scope.tag is not None and subject not in narrowed_digests):
                continue
            removing[tag] = tags[tag]
        elif tag not in wanted and (repo, tag) not in protected:
            removing[tag] = tags[tag]
    actions = []
    for tag in sorted(removing):
        digest = removing[tag]
        staying = sorted(t for t in tags if tags[t] == digest and t not in removing)
        staying += sorted(t for t, d in wanted.items() if d == digest and t not in staying)
        subject = artifact_subject(tag)
        extra = {"artifact_of": subject} if subject else {}
        if staying or scope.tag is not None:
            if staying:
                staying_note = f"{', '.join(staying)} of the same digest stay{'s' if len(staying) == 1 else ''}"
            else:
                staying_note = "the run is narrowed to one tag, so the other tags of this digest are not known"
            actions.append(
                action(
                    REMOVE,
                    env,
                    repo,
                    tag,
                    digest,
                    method="retarget",
                    keeps=staying,
                    current=digest,
                    reason=(
                        f"no longer approved for {env}; {staying_note}, so this tag is pointed at a placeholder whose "
                        "digest is then deleted (the registry deletes by digest)"
                    ),
                    **extra,
                )
            )
        else:
            same = sorted(t for t in removing if removing[t] == digest)
            reason = (
                f"no longer approved for {env}; no other tag of this digest stays, so the digest is deleted"
                if not subject
                else f"artifact of {subject}, which is no longer approved for {env} here"
            )
            actions.append(
                action(
                    REMOVE,
                    env,
                    repo,
                    tag,
                    digest,
                    method="delete",
                    keeps=[],
                    current=digest,
                    removes_with=[t for t in same if t != tag],
                    reason=reason,
                    **extra,
                )
            )
    return actions


def summarize(actions: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts per action (and per result, once executed)."""
    counts: dict[str, Any] = {}
    for item in actions:
        key = item.get("result") or item["action"]
        counts[key] = counts.get(key, 0) + 1
    return counts
