# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The inventory model of segmented.registry and its validation.

One OpenShift *registry cluster* hosts one registry per lifecycle environment (test, uat,
prod, ...), each in a namespace named like the environment. *Consumer clusters* are each
assigned exactly one environment. A cluster without an environment (or with ``default``) is
left alone.

This module is pure: no I/O, no Ansible imports. ``build_topology`` takes the values of the
inventory variables and either returns a ``Topology`` or raises ``TopologyError`` carrying
every problem found, each naming the inventory host (or the environment entry), the field,
the bad value and the fix. Secret values (tokens, passwords, inline kubeconfigs) never
appear in a problem or in ``Topology.to_dict()``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ansible_collections.segmented.registry.plugins.module_utils.names import (  # noqa: F401 (re-exported)
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
)

# ---------------------------------------------------------------------------------------------
# Variable names (the inventory contract)
# ---------------------------------------------------------------------------------------------

PREFIX = "segmented_registry_"
VAR_ENVIRONMENTS = "segmented_registry_environments"
VAR_ROLE = "segmented_registry_role"
VAR_ENVIRONMENT = "segmented_registry_environment"
VAR_INTEGRATED_REGISTRY = "segmented_registry_integrated_registry"
VAR_K8S_AUTH = "segmented_registry_k8s_auth"

#: The per-host variables, in the order they are reported.
HOST_VARS = (VAR_ROLE, VAR_ENVIRONMENT, VAR_INTEGRATED_REGISTRY, VAR_K8S_AUTH)
#: Every variable this model reads.
INVENTORY_VARS = (VAR_ENVIRONMENTS,) + HOST_VARS

ROLE_REGISTRY = "registry"
ROLE_CONSUMER = "consumer"
ROLES = (ROLE_REGISTRY, ROLE_CONSUMER)

#: The integrated registry's environment; a cluster assigned to it is left alone.
DEFAULT_ENVIRONMENT = "default"

ENVIRONMENT_KEYS = ("name", "route_host", "endpoint", "ca_cert", "validate_certs", "storage", "policy")
STORAGE_KEYS = ("size", "storage_class", "claim_name")
POLICY_KEYS = ("after", "scan_gate")
SCAN_GATE_KEYS = ("annotation", "value")
SCAN_GATE_DEFAULT_VALUE = "passed"

# kubernetes.core's authentication options (args_common.AUTH_ARG_SPEC): canonical name -> aliases.
# Kept here as data so this module stays free of imports; a unit test checks it against
# kubernetes.core.
K8S_AUTH_OPTIONS = {
    "kubeconfig": (),
    "context": (),
    "host": (),
    "api_key": (),
    "username": (),
    "password": (),
    "validate_certs": ("verify_ssl",),
    "ca_cert": ("ssl_ca_cert",),
    "client_cert": ("cert_file",),
    "client_key": ("key_file",),
    "proxy": (),
    "no_proxy": (),
    "proxy_headers": (),
    "persist_config": (),
    "impersonate_user": (),
    "impersonate_groups": (),
}
K8S_AUTH_PROXY_HEADERS_KEYS = ("proxy_basic_auth", "basic_auth", "user_agent")
#: Options whose values are never repeated in a message or a report.
K8S_AUTH_SECRET_OPTIONS = ("kubeconfig", "api_key", "password", "proxy_headers")
_K8S_AUTH_ALIASES = dict((alias, name) for name, aliases in K8S_AUTH_OPTIONS.items() for alias in aliases)
_K8S_AUTH_BOOLS = ("validate_certs", "persist_config")
#: The environment variables kubernetes.core falls back to (AWX's Kubernetes credential sets
#: K8S_AUTH_HOST, K8S_AUTH_API_KEY, K8S_AUTH_VERIFY_SSL and K8S_AUTH_SSL_CA_CERT).
K8S_AUTH_ENVIRONMENT = "K8S_AUTH_* environment"

# OpenShift keeps these namespaces (and every openshift-* / kube-* one) for itself.
_RESERVED_NAMESPACES = ("openshift", "kube-system", "kube-public", "kube-node-lease")
_RESERVED_NAMESPACE_PREFIXES = ("openshift-", "kube-")

