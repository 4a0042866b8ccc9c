# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The inventory model of segmented.registry (pure: no I/O, no Ansible imports).

One OpenShift *registry cluster* hosts one *environment registry* per lifecycle environment
(test, uat, prod, ...), each in a namespace named like the environment. *Consumer clusters* are
each assigned exactly one environment. A cluster without an environment (or with ``default``) is
left alone. ``validate.build_topology`` turns the inventory's variables into a ``Topology`` (the
validated inventory) or a ``TopologyError`` listing every problem; secret values never appear in
a problem or in ``Topology.to_dict()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.errors import InventoryError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import (
    REPLICAS_DEFAULT,
    ROLE_REGISTRY,
    S3_REGION_DEFAULT,
    SCAN_GATE_DEFAULT_VALUE,
    STATE_ABSENT,
    STATE_PRESENT,
    TERMINATION_EDGE,
    VAR_CREDENTIALS,
    VAR_ENVIRONMENT,
    VAR_ENVIRONMENTS,
    VAR_INTEGRATED_REGISTRY,
    VAR_K8S_AUTH,
    VAR_ROLE,
)

# ---------------------------------------------------------------------------------------------
# Variable names (the inventory contract)
# ---------------------------------------------------------------------------------------------

PREFIX = "segmented_registry_"

#: The per-host variables (``schema.CLUSTER``), in the order they are reported.
HOST_VARS = (VAR_ROLE, VAR_ENVIRONMENT, VAR_INTEGRATED_REGISTRY, VAR_K8S_AUTH, VAR_CREDENTIALS)
#: Every variable this model reads.
INVENTORY_VARS = (VAR_ENVIRONMENTS,) + HOST_VARS

#: The integrated registry's environment; a cluster assigned to it is left alone.
DEFAULT_ENVIRONMENT = "default"

#: Where credentials come from when the inventory does not say (AWX's Kubernetes credential sets
#: K8S_AUTH_HOST, K8S_AUTH_API_KEY, K8S_AUTH_VERIFY_SSL and K8S_AUTH_SSL_CA_CERT).
K8S_AUTH_ENVIRONMENT = "K8S_AUTH_* environment"


def promotion_targets(environments: Mapping[str, Environment]) -> dict[str, Environment]:
    """The environments of ``environments`` (``{name: Environment}``) that images can be promoted
    to: every one but those with ``state: absent`` (kept in the topology so that the
    registry-cluster role removes what it made for them, but never planned, copied to or audited)."""
    return {name: env for name, env in environments.items() if env.is_present}


def absent_names(environments: Mapping[str, Environment]) -> list[str]:
    """Names of the environments with ``state: absent``, in inventory order."""
    return [name for name, env in environments.items() if not env.is_present]


def promotion_order(environments: Mapping[str, Environment]) -> list[str]:
    """Names of the promotion targets of ``environments`` (``{name: Environment}``: those without
    ``state: absent``), each after its ``after`` (stable; an ``after`` outside the targets is
    ignored; a cycle, which validation rejects, is left in input order). The one place that orders
    environments."""
    environments = promotion_targets(environments)
    order, placed, pending = [], set(), list(environments)
    while pending:
        for name in pending:
            after = environments[name].after
            if not after or after in placed or after not in environments:
                order.append(name)
                placed.add(name)
                pending.remove(name)
                break
        else:
            order.extend(pending)
            break
    return order


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

    def __str__(self) -> str:
        return f"{self.host}: {self.field}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"host": self.host, "field": self.field, "message": self.message, "text": str(self)}


class TopologyError(InventoryError, ValueError):
    """The inventory is not valid; ``problems`` lists everything found, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(self.text)

    @property
    def text(self) -> str:
        count = len(self.problems)
        head = f"The inventory has {count} problem{'' if count == 1 else 's'}:"
        return "\n".join([head] + [f"- {problem}" for problem in self.problems])

    @property
    def result(self) -> dict[str, list[dict[str, str]]]:
        """Every problem, structured, beside the message (``problems`` of the failed result)."""
        return {"problems": [problem.to_dict() for problem in self.problems]}


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Storage:
    """An S3 (or S3-compatible) bucket as the registry's storage; its credentials are the keys
    ``access_key`` and ``secret_key`` of the Secret ``credentials_secret`` in the environment's
    namespace (the inventory never holds them)."""

    bucket: str
    credentials_secret: str
    region: str = S3_REGION_DEFAULT
    endpoint: Optional[str] = None
    force_path_style: bool = False
    root_directory: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "region": self.region,
            "endpoint": self.endpoint,
            "credentials_secret": self.credentials_secret,
            "force_path_style": self.force_path_style,
            "root_directory": self.root_directory,
        }


@dataclass(frozen=True)
class Storage:
    """A claim to create (``size``, ``storage_class``), an existing claim (``claim_name``), or a
    bucket (``s3``); all unset: a claim of the cluster's default size and StorageClass."""

    size: Optional[str] = None
    storage_class: Optional[str] = None
    claim_name: Optional[str] = None
    s3: Optional[S3Storage] = None

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "storage_class": self.storage_class, "claim_name": self.claim_name, "s3": self.s3.to_dict() if self.s3 else None}


