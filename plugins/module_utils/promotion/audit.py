# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The audit (pure): for every tag, where it is approved, where its digest is served, and the
drift between the two (what a reconcile run would change). Environments are listed in promotion
order in every column."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Environment, promotion_order
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import artifact_subject
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope


def audit_rows(
    entries: Iterable[dict[str, Any]],
    environments: Mapping[str, Environment],
    actual: dict[str, dict[str, dict[str, str]]],
    scope: Scope | None = None,
    pins: Mapping[tuple[str, str, str], tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """One row per approval-list tag and per registry tag that no approval list knows: tag,
    digest, approved environments, environments serving that digest, and the drift.

    ``environments`` is the inventory's ``{name: Environment}``; an approval list naming an
    environment the inventory does not know shows it as drift (nothing is copied for it). An
    environment with ``state: absent`` is not audited: it has no column and no drift. A tag a
    rollback pinned (``pins``, see ``plan``) is expected to serve the pinned digest there."""
    scope = scope or Scope()
    order = promotion_order(environments)
    names = scope.environments_of(order)
    rows = []
    seen = set()
    for entry in entries:
        if not scope.entry_in_scope(entry):
            continue
        repo, tag, digest = f"{entry['namespace']}/{entry['stream']}", entry["tag"], entry.get("digest")
        seen.add((repo, tag))
        if entry.get("environments") is None:
            rows.append(
                {
                    "tag": f"{repo}:{tag}",
                    "digest": digest,
                    "approved": None,
                    "present": _present(names, actual, repo, tag, digest),
                    "drift": [f"approval list unreadable: {entry.get('error')}"],
                }
            )
            continue
        listed = entry["environments"]
        approved = [env for env in order if env in listed]
        drift = []
        for env in names:
            current = ((actual.get(env) or {}).get(repo) or {}).get(tag)
            pin = (pins or {}).get((repo, tag, env))
            expected = pin[1] if pin and pin[0] == digest else digest
            if env in approved and expected and current != expected:
                drift.append(f"{env}: {'missing' if current is None else 'serves ' + _short(current)}")
            elif env not in approved and current is not None:
                drift.append(f"{env}: not approved")
        drift.extend(f"{env}: not an environment of the inventory (ignored)" for env in listed if env not in environments and env != "default")
        rows.append({"tag": f"{repo}:{tag}", "digest": digest, "approved": approved, "present": _present(names, actual, repo, tag, digest), "drift": drift})
    orphans: dict[tuple[str, str], dict[str, Any]] = {}
    for env in names:
        for repo, tags in sorted((actual.get(env) or {}).items()):
            if not scope.repository_in_scope(repo):
                continue
            for tag, digest in sorted((tags or {}).items()):
                if (repo, tag) in seen or artifact_subject(tag) or not scope.tag_in_scope(tag):
                    continue
                row = orphans.setdefault((repo, tag), {"tag": f"{repo}:{tag}", "digest": None, "approved": [], "present": [], "drift": []})
                row["present"].append(env)
                row["drift"].append(f"{env}: not in any ImageStream ({_short(digest)})")
    rows.extend(orphans[key] for key in sorted(orphans))
    return rows


def _present(names: Iterable[str], actual: dict[str, dict[str, dict[str, str]]], repo: str, tag: str, digest: str | None) -> list[str]:
    return [env for env in names if digest is not None and ((actual.get(env) or {}).get(repo) or {}).get(tag) == digest]


def _short(digest: str | None) -> str:
    return digest[:19] if digest else "-"


def format_table(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The audit rows as aligned text lines (a header first)."""
    header = ("TAG", "DIGEST", "APPROVED", "PRESENT", "DRIFT")
    lines = [header]
    for row in rows:
        approved = "?" if row["approved"] is None else (",".join(row["approved"]) or "-")
        lines.append((row["tag"], _short(row["digest"]), approved, ",".join(row["present"]) or "-", "; ".join(row["drift"]) or "none"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return ["  ".join([cell.ljust(width) for cell, width in zip(line[:-1], widths)] + [line[-1]]).rstrip() for line in lines]