_IPV4 = re.compile(r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$")
_IPV6_BRACKETED = re.compile(r"^\[[0-9A-Fa-f:.]+\]$")
# A Kubernetes resource.Quantity without a sign (a storage size is never negative).
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)?$")
_URL = re.compile(r"^https?://[^\s/]+(/.*)?$")
_TRUE_STRINGS = ("yes", "on", "1", "true", "y", "t")
_FALSE_STRINGS = ("no", "off", "0", "false", "n", "f")


# ---------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the inventory.

    ``host`` is the inventory host (or ``segmented_registry_environments[<i>]``, or
    ``inventory`` for a problem of the inventory as a whole), ``field`` the variable or key,
    ``message`` what is wrong, with the bad value and the fix.
    """

    host: str
    field: str
    message: str

    def __str__(self):
        return "{0}: {1}: {2}".format(self.host, self.field, self.message)

    def to_dict(self):
        return {"host": self.host, "field": self.field, "message": self.message, "text": str(self)}


class TopologyError(ValueError):
    """The inventory is not valid; ``problems`` lists everything found, not just the first."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(TopologyError, self).__init__(self.text)

    @property
    def text(self):
        count = len(self.problems)
        head = "The inventory has {0} problem{1}:".format(count, "" if count == 1 else "s")
        return "\n".join([head] + ["- {0}".format(problem) for problem in self.problems])


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Storage:
    size: Optional[str] = None
    storage_class: Optional[str] = None
    claim_name: Optional[str] = None

    def to_dict(self):
        return {"size": self.size, "storage_class": self.storage_class, "claim_name": self.claim_name}


@dataclass(frozen=True)
class ScanGate:
    annotation: str
    value: str = SCAN_GATE_DEFAULT_VALUE

    def to_dict(self):
        return {"annotation": self.annotation, "value": self.value}


@dataclass(frozen=True)
class Environment:
    """One lifecycle environment: a namespace and a registry on the registry cluster."""

    name: str
    route_host: str
    endpoint: str
    ca_cert: Optional[str] = None
    validate_certs: bool = True
    storage: Optional[Storage] = None
    after: Optional[str] = None
    scan_gate: Optional[ScanGate] = None

    @property
    def namespace(self):
        return self.name

    def to_dict(self):
        return {
            "name": self.name,
            "namespace": self.namespace,
            "route_host": self.route_host,
            "endpoint": self.endpoint,
            "ca_cert": self.ca_cert,
            "validate_certs": self.validate_certs,
            "storage": self.storage.to_dict() if self.storage else None,
            "policy": {
                "after": self.after,
                "scan_gate": self.scan_gate.to_dict() if self.scan_gate else None,
            },
        }


@dataclass(frozen=True)
class ClusterAuth:
    """How to reach one cluster: kubernetes.core authentication options.

    ``options`` holds the canonical option names and may hold secrets: it is left out of
    ``repr`` and of every report; ``source`` says where the credentials come from instead.
    """

    options: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    source: str = K8S_AUTH_ENVIRONMENT
    identity: Tuple[str, ...] = field(default=("environment",), repr=False)

    @property
    def uses_environment(self):
        """True when nothing in the inventory tells this cluster apart (K8S_AUTH_* decides)."""
        return self.identity == ("environment",)

    def client_kwargs(self):
        """Keyword arguments for kubernetes.core's ``get_api_client(**kwargs)``."""
        return dict((key, value) for key, value in self.options.items() if value is not None)


@dataclass(frozen=True)
class Cluster:
    """One inventory host: a cluster."""

    name: str
    role: str
    environment: Optional[str] = None
    auth: ClusterAuth = field(default_factory=ClusterAuth)
    integrated_registry: Optional[str] = None

    def to_dict(self):
        result = {"name": self.name, "role": self.role, "environment": self.environment, "auth": self.auth.source}
        if self.role == ROLE_REGISTRY:
            result["integrated_registry"] = self.integrated_registry
        return result