@dataclass(frozen=True)
class Tls:
    """How the registry's Route terminates TLS, and the Secret the registry pod serves with
    (``reencrypt``, ``passthrough``; with ``reencrypt`` and no Secret, OpenShift's service CA
    issues one)."""

    termination: str = TERMINATION_EDGE
    serving_cert_secret: Optional[str] = None

    def to_dict(self) -> dict[str, Optional[str]]:
        return {"termination": self.termination, "serving_cert_secret": self.serving_cert_secret}


@dataclass(frozen=True)
class ScanGate:
    annotation: str
    value: str = SCAN_GATE_DEFAULT_VALUE

    def to_dict(self) -> dict[str, str]:
        return {"annotation": self.annotation, "value": self.value}


@dataclass(frozen=True)
class Environment:
    """One lifecycle environment: a namespace and a registry on the registry cluster."""

    name: str
    route_host: str
    endpoint: str
    ca_cert: Optional[str] = None
    validate_certs: bool = True
    storage: Storage = field(default_factory=Storage)
    after: Optional[str] = None
    scan_gate: Optional[ScanGate] = None
    state: str = STATE_PRESENT
    replicas: int = REPLICAS_DEFAULT
    tls: Tls = field(default_factory=Tls)

    @property
    def namespace(self) -> str:
        return self.name

    @property
    def is_present(self) -> bool:
        """False for ``state: absent``: no promotion target (see ``promotion_targets``)."""
        return self.state != STATE_ABSENT

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "state": self.state,
            "route_host": self.route_host,
            "endpoint": self.endpoint,
            "ca_cert": self.ca_cert,
            "validate_certs": self.validate_certs,
            "replicas": self.replicas,
            "tls": self.tls.to_dict(),
            "storage": (self.storage or Storage()).to_dict(),
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

    options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    source: str = K8S_AUTH_ENVIRONMENT
    identity: tuple[str, ...] = field(default=("environment",), repr=False)

    @property
    def uses_environment(self) -> bool:
        """True when nothing in the inventory tells this cluster apart (K8S_AUTH_* decides)."""
        return self.identity == ("environment",)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for kubernetes.core's ``get_api_client(**kwargs)``."""
        return {key: value for key, value in self.options.items() if value is not None}


@dataclass(frozen=True)
class Cluster:
    """One inventory host: a cluster."""

    name: str
    role: str
    environment: Optional[str] = None
    auth: ClusterAuth = field(default_factory=ClusterAuth)
    integrated_registry: Optional[str] = None
    #: Who gets registry credentials on a consumer (``inventory/credentials.py``).
    credentials: Optional[dict] = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"name": self.name, "role": self.role, "environment": self.environment, "auth": self.auth.source}
        if self.role == ROLE_REGISTRY:
            result["integrated_registry"] = self.integrated_registry
        else:
            result["credentials"] = self.credentials or {"pull": [], "builders": []}
        return result


@dataclass(frozen=True)
class Topology:
    """The validated inventory."""

    environments: dict[str, Environment]
    registry: Cluster
    consumers: tuple[Cluster, ...] = ()
    default_clusters: tuple[str, ...] = ()

    @property
    def managed_clusters(self) -> tuple[Cluster, ...]:
        """The clusters this collection changes: the registry cluster, then the consumers."""
        return (self.registry,) + tuple(self.consumers)

    def consumers_of(self, environment: str) -> tuple[Cluster, ...]:
        return tuple(cluster for cluster in self.consumers if cluster.environment == environment)

    @property
    def promotion_order(self) -> list[str]:
        """Names of the environments images are promoted to (not ``state: absent``), each after its
        ``policy.after``."""
        return promotion_order(self.environments)

    @property
    def source_namespaces(self) -> list[str]:
        """The namespaces images are promoted from, as far as the inventory says: the build
        namespaces (``builders``) of every consumer, sorted. The promotion job reads and pulls there."""
        return sorted({builder["namespace"] for cluster in self.consumers for builder in (cluster.credentials or {}).get("builders") or ()})

    def to_dict(self) -> dict[str, Any]:
        """A report of the topology; it never holds a secret."""
        environments = {}
        for name, environment in self.environments.items():
            item = environment.to_dict()
            item["consumers"] = [cluster.name for cluster in self.consumers_of(name)]
            environments[name] = item
        return {
            "environments": environments,
            "promotion_order": self.promotion_order,
            "source_namespaces": self.source_namespaces,
            "registry_cluster": self.registry.to_dict(),
            "consumer_clusters": [cluster.to_dict() for cluster in self.consumers],
            "default_clusters": list(self.default_clusters),
        }

    def summary(self) -> list[str]:
        """Short human-readable lines: which cluster serves which environment."""
        present = promotion_targets(self.environments)
        lines = [f"registry cluster {self.registry.name} ({self.registry.auth.source}) hosts {', '.join(present) or 'no environment'}"]
        if self.registry.integrated_registry:
            lines.append(f"default: integrated registry {self.registry.integrated_registry}")
        for name, environment in self.environments.items():
            if not environment.is_present:
                lines.append(f"{name}: state absent: its registry in namespace {environment.namespace} is removed; not a promotion target")
                continue
            consumers = [cluster.name for cluster in self.consumers_of(name)]
            lines.append(f"{name}: registry {environment.endpoint} in namespace {environment.namespace}, consumers: {', '.join(consumers) or 'none'}")
        if self.default_clusters:
            lines.append(f"left alone (no environment): {', '.join(self.default_clusters)}")
        return lines
