# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The promotion history (pure): what the engine carried out, as entries kept on the registry cluster.

One ConfigMap per ImageStream, in the ImageStream's namespace (``configmap_name``), one data key
per tag and environment (``data_key``) holding a JSON list of entries, newest first::

    {"time": "2026-12-05T18:09:48Z", "action": "promote", "environment": "prod", "tag": "v1",
     "digest_before": "sha256:...", "digest_after": "sha256:...", "by": "alice",
     "result": "ok", "message": "copied"}

Bounded: at most ``limit`` entries per key (the option ``history_limit``), an entry at most
``ENTRY_MAX_BYTES`` (its message is cut to fit), so one key holds at most ``limit *
ENTRY_MAX_BYTES`` and ``MAX_LIMIT`` keeps one key under ``DATA_BUDGET_BYTES``, well under the API
server's 1 MiB limit for an object. A ConfigMap whose keys together would pass the budget loses its
oldest entries first (``fit``), never a key's newest one.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Collection, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.errors import PromotionError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import DEFAULT_ENVIRONMENT
from ansible_collections.segmented.registry.plugins.module_utils.promotion.plan import COPY, REMOVE

#: The name of an ImageStream's history ConfigMap is this prefix and the stream's name.
NAME_PREFIX = "segmented-registry-history-"
#: A ConfigMap's name is a DNS-1123 subdomain (at most 253 characters).
MAX_NAME = 253
#: The label that marks a history ConfigMap (with app.kubernetes.io/managed-by), and the annotation
#: that names its ImageStream (a stream's name may be longer than a label value may be).
LABEL_HISTORY = "segmented.registry/history"
ANNOTATION_STREAM = "segmented.registry/image-stream"

PROMOTE = "promote"
DEMOTE = "demote"
ROLLBACK = "rollback"
OK = "ok"
FAILED = "failed"

#: The API server refuses a ConfigMap whose data (keys and values) pass 1 MiB (its validation
#: of a ConfigMap, with the limit of a Secret, ``MaxSecretSize``); etcd's request limit is 1.5 MiB.
OBJECT_LIMIT_BYTES = 1024 * 1024
#: What the data of one ConfigMap may take: the limit less room for its metadata (labels,
#: managedFields), so that a write never meets the limit.
DATA_BUDGET_BYTES = OBJECT_LIMIT_BYTES - 64 * 1024
#: One entry, as JSON, at most: the fixed fields at their longest (an environment of 63
#: characters, a tag of 128, two sha512 digests, a requester of MAX_BY) take about 900 bytes; the
#: message has the rest.
ENTRY_MAX_BYTES = 2048
#: ``by`` is cut to this many characters (a Kubernetes user name or an AWX user name fits).
MAX_BY = 253
#: The largest ``history_limit``: that many entries of one key fit in the data budget.
MAX_LIMIT = DATA_BUDGET_BYTES // ENTRY_MAX_BYTES
DEFAULT_LIMIT = 20

_FIELDS = ("time", "action", "environment", "tag", "digest_before", "digest_after", "by", "result", "message")


class HistoryError(PromotionError):
    """A history option out of range, or a stored history that cannot be read."""


def check_limit(limit: int) -> int:
    """``history_limit`` in range (0 keeps none), or a ``HistoryError`` naming the option and the bound."""
    if limit < 0 or limit > MAX_LIMIT:
        raise HistoryError(
            f"history_limit must be between 0 (keep none) and {MAX_LIMIT}, not {limit}: {MAX_LIMIT} entries of at most "
            f"{ENTRY_MAX_BYTES} bytes fill the {DATA_BUDGET_BYTES} bytes one history ConfigMap may hold (1 MiB is the "
            "API server's limit for an object)",
            field="history_limit",
        )
    return limit


