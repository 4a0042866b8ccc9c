# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Validation of the inventory (pure): every problem at once, each naming the inventory host (or
the environment entry), the field, the bad value and the fix.

``build_environments`` checks ``segmented_registry_environments`` alone (what a promotion needs);
``build_topology`` checks it together with every host's ``segmented_registry_*`` variables.
"""

from collections.abc import Mapping, Sequence

from ansible_collections.segmented.registry.plugins.module_utils.inventory.auth import parse_k8s_auth
from ansible_collections.segmented.registry.plugins.module_utils.inventory.credentials import parse_credentials
from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import (
    split_host_port,
    to_bool,
    type_name,
    unknown_key_message,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.deployment import (
    parse_replicas,
    parse_state,
    parse_storage,
    parse_tls,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    DEFAULT_ENVIRONMENT,
    ROLE_CONSUMER,
    ROLE_REGISTRY,
    ROLES,
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
    ENVIRONMENT_KEYS,
    POLICY_KEYS,
    SCAN_GATE_DEFAULT_VALUE,
    SCAN_GATE_KEYS,
    STATE_ABSENT,
)
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

    def add(self, host, field_name, message):
        self.problems.append(Problem(host, field_name, message))


def _environment_label(index, raw):
    name = raw.get("name") if isinstance(raw, Mapping) else None
    label = f"{VAR_ENVIRONMENTS}[{index}]"
    if isinstance(name, str) and name:
        label += f" ({name})"
    return label


def _parse_policy(where, value, out):
    """Returns (after, scan_gate)."""
    if value is None:
        return None, None
    if not isinstance(value, Mapping):
        out.add(where, "policy", f"must be a mapping with after and/or scan_gate, not {type_name(value)} {show(value)}")
        return None, None
    for key in value:
        if key not in POLICY_KEYS:
            out.add(where, f"policy.{key}", unknown_key_message(key, POLICY_KEYS))
    after = value.get("after")
    if after is not None and not isinstance(after, str):
        out.add(where, "policy.after", f"must be the name of another environment, not {type_name(after)} {show(after)}")
        after = None
    scan_gate = None
    gate = value.get("scan_gate")
    if gate is not None:
        if not isinstance(gate, Mapping):
            out.add(where, "policy.scan_gate", f"must be a mapping like {{annotation: example.com/scan, value: passed}}, not {type_name(gate)} {show(gate)}")
        else:
            for key in gate:
                if key not in SCAN_GATE_KEYS:
                    out.add(where, f"policy.scan_gate.{key}", unknown_key_message(key, SCAN_GATE_KEYS))
            annotation = gate.get("annotation")
            gate_value = gate.get("value")
            if gate_value is None:
                gate_value = SCAN_GATE_DEFAULT_VALUE
            ok = True
            if annotation is None:
                out.add(where, "policy.scan_gate.annotation", "is required: name the image annotation that the scanner "
                        "sets, like security.example.com/scan-result")
                ok = False
            elif not is_qualified_name(annotation):
                out.add(where, "policy.scan_gate.annotation", "{} is not a Kubernetes annotation key; use "
                        "[prefix/]name, like security.example.com/scan-result".format(show(annotation)))
                ok = False
            if not isinstance(gate_value, str) or not gate_value:
                out.add(where, "policy.scan_gate.value", f"must be a non-empty string (default {SCAN_GATE_DEFAULT_VALUE!r}), not {show(gate_value)}")
                ok = False
            if ok:
                scan_gate = ScanGate(annotation=annotation, value=gate_value)
    return after, scan_gate


def _parse_environments(environments, out):
    """Returns a list of (label, Environment) for the entries that parsed."""
    parsed = []
    if environments is None:
        out.add("inventory", VAR_ENVIRONMENTS, "is not defined; define the environments once, in group_vars/all, "
                "like [{name: test, route_host: test-registry.apps.registry.example.com}]")
        return parsed
    if not isinstance(environments, Sequence) or isinstance(environments, (str, bytes)):
        out.add("inventory", VAR_ENVIRONMENTS, f"must be a list of environments, not {type_name(environments)} {show(environments)}")
        return parsed
    if not environments:
        out.add("inventory", VAR_ENVIRONMENTS, "is empty; define at least one environment, like "
                "{name: test, route_host: test-registry.apps.registry.example.com}")
        return parsed
    for index, raw in enumerate(environments):
        where = _environment_label(index, raw)
        if not isinstance(raw, Mapping):
            out.add(where, "", f"each environment must be a mapping with at least name and route_host, not {type_name(raw)} {show(raw)}")
            continue
        before = len(out.problems)
        for key in raw:
            if key not in ENVIRONMENT_KEYS:
                out.add(where, str(key), unknown_key_message(key, ENVIRONMENT_KEYS))

        name = raw.get("name")
        if name is None:
            out.add(where, "name", "is required: a lowercase DNS label like test, uat or prod")
        elif not is_dns1123_label(name):
            out.add(where, "name", "{} is not a DNS-1123 label (it becomes a namespace); use at most 63 lowercase "
                    "letters, digits and '-', starting and ending with a letter or digit, like uat".format(show(name)))
        elif name == DEFAULT_ENVIRONMENT:
            out.add(where, "name", "'default' is reserved for the integrated registry (clusters left alone); "
                    "choose another name")
        elif name in _RESERVED_NAMESPACES or name.startswith(_RESERVED_NAMESPACE_PREFIXES):
            out.add(where, "name", f"{show(name)} is a namespace OpenShift reserves (openshift, openshift-*, kube-*); choose another name")

        route_host = raw.get("route_host")
        if route_host is None:
            out.add(where, "route_host", "is required: the host name of this environment's registry Route, like "
                    "{}-registry.apps.registry.example.com".format(name if is_dns1123_label(name) else "test"))
        elif not is_dns1123_subdomain(route_host):
            out.add(where, "route_host", "{} is not a DNS-1123 subdomain; use a lowercase host name without "
                    "scheme, port or path, like test-registry.apps.registry.example.com".format(show(route_host)))

        endpoint = raw.get("endpoint")
        if endpoint is not None:
            try:
                split_host_port(endpoint)
            except ValueError as err:
                out.add(where, "endpoint", f"{show(endpoint)} is not host[:port]: {err}")

        ca_cert = raw.get("ca_cert")
        if ca_cert is not None and (not isinstance(ca_cert, str) or not ca_cert):
            out.add(where, "ca_cert", f"must be the path of a PEM file, not {show(ca_cert)}")

        validate_certs = raw.get("validate_certs")
        if validate_certs is None:
            validate_certs = True
        else:
            try:
                validate_certs = to_bool(validate_certs)
            except ValueError:
                out.add(where, "validate_certs", f"{show(validate_certs)} is not a boolean; write true (the default) or false")

        namespace = name if is_dns1123_label(name) else "<name>"
        state = parse_state(where, raw.get("state"), out)
        tls = parse_tls(where, raw.get("tls"), namespace, out)
        storage = parse_storage(where, raw.get("storage"), namespace, out)
        replicas = parse_replicas(where, raw.get("replicas"), raw.get("storage"), out)
        after, scan_gate = _parse_policy(where, raw.get("policy"), out)

        if len(out.problems) == before:
            parsed.append((where, Environment(
                name=name, route_host=route_host, endpoint=(endpoint or route_host), ca_cert=ca_cert,
                validate_certs=validate_certs, storage=storage, after=after, scan_gate=scan_gate, state=state,
                replicas=replicas, tls=tls)))
        elif is_dns1123_label(name) and name != DEFAULT_ENVIRONMENT:
            out.broken_names.add(name)
    return parsed


def _claim(owners, key, where, out, field, message):
    """Record ``where`` as the owner of ``key``, or report ``message`` (its ``{owner}`` filled in)
    when another entry owns it already: names, route hosts and endpoints must be unique."""
    if key in owners:
        out.add(where, field, message.format(owner=owners[key]))
    else:
        owners[key] = where


def _check_environment_set(parsed, raw_environments, out):
    """Uniqueness and policy.after references (needs every entry). Returns ``(names, endpoints,
    absent)``: the owner of each name and endpoint, and the names with ``state: absent``."""
    names = {}
    route_hosts = {}
    endpoints = {}
    absent = set()
    for index, raw in enumerate(raw_environments if isinstance(raw_environments, Sequence) else ()):
        if not isinstance(raw, Mapping):
            continue
        where = _environment_label(index, raw)
        name = raw.get("name")
        if isinstance(name, str) and name:
            _claim(names, name, where, out, "name", f"{show(name)} is already defined by {{owner}}; environment names must be unique")
            if raw.get("state") == STATE_ABSENT:
                absent.add(name)
        route_host = raw.get("route_host")
        if isinstance(route_host, str) and route_host:
            _claim(route_hosts, route_host.lower(), where, out, "route_host", "{0} is already the route_host of "
                   "{{owner}}; each environment needs its own registry host".format(show(route_host)))
        endpoint = raw.get("endpoint") or route_host
        if isinstance(endpoint, str) and endpoint:
            _claim(endpoints, endpoint.lower(), where, out, "endpoint", "{0} is already the endpoint of {{owner}}; "
                   "clients could not tell the environments apart: give each its own host[:port]".format(
                       show(endpoint)))
    # policy.after: known, not itself, no cycle (checked on every entry, even one with other problems)
    afters = {}
    for index, raw in enumerate(raw_environments if isinstance(raw_environments, Sequence) else ()):
        policy = raw.get("policy") if isinstance(raw, Mapping) else None
        after = policy.get("after") if isinstance(policy, Mapping) else None
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if not isinstance(after, str):
            continue
        where = _environment_label(index, raw)
        if after == name:
            out.add(where, "policy.after", "{} is this environment itself; name the environment whose registry must "
                    "hold a digest first (for prod, usually uat)".format(show(after)))
        elif after not in names or after == DEFAULT_ENVIRONMENT:
            known = sorted(known_name for known_name in names if known_name not in absent and known_name != DEFAULT_ENVIRONMENT)
            out.add(where, "policy.after", f"{show(after)} is not a known environment; use one of: {', '.join(known) or '(none defined)'}")
        elif after in absent:
            present = sorted(known_name for known_name in names if known_name not in absent and known_name not in (
                name, DEFAULT_ENVIRONMENT))
            out.add(where, "policy.after", "{} has state: absent, so it is no promotion target and would never hold "
                    "a digest; point policy.after at a present environment ({}), remove policy.after, or set the "
                    "state of {} back to present".format(show(after), ", ".join(present) or "none defined", after))
        elif isinstance(name, str) and name not in afters:
            afters[name] = (where, after)
    reported = set()
    for start in afters:
        path = [start]
        current = start
        while current in afters:
            current = afters[current][1]
            if current in path:
                cycle = path[path.index(current):]
                if not reported.intersection(cycle):
                    reported.update(cycle)
                    out.add(afters[cycle[0]][0], "policy.after", "the environments wait on each other in a cycle ({}); "
                            "remove policy.after from one of them".format(" -> ".join(cycle + [current])))
                break
            path.append(current)
    return names, endpoints, absent


def _parse_environment_value(host, value, out):
    """Returns (kind, name): kind in 'absent', 'default', 'environment', 'invalid'."""
    if value is None:
        return "absent", None
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = list(value)
        if len(items) != 1:
            out.add(host, VAR_ENVIRONMENT, "{} names {} environments, but a consumer is assigned exactly one "
                    "environment; keep one name (a string)".format(show(items), len(items)))
            return "invalid", None
        value = items[0]
    if not isinstance(value, str):
        out.add(host, VAR_ENVIRONMENT, f"must be an environment name (a string), not {type_name(value)} {show(value)}")
        return "invalid", None
    if value == "" or value == DEFAULT_ENVIRONMENT:
        return "default", None
    return "environment", value


def build_environments(environments):
    """Validate ``segmented_registry_environments`` alone and return ``{name: Environment}`` (in
    inventory order); raises ``TopologyError`` listing every problem found."""
    out = _Collector()
    parsed = _parse_environments(environments, out)
    _check_environment_set(parsed, environments, out)  # names, endpoints, absent: only their problems count here
    if out.problems:
        raise TopologyError(out.problems)
    return {env.name: env for _where, env in parsed}


def _check_build_namespaces(host, credentials, environment_owners, out):
    """A build namespace may not be an environment's namespace: its builder's push credential
    pushes to the namespace of that name on the registry cluster, where the environment's registry
    takes its pushes from promotion alone. ``environment_owners``: ``{name: its entry's label}``."""
    for index, builder in enumerate((credentials or {}).get("builders") or ()):
        owner = environment_owners.get(builder["namespace"])
        if owner:
            out.add(host, f"{VAR_CREDENTIALS}.builders[{index}].namespace", "{} is also the namespace of environment {} "
                    "({}) on the registry cluster; a build there could push into that environment's registry past "
                    "promotion: build in a namespace of its own".format(
                        show(builder["namespace"]), builder["namespace"], owner))


#: Which clusters a playbook touches: every managed cluster (site), or the registry cluster alone
#: (promote, demote, reconcile, audit).
TOUCH_ALL = "all"
TOUCH_REGISTRY = "registry"


def build_topology(environments, hosts, touch=TOUCH_ALL):
    """Validate the inventory and return its ``Topology``.

    ``environments`` is the value of ``segmented_registry_environments``; ``hosts`` maps each
    inventory host name to its ``segmented_registry_*`` variables (absent = not set). Raises
    ``TopologyError`` listing every problem found. The clusters a playbook touches (``touch``)
    must be told apart: two of them reaching the same cluster, or relying on the same
    ``K8S_AUTH_*`` environment, is a problem; clusters it does not touch may share credentials.
    """
    out = _Collector()
    parsed = _parse_environments(environments, out)
    names, endpoints, absent = _check_environment_set(parsed, environments, out)
    envs = {env.name: env for _where, env in parsed}
    known_names = sorted(set(envs) | out.broken_names)
    present_names = [known for known in known_names if known not in absent]

    registries = []
    consumers = []
    defaults = []
    identities = {}
    environment_users = []
    hosts = hosts or {}
    if not isinstance(hosts, Mapping):
        raise TypeError("hosts must map inventory host names to their variables")

    for host in hosts:
        hostvars = hosts[host] or {}
        role = hostvars.get(VAR_ROLE)
        kind, environment = _parse_environment_value(host, hostvars.get(VAR_ENVIRONMENT), out)
        integrated = hostvars.get(VAR_INTEGRATED_REGISTRY)
        auth = parse_k8s_auth(host, hostvars.get(VAR_K8S_AUTH), out)
        credentials = parse_credentials(host, hostvars.get(VAR_CREDENTIALS), role, kind == "environment", out)
        _check_build_namespaces(host, credentials, names, out)

        if role is not None and role not in ROLES:
            out.add(host, VAR_ROLE, "{} is not a role; use registry (the one cluster hosting the environment "
                    "registries) or consumer, or leave it out (a host with an environment is a consumer)".format(
                        show(role)))
            continue

        if role == ROLE_REGISTRY:
            if kind == "environment":
                out.add(host, VAR_ENVIRONMENT, "{} is set on the registry cluster, which hosts every environment; "
                        "remove segmented_registry_environment from this host".format(show(environment)))
            if integrated is not None:
                try:
                    split_host_port(integrated)
                except ValueError as err:
                    out.add(host, VAR_INTEGRATED_REGISTRY, f"{show(integrated)} is not host[:port]: {err}")
                    integrated = None
                else:
                    if integrated.lower() in endpoints:
                        out.add(host, VAR_INTEGRATED_REGISTRY, "{} is also the endpoint of an environment; the "
                                "integrated registry (default) needs a host of its own".format(show(integrated)))
            registries.append(Cluster(name=host, role=ROLE_REGISTRY, auth=auth or ClusterAuth(),
                                      integrated_registry=integrated))
            if auth is not None:  # the registry cluster is touched by every playbook
                environment_users.append((host, auth))
            continue

        if integrated is not None:
            out.add(host, VAR_INTEGRATED_REGISTRY, "is only meaningful on the registry cluster (the host with "
                    "segmented_registry_role: registry); remove it from this host")

        if kind == "environment":
            if environment not in known_names:
                out.add(host, VAR_ENVIRONMENT, "{} is not a known environment; use one of: {} (or default to leave "
                        "this cluster alone)".format(show(environment), ", ".join(present_names) or "(none defined)"))
                continue
            if environment in absent:
                out.add(host, VAR_ENVIRONMENT, "{} has state: absent in segmented_registry_environments (its registry "
                        "is removed), so no cluster can pull from it; assign this cluster a present environment ({}), "
                        "or default to leave it alone, or set the state of {} back to present".format(
                            show(environment), ", ".join(present_names) or "none defined", environment))
                continue
            if environment in envs:
                consumers.append(Cluster(name=host, role=ROLE_CONSUMER, environment=environment,
                                         auth=auth or ClusterAuth(), credentials=credentials))
            if auth is not None and touch == TOUCH_ALL:
                environment_users.append((host, auth))
        elif kind == "absent" and role == ROLE_CONSUMER:
            out.add(host, VAR_ENVIRONMENT, "is not set, but segmented_registry_role is consumer; assign one "
                    "environment ({}) or set it to default to leave this cluster alone".format(
                        ", ".join(present_names) or "none defined"))
        elif kind in ("absent", "default"):
            defaults.append(host)

    if not registries:
        out.add("inventory", VAR_ROLE, "no host has segmented_registry_role: registry; mark exactly one host (the "
                "cluster that hosts the environment registries) with it")
    elif len(registries) > 1:
        out.add("inventory", VAR_ROLE, "{} hosts have segmented_registry_role: registry ({}); exactly one cluster "
                "hosts the environment registries, keep the role on one of them".format(
                    len(registries), ", ".join(cluster.name for cluster in registries)))

    # Managed clusters must be told apart.
    env_reliant = [host for host, auth in environment_users if auth.uses_environment]
    if len(env_reliant) > 1:
        out.add("inventory", VAR_K8S_AUTH, "{} all rely on the K8S_AUTH_* environment variables (no "
                "segmented_registry_k8s_auth), so they would silently reach the same cluster; give each managed "
                "cluster its own segmented_registry_k8s_auth (kubeconfig + context, or host + api_key); at most one "
                "may use the environment".format(", ".join(env_reliant)))
    for host, auth in environment_users:
        if auth.uses_environment:
            continue
        if auth.identity in identities:
            out.add(host, VAR_K8S_AUTH, "reaches the same cluster as {} ({}); each inventory host must be a "
                    "different cluster".format(identities[auth.identity], auth.source))
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