@dataclass(frozen=True)
class Topology:
    """The validated inventory."""

    environments: Dict[str, Environment]
    registry: Cluster
    consumers: Tuple[Cluster, ...] = ()
    default_clusters: Tuple[str, ...] = ()

    @property
    def managed_clusters(self):
        """The clusters this collection changes: the registry cluster, then the consumers."""
        return (self.registry,) + tuple(self.consumers)

    def consumers_of(self, environment):
        return tuple(cluster for cluster in self.consumers if cluster.environment == environment)

    @property
    def promotion_order(self):
        """Environment names such that each comes after its ``policy.after`` (stable)."""
        order = []
        placed = set()
        pending = list(self.environments)
        while pending:
            for name in pending:
                after = self.environments[name].after
                if after is None or after in placed:
                    order.append(name)
                    placed.add(name)
                    pending.remove(name)
                    break
            else:  # pragma: no cover - build_topology rejects cycles
                order.extend(pending)
                break
        return order

    def to_dict(self):
        """A report of the topology; it never holds a secret."""
        environments = {}
        for name, environment in self.environments.items():
            item = environment.to_dict()
            item["consumers"] = [cluster.name for cluster in self.consumers_of(name)]
            environments[name] = item
        return {
            "environments": environments,
            "promotion_order": self.promotion_order,
            "registry_cluster": self.registry.to_dict(),
            "consumer_clusters": [cluster.to_dict() for cluster in self.consumers],
            "default_clusters": list(self.default_clusters),
        }

    def summary(self):
        """Short human-readable lines: which cluster serves which environment."""
        lines = ["registry cluster {0} ({1}) hosts {2}".format(
            self.registry.name, self.registry.auth.source, ", ".join(self.environments) or "no environment")]
        if self.registry.integrated_registry:
            lines.append("default: integrated registry {0}".format(self.registry.integrated_registry))
        for name, environment in self.environments.items():
            consumers = [cluster.name for cluster in self.consumers_of(name)]
            lines.append("{0}: registry {1} in namespace {2}, consumers: {3}".format(
                name, environment.endpoint, environment.namespace, ", ".join(consumers) or "none"))
        if self.default_clusters:
            lines.append("left alone (no environment): {0}".format(", ".join(self.default_clusters)))
        return lines


# ---------------------------------------------------------------------------------------------
# Small validators (pure)
# ---------------------------------------------------------------------------------------------


def is_quantity(value):
    """A positive Kubernetes quantity such as ``100Gi`` or ``500M``."""
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    return bool(match) and float(match.group("number")) > 0


def split_host_port(value):
    """Split ``host[:port]``; returns ``(host, port or None)`` or raises ValueError with the reason."""
    if not isinstance(value, str) or not value:
        raise ValueError("it must be a non-empty string like registry.example.com or registry.example.com:5000")
    if "://" in value:
        raise ValueError("drop the scheme: give host[:port] only, like registry.example.com:5000")
    if "/" in value:
        raise ValueError("give host[:port] only, without a path")
    host, port = value, None
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            raise ValueError("an IPv6 address must be written in brackets, like [fd00::1]:5000")
        host, rest = value[:close + 1], value[close + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("expected :port after the bracketed IPv6 address")
            port = rest[1:]
    elif ":" in value:
        host, port = value.rsplit(":", 1)
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("the port must be a number from 1 to 65535")
        port = int(port)
    if _IPV6_BRACKETED.match(host) or _IPV4.match(host):
        return host, port
    if not is_dns1123_subdomain(host):
        raise ValueError("the host must be a lowercase DNS name (letters, digits, '-' and '.') or an IP address")
    return host, port


def to_bool(value):
    """Ansible's booleans (true/false, yes/no, on/off, 1/0); raises ValueError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE_STRINGS:
            return True
        if lowered in _FALSE_STRINGS:
            return False
    raise ValueError(value)


def suggest(name, candidates):
    """The closest candidate to a misspelt name, or None."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return matches[0] if matches else None


def misspelt_variables(names):
    """``{name: suggestion}`` for variable names that look like a typo of one of ours.

    Only near misses are reported: roles of this collection have other ``segmented_registry_*``
    variables, which must not be flagged.
    """
    result = {}
    for name in names:
        if name in INVENTORY_VARS or not isinstance(name, str):
            continue
        match = difflib.get_close_matches(name, INVENTORY_VARS, n=1, cutoff=0.9)
        if match:
            result[name] = match[0]
    return result


def _show(value):
    """A short, readable rendering of a bad (non-secret) value for a message."""
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):  # pragma: no cover - default=str makes dumps total
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _type_name(value):
    # isinstance, not type(): templated values may be subclasses (tagged str, dict, ...)
    for kind, name in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"), (Mapping, "a mapping"),
                       (Sequence, "a list"), (type(None), "null")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _unknown_key_message(key, known):
    hint = suggest(str(key), known)
    text = "unknown key {0}".format(_show(key))
    if hint:
        text += "; did you mean {0!r}?".format(hint)
    return text + " (known keys: {0})".format(", ".join(known))


