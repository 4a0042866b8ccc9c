# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What the registry-cluster role makes in an environment's namespace, to remove when the
environment is marked absent, and what earlier versions made there and this one does not
(documented in registry_objects.yml and retired_objects.yml beside this file)."""

from ansible_collections.segmented.registry.plugins.module_utils.kinds import object_stub

#: (kind, apiVersion, name) of each object templates/registry.yml.j2 and registry-gc.yml.j2 make,
#: in the order they go: the way in first (Route, Service), the Deployment before what it mounts;
#: and RETIRED_OBJECTS.
REGISTRY_OBJECTS = (
    ("Route", "route.openshift.io/v1", "registry"),
    ("Service", "v1", "registry"),
    ("PodDisruptionBudget", "policy/v1", "registry"),
    ("CronJob", "batch/v1", "registry-gc"),
    ("Deployment", "apps/v1", "registry"),
    ("ConfigMap", "v1", "registry-config"),
    ("Secret", "v1", "registry-http-secret"),
    ("ConfigMap", "v1", "registry-token-trust"),
    ("ServiceAccount", "v1", "registry"),
    ("ServiceAccount", "v1", "registry-gc"),
    ("Role", "rbac.authorization.k8s.io/v1", "registry-gc"),
    ("RoleBinding", "rbac.authorization.k8s.io/v1", "registry-gc"),
)
#: What versions up to 0.1.0 made in an environment's namespace and this one does not: the
#: configuration as a Secret (now the ConfigMap registry-config). tasks/retired.yml removes it from
#: the environments present (retired_objects); an environment marked absent loses it with the rest.
RETIRED_OBJECTS = (("Secret", "v1", "registry-config"),)


def registry_objects(namespace, pushers):
    """Object stubs (``apiVersion``, ``kind``, ``metadata.name`` and ``namespace``) of an
    environment's registry in ``namespace``, and the environment-promoter RoleBinding of each of
    ``pushers`` (``namespace/name``) there, as kubernetes.core.k8s takes a list to delete."""
    objects = list(REGISTRY_OBJECTS + RETIRED_OBJECTS)
    objects += [("RoleBinding", "rbac.authorization.k8s.io/v1", "segmented-registry:promoter:" + pusher.replace("/", ":")) for pusher in pushers]
    return [object_stub(api_version, kind, name, namespace) for kind, api_version, name in objects]


def retired_objects(environments, found=None):
    """Object stubs of RETIRED_OBJECTS in the namespace of each of ``environments`` (the role's
    environments, each with ``namespace`` and ``state``) that is present, as kubernetes.core.k8s
    takes a list to delete. An absent environment's namespace goes whole (tasks/environment.yml).
    ``found``: the objects of RETIRED_OBJECTS the cluster holds, as a list read answers them (only
    ``metadata.namespace`` and ``metadata.name`` are looked at, and ``kind`` where given: the
    items of a list carry none); given, only those are removed, so that a cluster where none is
    left needs no module run."""
    return [
        object_stub(api_version, kind, name, environment["namespace"])
        for environment in environments
        if environment["state"] == "present"
        for kind, api_version, name in RETIRED_OBJECTS
        if found is None or any(_is(item, kind, environment["namespace"], name) for item in found)
    ]


def _is(item, kind, namespace, name):
    """Whether ``item`` (an object as read) is ``kind`` ``namespace/name``."""
    meta = item.get("metadata") or {}
    return item.get("kind", kind) == kind and meta.get("namespace") == namespace and meta.get("name") == name


class FilterModule:
    def filters(self):
        return {"registry_objects": registry_objects, "retired_objects": retired_objects}
