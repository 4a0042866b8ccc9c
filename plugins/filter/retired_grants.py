# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What earlier versions of the registry-cluster role granted the promotion job (documented in
retired_grants.yml beside this file)."""

from ansible_collections.segmented.registry.plugins.module_utils.kinds import RBAC_API_VERSION, object_stub

#: The promotion job's identity before it had a namespace of its own (in the token server's).
RETIRED_PUSHER = "segmented-registry/promoter"
#: The cluster-wide reads earlier versions bound, as (ClusterRole, last part of the binding's name).
RETIRED_READS = (("registry-viewer", "registry-viewer"), ("system:image-puller", "image-puller"))


def _binds_cluster_role(binding, name):
    ref = binding.get("roleRef") or {}
    return ref.get("kind") == "ClusterRole" and ref.get("name") == name


def retired_grants(bindings, cluster_bindings, pushers, environments):
    """The objects to remove, each ``{"apiVersion", "kind", "metadata": {"name"[, "namespace"]}}``:
    the RoleBindings ``segmented-registry:pusher:*`` to system:image-pusher among ``bindings`` (the
    RoleBindings labelled as the collection's) in the environment namespaces only (another
    deployment's elsewhere stay), the ClusterRoleBindings of the cluster-wide reads
    (``cluster_bindings``), RETIRED_PUSHER's environment-promoter RoleBindings and service account
    unless it is one of ``pushers``, and the cluster-wide image-deleter."""
    environment_namespaces = list(dict.fromkeys(env["namespace"] for env in environments))
    out = [
        object_stub(RBAC_API_VERSION, "RoleBinding", binding["metadata"]["name"], binding["metadata"]["namespace"])
        for binding in bindings
        if binding["metadata"].get("namespace") in environment_namespaces
        and binding["metadata"]["name"].startswith("segmented-registry:pusher:")
        and _binds_cluster_role(binding, "system:image-pusher")
    ]
    out += [
        object_stub(RBAC_API_VERSION, "ClusterRoleBinding", binding["metadata"]["name"])
        for binding in cluster_bindings
        if binding["metadata"]["name"].startswith("segmented-registry:")
        and any(_binds_cluster_role(binding, role) and binding["metadata"]["name"].split(":")[-1] == suffix for role, suffix in RETIRED_READS)
    ]
    if RETIRED_PUSHER not in pushers:
        namespace, name = RETIRED_PUSHER.split("/")
        out += [
            object_stub(RBAC_API_VERSION, "RoleBinding", f"segmented-registry:promoter:{namespace}:{name}", environment_namespace)
            for environment_namespace in environment_namespaces
        ]
        out.append(object_stub("v1", "ServiceAccount", name, namespace))
    return out + [
        object_stub(RBAC_API_VERSION, "ClusterRoleBinding", "segmented-registry:image-deleter"),
        object_stub(RBAC_API_VERSION, "ClusterRole", "segmented-registry:image-deleter"),
    ]


class FilterModule:
    def filters(self):
        return {"retired_grants": retired_grants}