# ---------------------------------------------------------------------------------------------
# build_topology
# ---------------------------------------------------------------------------------------------


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
    label = "{0}[{1}]".format(VAR_ENVIRONMENTS, index)
    if isinstance(name, str) and name:
        label += " ({0})".format(name)
    return label


def _parse_storage(where, value, out):
    if value is None:
        return None
    if not isinstance(value, Mapping):
        out.add(where, "storage", "must be a mapping with size and storage_class, or claim_name, not {0} {1}".format(
            _type_name(value), _show(value)))
        return None
    for key in value:
        if key not in STORAGE_KEYS:
            out.add(where, "storage.{0}".format(key), _unknown_key_message(key, STORAGE_KEYS))
    size, storage_class, claim_name = value.get("size"), value.get("storage_class"), value.get("claim_name")
    if isinstance(size, int) and not isinstance(size, bool):
        size = str(size)
    if size is not None and not is_quantity(size):
        out.add(where, "storage.size", "{0} is not a Kubernetes quantity; write a positive size like 100Gi or 500G".format(
            _show(size)))
    if storage_class is not None and not is_dns1123_subdomain(storage_class):
        out.add(where, "storage.storage_class", "{0} is not a StorageClass name; use a lowercase DNS name like "
                "gp3-csi, or leave it out for the cluster's default StorageClass".format(_show(storage_class)))
    if claim_name is not None:
        if not is_dns1123_subdomain(claim_name):
            out.add(where, "storage.claim_name", "{0} is not a PersistentVolumeClaim name; use a lowercase DNS name "
                    "like registry-storage".format(_show(claim_name)))
        if size is not None or storage_class is not None:
            out.add(where, "storage.claim_name", "claim_name (an existing PersistentVolumeClaim) excludes size and "
                    "storage_class, which describe a claim to create; keep one or the other")
    return Storage(size=size, storage_class=storage_class, claim_name=claim_name)


