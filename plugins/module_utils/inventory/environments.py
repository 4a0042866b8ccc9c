# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Validation of ``segmented_registry_environments`` (pure): every problem at once, each naming
the environment entry, the field, the bad value and the fix. ``build_environments`` checks the list
alone (what a promotion needs); ``validate.build_topology`` checks it with the hosts' variables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import split_host_port, type_name
from ansible_collections.segmented.registry.plugins.module_utils.inventory.deployment import (
    parse_replicas,
    parse_storage,
    parse_tls,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    DEFAULT_ENVIRONMENT,
    VAR_ENVIRONMENTS,
    Environment,
    Problem,
    ScanGate,
    TopologyError,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import (
    ENVIRONMENT,
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


class Collector:
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


def _parse_policy(where: str, value: Optional[dict], out: Collector) -> tuple:
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


def parse_environments(environments: Any, out: Collector) -> tuple:
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


def _claim(owners: dict, key: str, where: str, out: Collector, field: str, message: str) -> None:
    """Record ``where`` as the owner of ``key``, or report ``message`` (its ``{owner}`` filled in)
    when another entry owns it already: names, route hosts and endpoints must be unique."""
    if key in owners:
        out.add(where, field, message.format(owner=owners[key]))
    else:
        owners[key] = where


def check_environment_set(entries: list, out: Collector) -> tuple:
    """Uniqueness and policy.after references (needs every entry: ``entries`` as
    ``parse_environments`` returns them). Returns ``(names, endpoints, absent)``: the owner of
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


def build_environments(environments: Any) -> dict[str, Environment]:
    """Validate ``segmented_registry_environments`` alone and return ``{name: Environment}`` (in
    inventory order); raises ``TopologyError`` listing every problem found."""
    out = Collector()
    parsed, entries = parse_environments(environments, out)
    check_environment_set(entries, out)  # names, endpoints, absent: only their problems count here
    if out.problems:
        raise TopologyError(out.problems)
    return {env.name: env for _where, env in parsed}
