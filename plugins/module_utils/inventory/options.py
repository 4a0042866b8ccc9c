# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Module-option plumbing: the ``clusters`` option of the modules <-> the inventory's per-host
``segmented_registry_*`` variables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    VAR_CREDENTIALS,
    VAR_ENVIRONMENT,
    VAR_INTEGRATED_REGISTRY,
    VAR_K8S_AUTH,
    VAR_ROLE,
    Problem,
    TopologyError,
)
from ansible_collections.segmented.registry.plugins.module_utils.text import show


#: Module option (an item of ``clusters``) -> inventory variable.
CLUSTER_OPTIONS = (
    ("role", VAR_ROLE),
    ("environment", VAR_ENVIRONMENT),
    ("integrated_registry", VAR_INTEGRATED_REGISTRY),
    ("k8s_auth", VAR_K8S_AUTH),
    ("credentials", VAR_CREDENTIALS),
)


def hosts_to_clusters(hosts: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``{host: {segmented_registry_*: value}}`` -> the ``clusters`` option of the modules."""
    clusters = []
    for host, hostvars in hosts.items():
        item: dict[str, Any] = {"name": host}
        for option, variable in CLUSTER_OPTIONS:
            if hostvars.get(variable) is not None:
                item[option] = hostvars[variable]
        clusters.append(item)
    return clusters


def clusters_to_hosts(clusters: Optional[Iterable[Any]]) -> dict[str, dict[str, Any]]:
    """The ``clusters`` option of the modules -> ``{host: {segmented_registry_*: value}}``."""
    hosts: dict[str, dict[str, Any]] = {}
    problems = []
    for index, item in enumerate(clusters or ()):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            problems.append(Problem(f"clusters[{index}]", "name", f"each cluster needs the name of its inventory host, not {show(name)}"))
            continue
        if name in hosts:
            problems.append(Problem(name, "name", "is listed twice in clusters; list each inventory host once"))
            continue
        hosts[name] = {variable: item.get(option) for option, variable in CLUSTER_OPTIONS if item.get(option) is not None}
    if problems:
        raise TopologyError(problems)
    return hosts