def _parse_policy(where, value, out):
    """Returns (after, scan_gate)."""
    if value is None:
        return None, None
    if not isinstance(value, Mapping):
        out.add(where, "policy", "must be a mapping with after and/or scan_gate, not {0} {1}".format(
            _type_name(value), _show(value)))
        return None, None
    for key in value:
        if key not in POLICY_KEYS:
            out.add(where, "policy.{0}".format(key), _unknown_key_message(key, POLICY_KEYS))
    after = value.get("after")
    if after is not None and not isinstance(after, str):
        out.add(where, "policy.after", "must be the name of another environment, not {0} {1}".format(
            _type_name(after), _show(after)))
        after = None
    scan_gate = None
    gate = value.get("scan_gate")
    if gate is not None:
        if not isinstance(gate, Mapping):
            out.add(where, "policy.scan_gate", "must be a mapping like {{annotation: example.com/scan, value: passed}}, "
                    "not {0} {1}".format(_type_name(gate), _show(gate)))
        else:
            for key in gate:
                if key not in SCAN_GATE_KEYS:
                    out.add(where, "policy.scan_gate.{0}".format(key), _unknown_key_message(key, SCAN_GATE_KEYS))
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
                out.add(where, "policy.scan_gate.annotation", "{0} is not a Kubernetes annotation key; use "
                        "[prefix/]name, like security.example.com/scan-result".format(_show(annotation)))
                ok = False
            if not isinstance(gate_value, str) or not gate_value:
                out.add(where, "policy.scan_gate.value", "must be a non-empty string (default {0!r}), not {1}".format(
                    SCAN_GATE_DEFAULT_VALUE, _show(gate_value)))
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
        out.add("inventory", VAR_ENVIRONMENTS, "must be a list of environments, not {0} {1}".format(
            _type_name(environments), _show(environments)))
        return parsed
    if not environments:
        out.add("inventory", VAR_ENVIRONMENTS, "is empty; define at least one environment, like "
                "{name: test, route_host: test-registry.apps.registry.example.com}")
        return parsed
    for index, raw in enumerate(environments):
        where = _environment_label(index, raw)
        if not isinstance(raw, Mapping):
            out.add(where, "", "each environment must be a mapping with at least name and route_host, not {0} {1}".format(
                _type_name(raw), _show(raw)))
            continue
        before = len(out.problems)
        for key in raw:
            if key not in ENVIRONMENT_KEYS:
                out.add(where, str(key), _unknown_key_message(key, ENVIRONMENT_KEYS))

        name = raw.get("name")
        if name is None:
            out.add(where, "name", "is required: a lowercase DNS label like test, uat or prod")
        elif not is_dns1123_label(name):
            out.add(where, "name", "{0} is not a DNS-1123 label (it becomes a namespace); use at most 63 lowercase "
                    "letters, digits and '-', starting and ending with a letter or digit, like uat".format(_show(name)))
        elif name == DEFAULT_ENVIRONMENT:
            out.add(where, "name", "'default' is reserved for the integrated registry (clusters left alone); "
                    "choose another name")
        elif name in _RESERVED_NAMESPACES or name.startswith(_RESERVED_NAMESPACE_PREFIXES):
            out.add(where, "name", "{0} is a namespace OpenShift reserves (openshift, openshift-*, kube-*); "
                    "choose another name".format(_show(name)))

        route_host = raw.get("route_host")
        if route_host is None:
            out.add(where, "route_host", "is required: the host name of this environment's registry Route, like "
                    "{0}-registry.apps.registry.example.com".format(name if is_dns1123_label(name) else "test"))
        elif not is_dns1123_subdomain(route_host):
            out.add(where, "route_host", "{0} is not a DNS-1123 subdomain; use a lowercase host name without "
                    "scheme, port or path, like test-registry.apps.registry.example.com".format(_show(route_host)))

        endpoint = raw.get("endpoint")
        if endpoint is not None:
            try:
                split_host_port(endpoint)
            except ValueError as err:
                out.add(where, "endpoint", "{0} is not host[:port]: {1}".format(_show(endpoint), err))

        ca_cert = raw.get("ca_cert")
        if ca_cert is not None and (not isinstance(ca_cert, str) or not ca_cert):
            out.add(where, "ca_cert", "must be the path of a PEM file, not {0}".format(_show(ca_cert)))

        validate_certs = raw.get("validate_certs")
        if validate_certs is None:
            validate_certs = True
        else:
            try:
                validate_certs = to_bool(validate_certs)
            except ValueError:
                out.add(where, "validate_certs", "{0} is not a boolean; write true (the default) or false".format(
                    _show(validate_certs)))

        storage = _parse_storage(where, raw.get("storage"), out)
        after, scan_gate = _parse_policy(where, raw.get("policy"), out)

        if len(out.problems) == before:
            parsed.append((where, Environment(
                name=name, route_host=route_host, endpoint=(endpoint or route_host), ca_cert=ca_cert,
                validate_certs=validate_certs, storage=storage, after=after, scan_gate=scan_gate)))
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
    """Uniqueness and policy.after references (needs every entry)."""
    names = {}
    route_hosts = {}
    endpoints = {}
    for index, raw in enumerate(raw_environments if isinstance(raw_environments, Sequence) else ()):
        if not isinstance(raw, Mapping):
            continue
        where = _environment_label(index, raw)
        name = raw.get("name")
        if isinstance(name, str) and name:
            _claim(names, name, where, out, "name", "{0} is already defined by {{owner}}; environment names must be "
                   "unique".format(_show(name)))
        route_host = raw.get("route_host")
        if isinstance(route_host, str) and route_host:
            _claim(route_hosts, route_host.lower(), where, out, "route_host", "{0} is already the route_host of "
                   "{{owner}}; each environment needs its own registry host".format(_show(route_host)))
        endpoint = raw.get("endpoint") or route_host
        if isinstance(endpoint, str) and endpoint:
            _claim(endpoints, endpoint.lower(), where, out, "endpoint", "{0} is already the endpoint of {{owner}}; "
                   "clients could not tell the environments apart: give each its own host[:port]".format(
                       _show(endpoint)))
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
            out.add(where, "policy.after", "{0} is this environment itself; name the environment whose registry must "
                    "hold a digest first (for prod, usually uat)".format(_show(after)))
        elif after not in names or after == DEFAULT_ENVIRONMENT:
            known = sorted(known_name for known_name in names if known_name != DEFAULT_ENVIRONMENT)
            out.add(where, "policy.after", "{0} is not a known environment; use one of: {1}".format(
                _show(after), ", ".join(known) or "(none defined)"))
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
                    out.add(afters[cycle[0]][0], "policy.after", "the environments wait on each other in a cycle ({0}); "
                            "remove policy.after from one of them".format(" -> ".join(cycle + [current])))
                break
            path.append(current)
    return names, endpoints


