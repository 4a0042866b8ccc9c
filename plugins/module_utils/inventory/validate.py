# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Validation of the inventory (pure): every problem at once, each naming the inventory host (or
the environment entry), the field, the bad value and the fix.

``build_environments`` checks ``segmented_registry_environments`` alone (what a promotion needs);
``build_topology`` checks it together with every host's ``segmented_registry_*`` variables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.auth import parse_k8s_auth
from ansible_collections.segmented.registry.plugins.module_utils.inventory.credentials import parse_credentials, with_builder_mappings
from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import split_host_port, type_name
from ansible_collections.segmented.registry.plugins.module_utils.inventory.deployment import (
    parse_replicas,
    parse_storage,
    parse_tls,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    DEFAULT_ENVIRONMENT,
    ROLE_REGISTRY,
    VAR_CREDENTIALS,
    VAR_ENVIRONMENT,
    VAR_ENVIRONMENTS,
    VAR_INTEGRATED_REGISTRY,
    VAR_K8S_AUTH,
    VAR_ROLE,
    Cluster,
    ClusterAuth,
    Environment,
    Problem,
    ScanGate,
    Topology,
    TopologyError,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import (
    CLUSTER,
    ENVIRONMENT,
    ROLE_CONSUMER,
    SCAN_GATE_DEFAULT_VALUE,
    STATE_ABSENT,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.shape import check
from ansible_collections.segmented.registry.plugins.module_utils.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
)
from ansible_collections.segmented.registry.plugins.module_utils.text import show

# OpenShift keeps these namespaces (and every openshift-* / kube-* one) for itself.
_RESERVED_NAMESPACES = ("openshift", "kube-system", "kube-public", "kube-node-lease")
_RESERVED_NAMESPACE_PREFIXES = ("openshift-", "kube-")


class _Collector:
    def __init__(self):
        self.problems = []
        # Environment names that are well formed but whose entry has problems: hosts may still
        # refer to them without getting a second, misleading problem.
        self.broken_names = set()

    def add(self, host: str, field_name: str, message: str) -> None:
        self.problems.append(Problem(host, field_name, message))


def _environment_label(index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    label = f"{VAR_ENVIRONMENTS}[{index}]"
    if isinstance(name, str) and name:
        label += f" ({name})"
    return label


def _parse_policy(where: str, value: Optional[dict], out: _Collector) -> tuple:
    """Returns (after, scan_gate); ``policy.after``'s references are checked with every entry."""
    if value is None:
        return None, None
    gate = value["scan_gate"]
    if gate is None:
        return value["after"], None
    annotation, gate_value = gate["annotation"], gate["value"]
    ok = annotation is not None and gate_value is not None  # else: a problem of its shape
    if annotation is not None and not is_qualified_name(annotation):
        out.add(
            where,
            "policy.scan_gate.annotation",
            "{} is not a Kubernetes annotation key; use [prefix/]name, like security.example.com/scan-result".format(show(annotation)),
        )
        ok = False
    if gate_value == "":
        out.add(where, "policy.scan_gate.value", f'must be a non-empty string (default {SCAN_GATE_DEFAULT_VALUE!r}), not ""')
        ok = False
    return value["after"], ScanGate(annotation=annotation, value=gate_value) if ok else None


def _parse_environments(environments: Any, out: _Collector) -> tuple:
    """Returns ``(parsed, entries)``: a list of (label, Environment) for the entries that parsed,
    and (label, values) for every entry that is a mapping (``values`` as ``shape.check`` returns
    them: what the checks across entries read)."""
    parsed: list[tuple[str, Environment]] = []
    entries: list[tuple[str, dict[str, Any]]] = []
    if environments is None:
        out.add(
            "inventory",
            VAR_ENVIRONMENTS,
            "is not defined; define the environments once, in group_vars/all, like [{name: test, route_host: test-registry.apps.registry.example.com}]",
        )
        return parsed, entries
    if not isinstance(environments, Sequence) or isinstance(environments, (str, bytes)):
        out.add("inventory", VAR_ENVIRONMENTS, f"must be a list of environments, not {type_name(environments)} {show(environments)}")
        return parsed, entries
    if not environments:
        out.add(
            "inventory", VAR_ENVIRONMENTS, "is empty; define at least one environment, like {name: test, route_host: test-registry.apps.registry.example.com}"
        )
        return parsed, entries
    for index, raw in enumerate(environments):
        where = _environment_label(index, raw)
        if not isinstance(raw, Mapping):
            out.add(where, "", f"each environment must be a mapping with at least name and route_host, not {type_name(raw)} {show(raw)}")
            continue
        before = len(out.problems)
        raw_name = raw.get("name")
        namespace = raw_name if isinstance(raw_name, str) and is_dns1123_label(raw_name) else "<name>"
        values, problems = check(ENVIRONMENT, raw, {"namespace": namespace})
        for field_name, message in problems:
            out.add(where, field_name, message)
        entries.append((where, values))

        name = values["name"]
        if name is None:
            pass  # a problem of its shape
        elif not is_dns1123_label(name):
            out.add(
                where,
                "name",
                "{} is not a DNS-1123 label (it becomes a namespace); use at most 63 lowercase "
                "letters, digits and '-', starting and ending with a letter or digit, like uat".format(show(name)),
            )
        elif name == DEFAULT_ENVIRONMENT:
            out.add(where, "name", "'default' is reserved for the integrated registry (clusters left alone); choose another name")
        elif name in _RESERVED_NAMESPACES or name.startswith(_RESERVED_NAMESPACE_PREFIXES):
            out.add(where, "name", f"{show(name)} is a namespace OpenShift reserves (openshift, openshift-*, kube-*); choose another name")

        route_host = values["route_host"]
        if route_host is not None and not is_dns1123_subdomain(route_host):
            out.add(
                where,
                "route_host",
                "{} is not a DNS-1123 subdomain; use a lowercase host name without scheme, port or path, like test-registry.apps.registry.example.com".format(
                    show(route_host)
                ),
            )

        endpoint = values["endpoint"]
        if endpoint is not None:
            try:
                split_host_port(endpoint)
            except ValueError as err:
                out.add(where, "endpoint", f"{show(endpoint)} is not host[:port]: {err}")

        ca_cert = values["ca_cert"]
        if ca_cert == "":
            out.add(where, "ca_cert", 'must be the path of a PEM file, not ""')

        tls = parse_tls(where, values["tls"], namespace, out)
        storage = parse_storage(where, values["storage"], namespace, out)
        replicas = parse_replicas(where, values["replicas"], values["storage"], out)
        after, scan_gate = _parse_policy(where, values["policy"], out)

        if len(out.problems) == before:
            parsed.append(
                (
                    where,
                    Environment(
                        name=name,
                        route_host=route_host,
                        endpoint=(endpoint or route_host),
                        ca_cert=ca_cert,
                        validate_certs=values["validate_certs"],
                        storage=storage,
                        after=after,
                        scan_gate=scan_gate,
                        state=values["state"],
                        replicas=replicas,
                        tls=tls,
                    ),
                )
            )
        elif is_dns1123_label(name) and name != DEFAULT_ENVIRONMENT:
            out.broken_names.add(name)
    return parsed, entries


def _claim(owners: dict, key: str, where: str, out: _Collector, field: str, message: str) -> None:
    """Record ``where`` as the owner of ``key``, or report ``message`` (its ``{owner}`` filled in)
    when another entry owns it already: names, route hosts and endpoints must be unique."""
    if key in owners:
        out.add(where, field, message.format(owner=owners[key]))
    else:
        owners[key] = where


def _check_environment_set(entries: list, out: _Collector) -> tuple:
    """Uniqueness and policy.after references (needs every entry: ``entries`` as
    ``_parse_environments`` returns them). Returns ``(names, endpoints, absent)``: the owner of
    each name and endpoint, and the names with ``state: absent``."""
    names: dict[str, str] = {}
    route_hosts: dict[str, str] = {}
    endpoints: dict[str, str] = {}
    absent = set()
    for where, values in entries:
        name = values["name"]
        if name:
            _claim(names, name, where, out, "name", f"{show(name)} is already defined by {{owner}}; environment names must be unique")
            if values["state"] == STATE_ABSENT:
                absent.add(name)
        route_host = values["route_host"]
        if route_host:
            _claim(
                route_hosts,
                route_host.lower(),
                where,
                out,
                "route_host",
                "{0} is already the route_host of {{owner}}; each environment needs its own registry host".format(show(route_host)),
            )
        endpoint = values["endpoint"] or route_host
        if endpoint:
            _claim(
                endpoints,
                endpoint.lower(),
                where,
                out,
                "endpoint",
                "{0} is already the endpoint of {{owner}}; clients could not tell the environments apart: give each its own host[:port]".format(show(endpoint)),
            )
    # policy.after: known, not itself, no cycle (checked on every entry, even one with other problems)
    afters = {}
    for where, values in entries:
        after = (values["policy"] or {}).get("after")
        name = values["name"]
        if after is None:
            continue
        if after == name:
            out.add(
                where,
                "policy.after",
                "{} is this environment itself; name the environment whose registry must hold a digest first (for prod, usually uat)".format(show(after)),
            )
        elif after not in names or after == DEFAULT_ENVIRONMENT:
            known = sorted(known_name for known_name in names if known_name not in absent and known_name != DEFAULT_ENVIRONMENT)
            out.add(where, "policy.after", f"{show(after)} is not a known environment; use one of: {', '.join(known) or '(none defined)'}")
        elif after in absent:
            present = sorted(known_name for known_name in names if known_name not in absent and known_name not in (name, DEFAULT_ENVIRONMENT))
            out.add(
                where,
                "policy.after",
                "{} has state: absent, so it is no promotion target and would never hold "
                "a digest; point policy.after at a present environment ({}), remove policy.after, or set the "
                "state of {} back to present".format(show(after), ", ".join(present) or "none defined", after),
            )
        elif name is not None and name not in afters:
            afters[name] = (where, after)
    reported: set[str] = set()
    for start in afters:
        path = [start]
        current = start
        while current in afters:
            current = afters[current][1]
            if current in path:
                cycle = path[path.index(current) :]
                if not reported.intersection(cycle):
                    reported.update(cycle)
                    out.add(
                        afters[cycle[0]][0],
                        "policy.after",
                        "the environments wait on each other in a cycle ({}); remove policy.after from one of them".format(" -> ".join(cycle + [current])),
                    )
                break
            path.append(current)
    return names, endpoints, absent


def _parse_environment_value(host: str, value: Any, out: _Collector) -> tuple:
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


def build_environments(environments: Any) -> dict[str, Environment]:
    """Validate ``segmented_registry_environments`` alone and return ``{name: Environment}`` (in
    inventory order); raises ``TopologyError`` listing every problem found."""
    out = _Collector()
    parsed, entries = _parse_environments(environments, out)
    _check_environment_set(entries, out)  # names, endpoints, absent: only their problems count here
    if out.problems:
        raise TopologyError(out.problems)
    return {env.name: env for _where, env in parsed}


def _check_build_namespaces(host: str, credentials: Optional[dict], environment_owners: dict, out: _Collector) -> None:
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
    out = _Collector()
    parsed, entries = _parse_environments(environments, out)
    names, endpoints, absent = _check_environment_set(entries, out)
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
