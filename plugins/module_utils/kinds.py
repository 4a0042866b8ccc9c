# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The OpenShift API kinds that more than one layer names (pure, a leaf): the ImageStream, read and
annotated on the registry cluster (``approval``) and written on the consumer clusters
(``consumer``), and the stub that names any object. Where a cluster serves a kind is
``Cluster.kind``'s to discover."""

from __future__ import annotations

from typing import Any

IMAGE_STREAM_API_VERSION = "image.openshift.io/v1"
IMAGE_STREAM_KIND = "ImageStream"
#: Roles and their bindings (the registry-cluster role's filters name the bindings it removes).
RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"


def object_stub(api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    """The object ``kind``/``name`` (in ``namespace``; None: cluster-scoped) as a definition that
    names it and holds nothing else: what kubernetes.core.k8s takes in a list to delete."""
    metadata = {"name": name, "namespace": namespace} if namespace else {"name": name}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}