def _parse_k8s_auth(host, value, out):
    if value is None:
        return ClusterAuth()
    if not isinstance(value, Mapping):
        out.add(host, VAR_K8S_AUTH, "must be a mapping of kubernetes.core authentication options (kubeconfig, "
                "context, host, api_key, ...), not {0}".format(_type_name(value)))
        return None
    options = {}
    ok = True
    known = sorted(list(K8S_AUTH_OPTIONS) + list(_K8S_AUTH_ALIASES))
    for key, item in value.items():
        field_name = "{0}.{1}".format(VAR_K8S_AUTH, key)
        canonical = key if key in K8S_AUTH_OPTIONS else _K8S_AUTH_ALIASES.get(key)
        if canonical is None:
            out.add(host, field_name, _unknown_key_message(key, known))
            ok = False
            continue
        if item is None:
            continue
        if canonical in _K8S_AUTH_BOOLS:
            try:
                item = to_bool(item)
            except ValueError:
                out.add(host, field_name, "{0} is not a boolean; write true or false".format(_show(item)))
                ok = False
                continue
        elif canonical == "kubeconfig":
            if not (isinstance(item, str) and item) and not isinstance(item, Mapping):
                out.add(host, field_name, "must be the path of a kubeconfig file or an inline kubeconfig mapping, "
                        "not {0}".format(_type_name(item)))
                ok = False
                continue
        elif canonical == "proxy_headers":
            if not isinstance(item, Mapping):
                out.add(host, field_name, "must be a mapping with proxy_basic_auth, basic_auth and/or user_agent, "
                        "not {0}".format(_type_name(item)))
                ok = False
                continue
            bad = [str(k) for k in item if k not in K8S_AUTH_PROXY_HEADERS_KEYS]
            if bad:
                for k in bad:
                    out.add(host, "{0}.{1}".format(field_name, k), _unknown_key_message(k, K8S_AUTH_PROXY_HEADERS_KEYS))
                ok = False
                continue
        elif canonical == "impersonate_groups":
            if isinstance(item, str):
                item = [group for group in item.split(",") if group]
            if not isinstance(item, Sequence) or not all(isinstance(group, str) for group in item):
                out.add(host, field_name, "must be a list of group names, not {0}".format(_show(item)))
                ok = False
                continue
            item = list(item)
        elif not isinstance(item, str) or (not item and canonical not in K8S_AUTH_SECRET_OPTIONS):
            shown = "a secret" if canonical in K8S_AUTH_SECRET_OPTIONS else _show(item)
            out.add(host, field_name, "must be a non-empty string, not {0}".format(
                _type_name(item) if canonical in K8S_AUTH_SECRET_OPTIONS else shown))
            ok = False
            continue
        if canonical == "host" and not _URL.match(item):
            out.add(host, field_name, "{0} is not the API server URL; write it with its scheme, like "
                    "https://api.cluster.example.com:6443".format(_show(item)))
            ok = False
            continue
        if canonical in options and options[canonical] != item:
            out.add(host, field_name, "{0} and its alias both set with different values; keep only {0}".format(canonical))
            ok = False
            continue
        options[canonical] = item
    if not ok:
        return None
    return _auth_from_options(options)


