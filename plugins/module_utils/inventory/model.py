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

from dataclasses import dataclass, field
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import SCAN_GATE_DEFAULT_VALUE

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

#: Where credentials come from when the inventory does not say (AWX's Kubernetes credential sets
#: K8S_AUTH_HOST, K8S_AUTH_API_KEY, K8S_AUTH_VERIFY_SSL and K8S_AUTH_SSL_CA_CERT).
K8S_AUTH_ENVIRONMENT = "K8S_AUTH_* environment"


def promotion_order(environments):
    """Names of ``environments`` (``{name: Environment}``), each after its ``after`` (stable; an
    ``after`` outside the mapping is ignored; a cycle, which validation rejects, is left in input
    order). The one place that orders environments."""
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

    def __str__(self):
        return f"{self.host}: {self.field}: {self.message}"

    def to_dict(self):
        return {"host": self.host, "field": self.field, "message": self.message, "text": str(self)}


class TopologyError(ValueError):
    """The inventory is not valid; ``problems`` lists everything found, not just the first."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(self.text)

    @property
    def text(self):
        count = len(self.problems)
        head = f"The inventory has {count} problem{'' if count == 1 else 's'}:"
        return "\n".join([head] + [f"- {problem}" for problem in self.problems])


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

    options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    source: str = K8S_AUTH_ENVIRONMENT
    identity: tuple[str, ...] = field(default=("environment",), repr=False)

    @property
    def uses_environment(self):
        """True when nothing in the inventory tells this cluster apart (K8S_AUTH_* decides)."""
        return self.identity == ("environment",)

    def client_kwargs(self):
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

    def to_dict(self):
        result = {"name": self.name, "role": self.role, "environment": self.environment, "auth": self.auth.source}
        if self.role == ROLE_REGISTRY:
            result["integrated_registry"] = self.integrated_registry
        return result


@dataclass(frozen=True)
class Topology:
    """The validated inventory."""

    environments: dict[str, Environment]
    registry: Cluster
    consumers: tuple[Cluster, ...] = ()
    default_clusters: tuple[str, ...] = ()

    @property
    def managed_clusters(self):
        """The clusters this collection changes: the registry cluster, then the consumers."""
        return (self.registry,) + tuple(self.consumers)

    def consumers_of(self, environment):
        return tuple(cluster for cluster in self.consumers if cluster.environment == environment)

    @property
    def promotion_order(self):
        """Environment names such that each comes after its ``policy.after``."""
        return promotion_order(self.environments)

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
        lines = [f"registry cluster {self.registry.name} ({self.registry.auth.source}) hosts {', '.join(self.environments) or 'no environment'}"]
        if self.registry.integrated_registry:
            lines.append(f"default: integrated registry {self.registry.integrated_registry}")
        for name, environment in self.environments.items():
            consumers = [cluster.name for cluster in self.consumers_of(name)]
            lines.append(f"{name}: registry {environment.endpoint} in namespace {environment.namespace}, consumers: {', '.join(consumers) or 'none'}")
        if self.default_clusters:
            lines.append(f"left alone (no environment): {', '.join(self.default_clusters)}")
        return lines
