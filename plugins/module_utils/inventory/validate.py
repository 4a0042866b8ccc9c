# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Validation of the inventory (pure): every problem at once, each naming the inventory host (or
the environment entry), the field, the bad value and the fix.

``build_topology`` checks ``segmented_registry_environments`` (``environments``) together with
every host's ``segmented_registry_*`` variables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.auth import parse_k8s_auth
from ansible_collections.segmented.registry.plugins.module_utils.inventory.credentials import parse_credentials, with_builder_mappings
from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import split_host_port, type_name
from ansible_collections.segmented.registry.plugins.module_utils.inventory.environments import Collector, check_environment_set, parse_environments
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    DEFAULT_ENVIRONMENT,
    ROLE_REGISTRY,
    VAR_CREDENTIALS,
    VAR_ENVIRONMENT,
    VAR_INTEGRATED_REGISTRY,
    VAR_K8S_AUTH,
    VAR_ROLE,
    Cluster,
    ClusterAuth,
    Topology,
    TopologyError,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import (
    CLUSTER,
    ROLE_CONSUMER,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.shape import check
from ansible_collections.segmented.registry.plugins.module_utils.text import show


def _parse_environment_value(host: str, value: Any, out: Collector) -> tuple:
    """Returns (kind, name): kind in 'absent', 'default', 'environment', 'invalid'."""
    if value is None:
        return "absent", None
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = list(value)
        if len(items) != 1:
            out.add(
                host,
                VAR_ENVIRONMENT,
                "{} names {} environments, but a consumer is assigned exactly one environment; keep one name (a string)".format(show(items), len(items)),
            )
            return "invalid", None
        value = items[0]
    if not isinstance(value, str):
        out.add(host, VAR_ENVIRONMENT, f"must be an environment name (a string), not {type_name(value)} {show(value)}")
        return "invalid", None
    if value == "" or value == DEFAULT_ENVIRONMENT:
        return "default", None
    return "environment", value


def _check_build_namespaces(host: str, credentials: Optional[dict], environment_owners: dict, out: Collector) -> None:
    """A build namespace may not be an environment's namespace: its builder's push credential
    pushes to the namespace of that name on the registry cluster, where the environment's registry
    takes its pushes from promotion alone. ``environment_owners``: ``{name: its entry's label}``."""
    for index, builder in enumerate((credentials or {}).get("builders") or ()):
        owner = environment_owners.get(builder["namespace"])
        if owner:
            out.add(
                host,
                f"{VAR_CREDENTIALS}.builders[{index}].namespace",
                "{} is also the namespace of environment {} "
                "({}) on the registry cluster; a build there could push into that environment's registry past "
                "promotion: build in a namespace of its own".format(show(builder["namespace"]), builder["namespace"], owner),
            )


#: Which clusters a playbook touches: every managed cluster (site), or the registry cluster alone
#: (promote, demote, reconcile, audit).
TOUCH_ALL = "all"
TOUCH_REGISTRY = "registry"


def build_topology(environments: Any, hosts: Optional[Mapping], touch: str = TOUCH_ALL) -> Topology:
    """Validate the inventory and return its ``Topology``.

    ``environments`` is the value of ``segmented_registry_environments``; ``hosts`` maps each
    inventory host name to its ``segmented_registry_*`` variables (absent = not set). Raises
    ``TopologyError`` listing every problem found. The clusters a playbook touches (``touch``)
    must be told apart: two of them reaching the same cluster, or relying on the same
    ``K8S_AUTH_*`` environment, is a problem; clusters it does not touch may share credentials.
    """
    out = Collector()
    parsed, entries = parse_environments(environments, out)
    names, endpoints, absent = check_environment_set(entries, out)
    envs = {env.name: env for _where, env in parsed}
    known_names = sorted(set(envs) | out.broken_names)
    present_names = [known for known in known_names if known not in absent]

    registries = []
    consumers = []
    defaults = []
    identities: dict[tuple[str, ...], str] = {}
    environment_users = []
    hosts = hosts or {}
    if not isinstance(hosts, Mapping):
        raise TypeError("hosts must map inventory host names to their variables")

    for host in hosts:
        # the collection's variables only: a host's others (Ansible's, the user's, the roles'
        # segmented_registry_* ones) are not the inventory's to refuse
        ours = {name: value for name, value in (hosts[host] or {}).items() if name in CLUSTER}
        values, problems = check(CLUSTER, with_builder_mappings(ours))
        for field_name, message in problems:
            out.add(host, field_name, message)
        role = values[VAR_ROLE]
        kind, environment = _parse_environment_value(host, values[VAR_ENVIRONMENT], out)
        integrated = values[VAR_INTEGRATED_REGISTRY]
        auth = parse_k8s_auth(host, values[VAR_K8S_AUTH], out)
        credentials = parse_credentials(host, values[VAR_CREDENTIALS], role, kind == "environment", out)
        _check_build_namespaces(host, credentials, names, out)
        if any(field_name == VAR_ROLE for field_name, _message in problems):
            continue  # not a role: what the host is, is unknown

        if role == ROLE_REGISTRY:
            if kind == "environment":
                out.add(
                    host,
                    VAR_ENVIRONMENT,
                    "{} is set on the registry cluster, which hosts every environment; remove segmented_registry_environment from this host".format(
                        show(environment)
                    ),
                )
            if integrated is not None:
                try:
                    split_host_port(integrated)
                except ValueError as err:
                    out.add(host, VAR_INTEGRATED_REGISTRY, f"{show(integrated)} is not host[:port]: {err}")
                    integrated = None
                else:
                    if integrated.lower() in endpoints:
                        out.add(
                            host,
                            VAR_INTEGRATED_REGISTRY,
                            "{} is also the endpoint of an environment; the integrated registry (default) needs a host of its own".format(show(integrated)),
                        )
            registries.append(Cluster(name=host, role=ROLE_REGISTRY, auth=auth or ClusterAuth(), integrated_registry=integrated))
            if auth is not None:  # the registry cluster is touched by every playbook
                environment_users.append((host, auth))
            continue

        if integrated is not None:
            out.add(
                host,
                VAR_INTEGRATED_REGISTRY,
                "is only meaningful on the registry cluster (the host with segmented_registry_role: registry); remove it from this host",
            )

        if kind == "environment":
            if environment not in known_names:
                out.add(
                    host,
                    VAR_ENVIRONMENT,
                    "{} is not a known environment; use one of: {} (or default to leave this cluster alone)".format(
                        show(environment), ", ".join(present_names) or "(none defined)"
                    ),
                )
                continue
            if environment in absent:
                out.add(
                    host,
                    VAR_ENVIRONMENT,
                    "{} has state: absent in segmented_registry_environments (its registry "
                    "is removed), so no cluster can pull from it; assign this cluster a present environment ({}), "
                    "or default to leave it alone, or set the state of {} back to present".format(
                        show(environment), ", ".join(present_names) or "none defined", environment
                    ),
                )
                continue
            if environment in envs:
                consumers.append(Cluster(name=host, role=ROLE_CONSUMER, environment=environment, auth=auth or ClusterAuth(), credentials=credentials))
            if auth is not None and touch == TOUCH_ALL:
                environment_users.append((host, auth))
        elif kind == "absent" and role == ROLE_CONSUMER:
            out.add(
                host,
                VAR_ENVIRONMENT,
                "is not set, but segmented_registry_role is consumer; assign one environment ({}) or set it to default to leave this cluster alone".format(
                    ", ".join(present_names) or "none defined"
                ),
            )
        elif kind in ("absent", "default"):
            defaults.append(host)

    if not registries:
        out.add(
            "inventory",
            VAR_ROLE,
            "no host has segmented_registry_role: registry; mark exactly one host (the cluster that hosts the environment registries) with it",
        )
    elif len(registries) > 1:
        out.add(
            "inventory",
            VAR_ROLE,
            "{} hosts have segmented_registry_role: registry ({}); exactly one cluster hosts the environment registries, keep the role on one of them".format(
                len(registries), ", ".join(cluster.name for cluster in registries)
            ),
        )

    # Managed clusters must be told apart.
    env_reliant = [host for host, auth in environment_users if auth.uses_environment]
    if len(env_reliant) > 1:
        out.add(
            "inventory",
            VAR_K8S_AUTH,
            "{} all rely on the K8S_AUTH_* environment variables (no "
            "segmented_registry_k8s_auth), so they would silently reach the same cluster; give each managed "
            "cluster its own segmented_registry_k8s_auth (kubeconfig + context, or host + api_key); at most one "
            "may use the environment".format(", ".join(env_reliant)),
        )
    for host, auth in environment_users:
        if auth.uses_environment:
            continue
        if auth.identity in identities:
            out.add(
                host,
                VAR_K8S_AUTH,
                "reaches the same cluster as {} ({}); each inventory host must be a different cluster".format(identities[auth.identity], auth.source),
            )
        else:
            identities[auth.identity] = host

    if out.problems:
        raise TopologyError(out.problems)

    return Topology(
        environments=envs,
        registry=registries[0],
        consumers=tuple(consumers),
        default_clusters=tuple(defaults),
    )
