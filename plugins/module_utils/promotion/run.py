# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""One promotion run (I/O): read every registry in scope, plan, and execute unless in check mode."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Environment, promotion_order, promotion_targets
from ansible_collections.segmented.registry.plugins.module_utils.promotion.audit import audit_rows
from ansible_collections.segmented.registry.plugins.module_utils.promotion.execute import Executor
from ansible_collections.segmented.registry.plugins.module_utils.promotion.plan import COPY, plan, summarize
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope
from ansible_collections.segmented.registry.plugins.module_utils.promotion.state import read_artifacts, read_state

if TYPE_CHECKING:  # only for annotations: the client module is not imported here at run time
    from ansible_collections.segmented.registry.plugins.module_utils.oci.client import RegistryClient


def reconcile(
    entries: list[dict[str, Any]],
    environments: Mapping[str, Environment],
    source: RegistryClient,
    destinations: Mapping[str, RegistryClient],
    scope: Scope | None = None,
    prune: bool = True,
    check_mode: bool = False,
    stream_annotations: Mapping[str, Mapping[str, str]] | None = None,
    image_workers: int = 4,
    blob_workers: int = 6,
    read_workers: int = 8,
    clock: Callable[[], float] = time.monotonic,
    pins: Mapping[tuple[str, str, str], tuple[str, str]] | None = None,
    copier: Callable[[list[dict[str, Any]], Mapping[str, Any], bool], None] | None = None,
) -> dict[str, Any]:
    """Read every registry in scope, plan, and (unless ``check_mode``) execute.

    ``entries`` and ``stream_annotations`` come from the ImageStreams (see ``plan``);
    ``environments`` is the inventory's ``{name: Environment}``; ``destinations`` maps every
    environment in scope, and every environment one of them waits on (``after``), to its
    ``RegistryClient``; ``source`` is the integrated registry's client. Environments with
    ``state: absent`` are no promotion target: their registries are never read, planned, written
    or audited (they need no client). ``pins``: the rollbacks in force (see ``plan``).

    Returns ``{"actions", "summary", "unknown_environments", "absent_environments", "warnings",
    "audit", "seconds"}``; in check mode the actions are the plan, each copy with
    ``bytes_planned`` (nothing is written anywhere).
    """
    scope = scope or Scope()
    started = clock()
    targets = promotion_targets(environments)
    in_scope = scope.environments_of(promotion_order(environments))
    to_read = list(in_scope)
    for env in in_scope:
        after = environments[env].after
        if after and after in targets and after not in to_read:
            to_read.append(after)
    in_repos: set[str] = set()
    wanted: dict[str, set[str]] = {}  # the approved digests whose cosign artifacts the source may hold
    for item in entries:
        if not scope.entry_in_scope(item):
            continue
        repo = f"{item['namespace']}/{item['stream']}"
        in_repos.add(repo)
        if item.get("digest") and any(env in in_scope for env in item.get("environments") or ()):
            wanted.setdefault(repo, set()).add(item["digest"])
            # a pinned digest's cosign artifacts travel with it as an approved digest's do
            wanted[repo].update(
                pin[1] for (pinned_repo, tag, env), pin in (pins or {}).items() if (pinned_repo, tag) == (repo, item["tag"]) and pin[0] == item["digest"]
            )
    if scope.stream is not None:
        # a run narrowed to a stream reads its repository even when no tag of it is left (the event
        # of a deleted tag or stream): what the registries still hold there is then demoted
        in_repos.update(f"{namespace}/{scope.stream}" for namespace in scope.namespaces or ())
    repos = sorted(in_repos)

    actual, read_errors, warnings = {}, {}, []

    def read(env: str) -> tuple[str, Any]:
        return env, read_state(destinations[env], repos, scope, use_catalog=(env in in_scope and scope.stream is None), workers=read_workers)

    # the source's artifacts are read while the environment registries are
    with ThreadPoolExecutor(max_workers=len(to_read) + 1) as pool:
        source_read = pool.submit(read_artifacts, source, wanted, workers=read_workers)
        for env, (state, errors) in pool.map(read, to_read):
            actual[env] = state
            for repo, error in errors.items():
                if repo is None and state:
                    warnings.append(f"{env}: {error}")  # catalog refused: the known repositories were read
                    continue
                read_errors[(env, repo)] = error
        artifacts, artifact_warnings = source_read.result()
    warnings.extend(artifact_warnings)
    read_seconds = clock() - started

    planned = plan(
        entries,
        environments,
        actual,
        scope=scope,
        prune=prune,
        source_artifacts=artifacts,
        stream_annotations=stream_annotations,
        read_errors=read_errors,
        pins=pins,
    )
    actions = planned["actions"]
    audit = audit_rows(entries, environments, actual, scope, pins)
    executor = Executor(source, destinations, actual, image_workers=image_workers, blob_workers=blob_workers, clock=clock)
    if check_mode:
        executor.estimate(actions)
        if copier is not None:
            copier([a for a in actions if a["action"] == COPY], actual, True)
    elif copier is not None:
        copier([a for a in actions if a["action"] == COPY], actual, False)
        executor.execute([a for a in actions if a["action"] != COPY])
    else:
        executor.execute(actions)
    return {
        "actions": actions,
        "summary": summarize(actions),
        "unknown_environments": planned["unknown_environments"],
        "absent_environments": planned["absent_environments"],
        "warnings": warnings,
        "audit": audit,
        "seconds": {"read": round(read_seconds, 3), "total": round(clock() - started, 3)},
    }
