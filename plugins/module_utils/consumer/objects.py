# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Reads and conditional writes of the shared objects of a consumer cluster.

Every write carries the resourceVersion that was read, so an administrator's edit that lands in
between is never overwritten: the API server answers 409 and the caller reads again, recomputes
and retries (``edit``). In check mode kubernetes.core's client sends the writes as server-side dry
runs, so permissions and validation are checked and nothing changes.
"""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

from ansible_collections.segmented.registry.plugins.module_utils import kube
from ansible_collections.segmented.registry.plugins.module_utils.errors import ConsumerError, Module
from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff

FIELD_MANAGER = "segmented.registry"
MAX_ATTEMPTS = 5

T = TypeVar("T")


class ObjectsError(ConsumerError):
    """An API call failed; the message says which object, why and the fix (never a Secret's data)."""


class Conflict(ConsumerError):
    """The object changed since it was read (409)."""


class ClusterObjects:
    """Objects of one cluster, through kubernetes.core's ``K8SClient``."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.host = kube.host_of(client)
        self._resources: dict[tuple[str, str], Any] = {}

    @classmethod
    def connect(cls, module: Module) -> ClusterObjects:
        try:
            return cls(kube.connect(module))
        except kube.ClusterError as exc:
            raise ObjectsError(str(exc))

    def resource(self, api_version: str, kind: str, missing: str | None = None) -> Any:
        key = (api_version, kind)
        if key not in self._resources:
            try:
                self._resources[key] = self.client.resource(kind, api_version)
            except Exception as exc:
                if kube.is_missing_kind(exc):
                    raise ObjectsError(
                        missing or f"the cluster at {self.host} does not serve {api_version} {kind}: it is not an OpenShift cluster; check the auth options"
                    )
                raise ObjectsError(kube.api_problem(exc, f"discover the {kind} API", self.host))
        return self._resources[key]

    @staticmethod
    def describe(kind: str, name: str, namespace: str | None = None) -> str:
        return f"{kind} {namespace + '/' if namespace else ''}{name}"

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None, missing: str | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None when it does not exist."""
        resource = self.resource(api_version, kind, missing)
        try:
            return self.client.get(resource, name=name, namespace=namespace).to_dict()
        except Exception as exc:
            if kube.status_of(exc) == 404:
                return None
            raise ObjectsError(kube.api_problem(exc, "read " + self.describe(kind, name, namespace), self.host))

    def write(self, obj: dict[str, Any], verb: str) -> Any:
        """``create``, ``replace`` (with the resourceVersion it carries) or ``delete`` one object."""
        metadata = obj["metadata"]
        resource = self.resource(obj["apiVersion"], obj["kind"])
        name, namespace = metadata["name"], metadata.get("namespace")
        try:
            if verb == "create":
                return self.client.create(resource, obj, namespace=namespace, field_manager=FIELD_MANAGER).to_dict()
            if verb == "replace":
                return self.client.replace(resource, obj, name=name, namespace=namespace, field_manager=FIELD_MANAGER).to_dict()
            return self.client.delete(resource, name=name, namespace=namespace, body={"preconditions": {"resourceVersion": metadata.get("resourceVersion")}})
        except Exception as exc:
            if kube.status_of(exc) == 409:
                raise Conflict(kube.server_message(exc))
            raise ObjectsError(kube.api_problem(exc, f"{verb} {self.describe(obj['kind'], name, namespace)}", self.host))


def edit(attempt: Callable[[], T]) -> T:
    """Run ``attempt()`` (read, compute, write) until it does not meet a 409, at most MAX_ATTEMPTS times."""
    number = 1
    while True:
        try:
            return attempt()
        except Conflict as exc:
            if number == MAX_ATTEMPTS:
                raise ObjectsError(f"the object kept changing while it was being edited ({exc}); run again")
            time.sleep(backoff(number, 0.2, 2.0))
            number += 1
