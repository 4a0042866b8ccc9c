# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Reads and conditional writes of the shared objects of a consumer cluster.

Every write carries the resourceVersion that was read, so an administrator's edit that lands in
between is never overwritten: the API server answers 409 and the caller reads again, recomputes
and retries (``edit``). In check mode the ``Cluster`` sends the writes as server-side dry runs, so
permissions and validation are checked and nothing changes.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from ansible_collections.segmented.registry.plugins.module_utils.cluster import Cluster, describe
from ansible_collections.segmented.registry.plugins.module_utils.errors import ConsumerError, Module

T = TypeVar("T")


class ObjectsError(ConsumerError):
    """A consumer cluster's object is not as the edit needs; the message says which, why and the fix
    (never a Secret's data)."""


class ClusterObjects:
    """Objects of one cluster, through its ``Cluster``."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.host = cluster.host

    describe = staticmethod(describe)

    @classmethod
    def connect(cls, module: Module) -> ClusterObjects:
        return cls(Cluster.of_module(module))

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None, missing: str | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None when it does not exist; ``missing``: the message when the
        cluster does not serve the kind."""
        return self.cluster.get(self.cluster.kind(api_version, kind, missing), name, namespace)

    def write(self, obj: dict[str, Any], verb: str) -> Any:
        """``create``, ``replace`` (with the resourceVersion it carries) or ``delete`` one object
        (only at the resourceVersion it carries). Raises ``Conflict`` when it changed since."""
        metadata = obj["metadata"]
        kind = self.cluster.kind(obj["apiVersion"], obj["kind"])
        if verb == "create":
            return self.cluster.create(kind, obj, metadata.get("namespace"))
        if verb == "replace":
            return self.cluster.replace(kind, obj)
        return self.cluster.delete(kind, metadata["name"], metadata.get("namespace"), resource_version=metadata.get("resourceVersion"))

    def edit(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt()`` (read, compute, write) until it does not meet a 409 (``Cluster.retry``)."""
        return self.cluster.retry(attempt, "the object")