def _auth_from_options(options):
    host = options.get("host")
    kubeconfig = options.get("kubeconfig")
    context = options.get("context")
    if host:
        normalized = host.rstrip("/").lower()
        source = "host {0}".format(host.rstrip("/"))
        if options.get("username") and not options.get("api_key"):
            source += " as {0}".format(options["username"])
        return ClusterAuth(options=options, source=source, identity=("host", normalized))
    if kubeconfig or context:
        if isinstance(kubeconfig, Mapping):
            where = "(inline)"
            key = json.dumps(kubeconfig, sort_keys=True, default=str)
        elif kubeconfig:
            where = kubeconfig
            key = kubeconfig
        else:
            where = "(K8S_AUTH_KUBECONFIG or ~/.kube/config)"
            key = ""
        source = "kubeconfig {0} context {1}".format(where, context or "(current)")
        return ClusterAuth(options=options, source=source, identity=("kubeconfig", key, context or ""))
    return ClusterAuth(options=options, source=K8S_AUTH_ENVIRONMENT, identity=("environment",))


def _parse_environment_value(host, value, out):
    """Returns (kind, name): kind in 'absent', 'default', 'environment', 'invalid'."""
    if value is None:
        return "absent", None
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = list(value)
        if len(items) != 1:
            out.add(host, VAR_ENVIRONMENT, "{0} names {1} environments, but a consumer is assigned exactly one "
                    "environment; keep one name (a string)".format(_show(items), len(items)))
            return "invalid", None
        value = items[0]
    if not isinstance(value, str):
        out.add(host, VAR_ENVIRONMENT, "must be an environment name (a string), not {0} {1}".format(
            _type_name(value), _show(value)))
        return "invalid", None
    if value == "" or value == DEFAULT_ENVIRONMENT:
        return "default", None
    return "environment", value


