# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What the registry-cluster role makes in an environment's namespace, to remove when the
environment is marked absent (documented in registry_objects.yml beside this file)."""

from ansible_collections.segmented.registry.plugins.module_utils.kinds import object_stub

#: (kind, apiVersion, name) of each object templates/registry.yml.j2 and registry-gc.yml.j2 make,
#: in the order they go: the way in first (Route, Service), the Deployment before what it mounts.
REGISTRY_OBJECTS = (
    ("Route", "route.openshift.io/v1", "registry"),
    ("Service", "v1", "registry"),
    ("PodDisruptionBudget", "policy/v1", "registry"),
    ("CronJob", "batch/v1", "registry-gc"),
    ("Deployment", "apps/v1", "registry"),
    ("Secret", "v1", "registry-config"),
    ("Secret", "v1", "registry-http-secret"),
    ("ConfigMap", "v1", "registry-token-trust"),
    ("ServiceAccount", "v1", "registry"),
    ("ServiceAccount", "v1", "registry-gc"),
    ("Role", "rbac.authorization.k8s.io/v1", "registry-gc"),
    ("RoleBinding", "rbac.authorization.k8s.io/v1", "registry-gc"),
)


def registry_objects(namespace, pushers):
    """Object stubs (``apiVersion``, ``kind``, ``metadata.name`` and ``namespace``) of an
    environment's registry in ``namespace``, and the environment-promoter RoleBinding of each of
    ``pushers`` (``namespace/name``) there, as kubernetes.core.k8s takes a list to delete."""
    objects = list(REGISTRY_OBJECTS)
    objects += [("RoleBinding", "rbac.authorization.k8s.io/v1", "segmented-registry:promoter:" + pusher.replace("/", ":")) for pusher in pushers]
    return [object_stub(api_version, kind, name, namespace) for kind, api_version, name in objects]


class FilterModule:
    def filters(self):
        return {"registry_objects": registry_objects}
