# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Waiting until the nodes have a change of the global pull secret.

Nodes do not read ``openshift-config/pull-secret``: the machine-config operator renders it into
every node's ``/var/lib/kubelet/config.json``. A change makes the render controller point every
MachineConfigPool at a new rendered MachineConfig (``spec.configuration.name``), which bumps the
pool's ``metadata.generation``; the pool reports ``Updating``, and ``Updated`` once every machine
has it. A pool has rolled out a change made after ``before`` (its ``metadata.generation`` read
before the write) when its status is for a newer generation (``observedGeneration > before``, and
the one its spec is at), says ``Updated=True``, counts ``updatedMachineCount == machineCount``, and
its ``status.configuration`` is the one its spec names. Until every pool has, a credential the nodes
hold must stay valid.

The parts that decide are pure; ``NodeRollout`` reads the pools and polls.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ClusterObjects, ObjectsError
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError

API_VERSION = "machineconfiguration.openshift.io/v1"
KIND = "MachineConfigPool"
POLL_SECONDS = 2


def _condition(pool: dict[str, Any], kind: str) -> str | None:
    for condition in (pool.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition.get("status")
    return None


def generations(pools: Iterable[dict[str, Any]]) -> dict[str, int]:
    """``{pool name: metadata.generation}``: what a change is compared with, read before it."""
    return {p["metadata"]["name"]: int(p["metadata"].get("generation") or 0) for p in pools}


def rolled_out(pool: dict[str, Any], before: int | None) -> bool:
    """Whether ``pool`` reports every machine updated to a configuration newer than generation
    ``before`` (None: the pool is new since then; any generation counts)."""
    status = pool.get("status") or {}
    generation = int(pool["metadata"].get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    wanted = ((pool.get("spec") or {}).get("configuration") or {}).get("name")
    return (
        observed == generation
        and (before is None or observed > before)
        and _condition(pool, "Updated") == "True"
        and status.get("machineCount") is not None
        and status.get("updatedMachineCount") == status.get("machineCount")
        and bool(wanted)
        and (status.get("configuration") or {}).get("name") == wanted
    )


def pending(pools: Iterable[dict[str, Any]], before: Mapping[str, int]) -> list[dict[str, Any]]:
    """The pools (sorted by name) that have not rolled out a change made after ``before``
    (``generations`` of the pools then). A pool deleted since is not waited for."""
    return sorted((p for p in pools if not rolled_out(p, before.get(p["metadata"]["name"]))), key=lambda p: p["metadata"]["name"])


def describe(pool: dict[str, Any], before: int | None) -> str:
    """One pool's state in words, for an error or a result: never anything secret."""
    status = pool.get("status") or {}
    spec = pool.get("spec") or {}
    parts = [f"Updated={_condition(pool, 'Updated') or 'unknown'}", f"Updating={_condition(pool, 'Updating') or 'unknown'}"]
    if _condition(pool, "Degraded") == "True":
        parts.append("Degraded=True")
    parts.append(f"{status.get('updatedMachineCount', '?')}/{status.get('machineCount', '?')} machines updated")
    parts.append(
        f"observedGeneration {status.get('observedGeneration', '?')} of generation "
        f"{pool['metadata'].get('generation', '?')} (before the change: {'none' if before is None else before})"
    )
    parts.append(f"configuration {(status.get('configuration') or {}).get('name') or '?'}, wanted {(spec.get('configuration') or {}).get('name') or '?'}")
    if spec.get("paused"):
        parts.append("paused (spec.paused: a paused pool rolls out nothing; unpause it)")
    return f"{pool['metadata']['name']}: " + ", ".join(parts)


def timeout_message(pools: Iterable[dict[str, Any]], before: Mapping[str, int], timeout: float, where: str) -> str:
    late = pending(pools, before)
    return (
        f"{where}: the nodes did not pick up the change of the global pull secret within {timeout}s; "
        f"MachineConfigPools not updated: {'; '.join(describe(p, before.get(p['metadata']['name'])) for p in late)}. "
        "The old credential must stay valid until they are (oc get machineconfigpool; "
        "raise consumer_cluster_node_rollout_timeout if they are only slow)"
    )


class NodeRollout:
    """The MachineConfigPools of one cluster (``api``: a ClusterObjects)."""

    def __init__(self, api: ClusterObjects) -> None:
        self.api = api

    def pools(self) -> list[dict[str, Any]] | None:
        """Every MachineConfigPool as a dict; None when the cluster has no MachineConfigPool API
        (not an OpenShift cluster with a machine-config operator, e.g. hosted control planes)."""
        try:
            kind = self.api.cluster.kind(API_VERSION, KIND)
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise
        return self.api.cluster.list(kind)

    def wait(
        self, before: Mapping[str, int], timeout: float, where: str, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], object] = time.sleep
    ) -> list[str]:
        """Poll until every pool has rolled out a change made after ``before``; returns the pools'
        states in words. Raises ObjectsError naming each late pool on timeout."""
        deadline = clock() + timeout
        while True:
            pools = self.pools() or []
            if not pending(pools, before):
                return [describe(p, before.get(p["metadata"]["name"])) for p in sorted(pools, key=lambda p: p["metadata"]["name"])]
            if clock() >= deadline:
                raise ObjectsError(timeout_message(pools, before, timeout, where))
            sleep(min(POLL_SECONDS, max(0.0, deadline - clock())))


class RolledOutEdit:
    """An edit of the global pull secret (``edit.apply(api, present)`` returns ``content_changed``
    among its results) that, with ``wait``, returns only once the nodes have the change."""

    def __init__(self, edit: Any, wait: bool, timeout: Any) -> None:
        if wait and (not isinstance(timeout, int) or timeout <= 0):
            raise ObjectsError(f"wait_timeout {timeout!r} must be a number of seconds above 0 (consumer_cluster_node_rollout_timeout), or set wait: false")
        self.edit, self.wait, self.timeout = edit, wait, timeout

    def apply(self, api: ClusterObjects, present: bool = True) -> dict[str, Any]:
        rollout = NodeRollout(api)
        pools = rollout.pools() if self.wait else None
        before = generations(pools or [])
        result = self.edit.apply(api, present)
        content_changed = result.pop("content_changed")
        if not self.wait:
            return result
        if pools is None:
            result["warnings"] = [
                f"the cluster at {api.host} has no MachineConfigPool API: not waiting for the nodes "
                "(on a hosted control plane, the NodePools roll the pull secret out)"
            ]
        elif content_changed:
            result["node_rollout"] = rollout.wait(before, self.timeout, f"{self.edit.where()} at {api.host}")
        return result