def build_topology(environments, hosts):
    """Validate the inventory and return its ``Topology``.

    ``environments`` is the value of ``segmented_registry_environments``; ``hosts`` maps each
    inventory host name to its ``segmented_registry_*`` variables (absent = not set). Raises
    ``TopologyError`` listing every problem found.
    """
    out = _Collector()
    parsed = _parse_environments(environments, out)
    names, endpoints = _check_environment_set(parsed, environments, out)
    envs = dict((env.name, env) for _where, env in parsed)
    known_names = sorted(set(envs) | out.broken_names)

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
        auth = _parse_k8s_auth(host, hostvars.get(VAR_K8S_AUTH), out)

        if role is not None and role not in ROLES:
            out.add(host, VAR_ROLE, "{0} is not a role; use registry (the one cluster hosting the environment "
                    "registries) or consumer, or leave it out (a host with an environment is a consumer)".format(
                        _show(role)))
            continue

        if role == ROLE_REGISTRY:
            if kind == "environment":
                out.add(host, VAR_ENVIRONMENT, "{0} is set on the registry cluster, which hosts every environment; "
                        "remove segmented_registry_environment from this host".format(_show(environment)))
            if integrated is not None:
                try:
                    split_host_port(integrated)
                except ValueError as err:
                    out.add(host, VAR_INTEGRATED_REGISTRY, "{0} is not host[:port]: {1}".format(_show(integrated), err))
                    integrated = None
                else:
                    if integrated.lower() in endpoints:
                        out.add(host, VAR_INTEGRATED_REGISTRY, "{0} is also the endpoint of an environment; the "
                                "integrated registry (default) needs a host of its own".format(_show(integrated)))
            registries.append(Cluster(name=host, role=ROLE_REGISTRY, auth=auth or ClusterAuth(),
                                      integrated_registry=integrated))
            if auth is not None:
                environment_users.append((host, auth))
            continue

        if integrated is not None:
            out.add(host, VAR_INTEGRATED_REGISTRY, "is only meaningful on the registry cluster (the host with "
                    "segmented_registry_role: registry); remove it from this host")

        if kind == "environment":
            if environment not in known_names:
                out.add(host, VAR_ENVIRONMENT, "{0} is not a known environment; use one of: {1} (or default to leave "
                        "this cluster alone)".format(_show(environment), ", ".join(known_names) or "(none defined)"))
                continue
            if environment in envs:
                consumers.append(Cluster(name=host, role=ROLE_CONSUMER, environment=environment,
                                         auth=auth or ClusterAuth()))
            if auth is not None:
                environment_users.append((host, auth))
        elif kind == "absent" and role == ROLE_CONSUMER:
            out.add(host, VAR_ENVIRONMENT, "is not set, but segmented_registry_role is consumer; assign one "
                    "environment ({0}) or set it to default to leave this cluster alone".format(
                        ", ".join(known_names) or "none defined"))
        elif kind in ("absent", "default"):
            defaults.append(host)

    if not registries:
        out.add("inventory", VAR_ROLE, "no host has segmented_registry_role: registry; mark exactly one host (the "
                "cluster that hosts the environment registries) with it")
    elif len(registries) > 1:
        out.add("inventory", VAR_ROLE, "{0} hosts have segmented_registry_role: registry ({1}); exactly one cluster "
                "hosts the environment registries, keep the role on one of them".format(
                    len(registries), ", ".join(cluster.name for cluster in registries)))

    # Managed clusters must be told apart.
    env_reliant = [host for host, auth in environment_users if auth.uses_environment]
    if len(env_reliant) > 1:
        out.add("inventory", VAR_K8S_AUTH, "{0} all rely on the K8S_AUTH_* environment variables (no "
                "segmented_registry_k8s_auth), so they would silently reach the same cluster; give each managed "
                "cluster its own segmented_registry_k8s_auth (kubeconfig + context, or host + api_key); at most one "
                "may use the environment".format(", ".join(env_reliant)))
    for host, auth in environment_users:
        if auth.uses_environment:
            continue
        if auth.identity in identities:
            out.add(host, VAR_K8S_AUTH, "reaches the same cluster as {0} ({1}); each inventory host must be a "
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


#: Module option (an item of ``clusters``) -> inventory variable.
CLUSTER_OPTIONS = (
    ("role", VAR_ROLE),
    ("environment", VAR_ENVIRONMENT),
    ("integrated_registry", VAR_INTEGRATED_REGISTRY),
    ("k8s_auth", VAR_K8S_AUTH),
)


def gather_host_variables(hostvars):
    """Pick this model's per-host variables out of one host's variables (absent = not set)."""
    return dict((name, hostvars[name]) for name in HOST_VARS if name in hostvars and hostvars[name] is not None)


def hosts_to_clusters(hosts):
    """``{host: {segmented_registry_*: value}}`` -> the ``clusters`` option of the modules."""
    clusters = []
    for host, hostvars in hosts.items():
        item = {"name": host}
        for option, variable in CLUSTER_OPTIONS:
            if hostvars.get(variable) is not None:
                item[option] = hostvars[variable]
        clusters.append(item)
    return clusters


def clusters_to_hosts(clusters):
    """The ``clusters`` option of the modules -> ``{host: {segmented_registry_*: value}}``."""
    hosts = {}
    problems = []
    for index, item in enumerate(clusters or ()):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            problems.append(Problem("clusters[{0}]".format(index), "name", "each cluster needs the name of its "
                                    "inventory host, not {0}".format(_show(name))))
            continue
        if name in hosts:
            problems.append(Problem(name, "name", "is listed twice in clusters; list each inventory host once"))
            continue
        hosts[name] = dict((variable, item.get(option)) for option, variable in CLUSTER_OPTIONS
                           if item.get(option) is not None)
    if problems:
        raise TopologyError(problems)
    return hosts


def unreachable_problems(topology, results):
    """Problems for the managed clusters that did not answer.

    ``results`` maps a cluster name to ``{"reachable": bool, "server": url, "error": text}``.
    """
    problems = []
    for cluster in topology.managed_clusters:
        result = results.get(cluster.name)
        if result and not result.get("reachable"):
            problems.append(Problem(
                cluster.name, VAR_K8S_AUTH, "cannot reach the cluster at {0} (credentials from {1}): {2}; check "
                "that the API server is up and that {3} points at it".format(
                    result.get("server") or "an unknown API server", cluster.auth.source, result.get("error"),
                    VAR_K8S_AUTH)))
    return problems


__all__ = [
    "build_topology", "Topology", "TopologyError", "Problem", "Environment", "Storage", "ScanGate",
    "Cluster", "ClusterAuth", "gather_host_variables", "misspelt_variables", "split_host_port",
    "hosts_to_clusters", "clusters_to_hosts", "unreachable_problems",
    "INVENTORY_VARS", "HOST_VARS", "VAR_ENVIRONMENTS", "VAR_ROLE", "VAR_ENVIRONMENT",
    "VAR_INTEGRATED_REGISTRY", "VAR_K8S_AUTH", "K8S_AUTH_OPTIONS", "K8S_AUTH_ENVIRONMENT",
]