def configmap_name(stream: str) -> str:
    """The history ConfigMap of ``stream``: ``segmented-registry-history-<stream>``; a name too long
    for a ConfigMap is cut and ends in 10 hex digits of the stream's SHA-256, so two streams never share one."""
    name = NAME_PREFIX + stream
    if len(name) <= MAX_NAME:
        return name
    suffix = "-" + hashlib.sha256(stream.encode("utf-8")).hexdigest()[:10]
    return name[: MAX_NAME - len(suffix)].rstrip("-.") + suffix


def data_key(tag: str, environment: str) -> str:
    """The data key of a tag in an environment: ``<tag>.<environment>`` (a tag and an environment
    name are both valid ConfigMap key characters; an environment name has no dot, so the last dot
    splits them)."""
    return f"{tag}.{environment}"


def timestamp(moment: datetime) -> str:
    """UTC, ISO 8601, to the second: ``2026-12-05T18:09:48Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> str:
    """The time of an entry made now (``timestamp``)."""
    return timestamp(datetime.now(timezone.utc))


def entry(
    time: str,
    action: str,
    environment: str,
    tag: str,
    digest_before: str | None,
    digest_after: str | None,
    by: str,
    result: str,
    message: str,
) -> dict[str, Any]:
    """One history entry, its message cut so that the entry takes at most ``ENTRY_MAX_BYTES`` as JSON."""
    item = {
        "time": time,
        "action": action,
        "environment": environment,
        "tag": tag,
        "digest_before": digest_before,
        "digest_after": digest_after,
        "by": by[:MAX_BY],
        "result": result,
        "message": "",
    }
    room = ENTRY_MAX_BYTES - _size(item)
    if _size_of(message) <= room:
        item["message"] = message
        return item
    cut = message
    while _size_of(cut + "...") > room:  # a character takes at least a byte: one cut of the excess is nearly always enough
        cut = cut[: len(cut) - max(1, _size_of(cut + "...") - room)]
    item["message"] = cut + "..."
    return item


def entries_of(actions: Iterable[Mapping[str, Any]], by: str, now: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The history entries of an executed plan, ``{(namespace, stream): [entry, ...]}``: every copy
    (``promote``) and removal (``demote``) of a tag that was carried out or failed. Cosign artifacts
    travel with their image and are not recorded; planned-only, gated and skipped actions changed nothing."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in actions:
        if item["action"] not in (COPY, REMOVE) or item.get("artifact_of") or item.get("result") not in ("copied", "removed", FAILED):
            continue
        namespace, stream = item["repository"].split("/", 1)
        kind = DEMOTE if item["action"] == REMOVE else ROLLBACK if item.get("pinned_from") else PROMOTE
        # a rollback's digest_before is the digest it rolled back from: the pin holds while the source serves it
        before = item["pinned_from"] if kind == ROLLBACK else item.get("current")
        if item["result"] == FAILED:
            attempted = f"removal of {item['digest']}" if kind == DEMOTE else f"copy of {item['digest']}"
            message = f"{attempted} failed: {item.get('error') or item.get('reason')}"
            record = entry(now, kind, item["environment"], item["tag"], before, item.get("current"), by, FAILED, message)
        else:
            after = None if kind == DEMOTE else item["digest"]
            record = entry(now, kind, item["environment"], item["tag"], before, after, by, OK, item.get("reason") or "")
        found.setdefault((namespace, stream), []).append(record)
    return found


def problems_of(
    entries: Iterable[Mapping[str, Any]], known: Collection[str], targets: Iterable[str], by: str, now: str
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The failed-promotion entries of approval lists a run could not follow, ``{(namespace, stream):
    [entry, ...]}`` (``entries``: the approval-list entries in the run's scope, ``tag_entries``):
    a list that cannot be read is a failure in each of ``targets`` (the promotion targets in scope:
    nothing was copied or removed there for that tag), an environment the inventory does not define
    (not in ``known``) a failure in that environment (nothing can be copied there). Nothing was
    attempted, so the entries have no digests; the message names the digest the source serves."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in entries:
        source = f"the source serves {item.get('digest') or 'no image yet'}"
        if item.get("error") or item.get("environments") is None:
            message = f"the approval list cannot be read, so nothing was copied or removed for this tag ({source}): {item.get('error')}"
            failed = [(env, message) for env in targets]
        else:
            failed = [
                (
                    env,
                    f"{env} is not an environment of the inventory, so nothing was copied there ({source}): fix the approval list, "
                    "or add the environment to segmented_registry_environments",
                )
                for env in item["environments"]
                if env != DEFAULT_ENVIRONMENT and env not in known
            ]
        for env, message in failed:
            found.setdefault((item["namespace"], item["stream"]), []).append(entry(now, PROMOTE, env, item["tag"], None, None, by, FAILED, message))
    return found


def pins(configmaps: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], tuple[str, str]]:
    """The rollbacks in force, ``{(repository, tag, environment): (digest rolled back from, digest
    rolled back to)}``: each key whose newest successful entry is a rollback. A later promotion or
    demotion of that tag in that environment (a newer successful entry) ends it; so does the source
    serving another digest (the planner's part, ``plan``)."""
    found = {}
    for row in _newest_ok(configmaps):
        if row["action"] == ROLLBACK and row.get("digest_before") and row.get("digest_after"):
            found[(f"{row['namespace']}/{row['stream']}", row["tag"], row["environment"])] = (row["digest_before"], row["digest_after"])
    return found


def rollbacks_by_tag(configmaps: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
    """The rollbacks in force (``pins``) by tag, as ``tag_environments_info`` returns them with
    ``rollbacks``: ``{(repository, tag): {environment: {"rolled_back_from": digest, "rolled_back_to": digest}}}``."""
    found: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for (repository, tag, environment), (rolled_back_from, rolled_back_to) in pins(configmaps).items():
        found.setdefault((repository, tag), {})[environment] = {"rolled_back_from": rolled_back_from, "rolled_back_to": rolled_back_to}
    return found


def rollback_target(items: Iterable[Mapping[str, Any]], source_digest: str | None, where: str) -> tuple[str, str]:
    """``(digest rolled back from, digest rolled back to)`` for one tag in one environment, from its
    entries (newest first): the digest the environment served before its last successful promotion,
    which must be the promotion of the digest the source serves now. A ``HistoryError`` that says
    why not otherwise (``where`` names the tag, environment and ConfigMap key)."""
    done = [item for item in items if item.get("result") == OK]
    promotions = [item for item in done if item.get("action") == PROMOTE]
    if not promotions:
        raise HistoryError(f"{where}: no promotion is recorded, so there is no earlier digest to roll back to; nothing was changed", field="history")
    last = promotions[0]
    if done[0].get("action") == DEMOTE:
        raise HistoryError(
            f"{where}: the tag was demoted from there at {done[0].get('time')}, after its last promotion; promote it instead; nothing was changed",
            field="environment",
        )
    if not last.get("digest_before"):
        raise HistoryError(
            f"{where}: the last promotion ({last.get('time')}) brought the first digest there, so there is no earlier one to roll back to; nothing was changed",
            field="history",
        )
    if last.get("digest_after") != source_digest:
        raise HistoryError(
            f"{where}: the source tag now serves {source_digest or 'nothing'}, not {last.get('digest_after')} of the last promotion "
            f"({last.get('time')}), so the next reconcile promotes it and a rollback would not hold; nothing was changed. Point the "
            "tag back in the integrated registry instead",
            field="history",
        )
    return last["digest_after"], last["digest_before"]


def _newest_ok(configmaps: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The newest successful entry of each key of these ConfigMaps (``flatten``'s rows)."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in flatten(configmaps):
        key = (row["namespace"], row["stream"], row["tag"], row["environment"])
        if row.get("result") == OK and key not in seen:
            seen[key] = row
    return list(seen.values())


def parse(value: str | None, where: str) -> list[dict[str, Any]]:
    """The entries stored under one key (None or empty: none), or a ``HistoryError`` naming ``where``."""
    if not value:
        return []
    try:
        stored = json.loads(value)
    except ValueError as exc:
        stored = exc
    if not isinstance(stored, list) or not all(isinstance(item, dict) for item in stored):
        raise HistoryError(
            f"{where} is not a JSON list of history entries; fix or delete that key (oc edit configmap), then run again",
            field="history",
        )
    return stored


def merge(data: Mapping[str, str], new: Iterable[Mapping[str, Any]], limit: int, where: str) -> dict[str, str]:
    """A history ConfigMap's data with the ``new`` entries of one run added: each key's entries
    newest first (a run's own in the order given, before what was stored), at most ``limit`` per
    key (0 keeps none: the key goes; a failure that repeats the key's newest entry but for its time
    is not added again), and the whole within ``DATA_BUDGET_BYTES`` (``fit``), every
    key as compact JSON (what this function wrote before comes back byte for byte).
    ``where`` names the ConfigMap in errors."""
    added: dict[str, list[dict[str, Any]]] = {}
    for item in new:
        added.setdefault(data_key(item["tag"], item["environment"]), []).append(dict(item))
    merged = {key: parse(value, f"{where} key {key}") for key, value in data.items()}
    for key, items in added.items():
        for item in items:
            if item["result"] == FAILED and merged.get(key) and _same(merged[key][0], item):
                continue  # an hourly reconcile meeting the same failure again does not push the promotions out
            merged[key] = [item] + merged.get(key, [])
    for key in added:
        merged[key] = merged[key][:limit]
        if not merged[key]:
            del merged[key]
    return {key: _dump(items) for key, items in sorted(fit(merged, where).items())}


def fit(history: dict[str, list[dict[str, Any]]], where: str) -> dict[str, list[dict[str, Any]]]:
    """``history`` ({key: entries, newest first}) within ``DATA_BUDGET_BYTES`` as stored: the oldest
    entry over all keys goes first, never a key's newest. A ``HistoryError`` when the newest
    entries alone do not fit (too many tags and environments for one ConfigMap)."""
    sizes = {key: [_size(item) + 2 for item in items] for key, items in history.items()}
    total = sum(len(key) + sum(values) for key, values in sizes.items())
    while total > DATA_BUDGET_BYTES:
        candidates = [key for key, items in history.items() if len(items) > 1]
        if not candidates:
            raise HistoryError(
                f"{where}: the newest entry of each of its {len(history)} keys alone passes the {DATA_BUDGET_BYTES} bytes a "
                "history ConfigMap may hold; delete the keys of tags that no longer exist (oc edit configmap)",
                field="history_limit",
            )
        oldest = min(candidates, key=lambda name: history[name][-1].get("time") or "")
        history[oldest] = history[oldest][:-1]
        total -= sizes[oldest].pop()
    return history


def flatten(configmaps: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The entries of history ConfigMaps as one list, newest first, each with ``namespace`` and
    ``stream`` (from the ConfigMap's annotation) besides its own fields: what a JMESPath ``select``
    reads (``history[?environment=='prod']``). A key that cannot be read is left out."""
    rows: list[dict[str, Any]] = []
    for configmap in configmaps:
        meta = configmap.get("metadata") or {}
        stream = (meta.get("annotations") or {}).get(ANNOTATION_STREAM)
        for key, value in sorted((configmap.get("data") or {}).items()):
            try:
                items = parse(value, key)
            except HistoryError:
                continue
            rows.extend(dict({"namespace": meta.get("namespace"), "stream": stream}, **{name: item.get(name) for name in _FIELDS}) for item in items)
    rows.sort(key=lambda row: row.get("time") or "", reverse=True)
    return rows


def _same(stored: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``new`` repeats ``stored`` but for its time."""
    return all(stored.get(name) == new.get(name) for name in _FIELDS if name != "time")


def _dump(items: list[dict[str, Any]]) -> str:
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def _size(item: Mapping[str, Any]) -> int:
    return len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _size_of(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2
