# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The promotion job's identities on the registry cluster and what they read (documented in
pusher_namespaces.yml, pusher_objects.yml and stale_source_bindings.yml beside this file)."""

from ansible_collections.segmented.registry.plugins.module_utils.kinds import RBAC_API_VERSION, object_stub

#: The ClusterRole the pushers are bound to in each source namespace (templates/pushers.yml.j2).
SOURCE_READER = "segmented-registry:promotion-source-reader"


def _unique(names):
    """``names`` once each, in their first order."""
    return list(dict.fromkeys(names))


def pusher_namespaces(namespaces, pushers, sources, inventory_sources):
    """Which source namespaces exist on the registry cluster and which pusher namespaces are new:
    ``{"found": [...], "missing": [...], "new": [...]}``. ``namespaces``: the cluster's Namespace
    objects (one being deleted takes no new binding: not found); ``sources``:
    registry_cluster_pushers_source_namespaces, None for the inventory's (``inventory_sources``)."""
    existing = {item["metadata"]["name"] for item in namespaces if (item.get("status") or {}).get("phase") != "Terminating"}
    wanted = _unique(inventory_sources if sources is None else sources)
    return {
        "found": [name for name in wanted if name in existing],
        "missing": [name for name in wanted if name not in existing],
        "new": [name for name in _unique(pusher.split("/")[0] for pusher in pushers) if name not in existing],
    }


def pusher_objects(objects, new_namespaces, check_mode):
    """The promotion job's rendered objects to apply one by one: those after the ClusterRole (the
    first, replaced on its own), without - in check mode - those in a pusher namespace that does not
    exist yet (the API server refuses to dry-run them)."""
    return [item for item in objects[1:] if not (check_mode and (item.get("metadata") or {}).get("namespace", "") in new_namespaces)]


def stale_source_bindings(bindings, pushers, found):
    """The pushers' source-reader RoleBindings (among ``bindings``, those labelled as this role's) in
    a namespace that is no longer a source that exists (``found``), as object stubs to remove in one
    list. Another deployment's pushers' bindings are left alone."""
    names = {f"{SOURCE_READER}:{pusher.replace('/', ':')}" for pusher in pushers}
    return [
        object_stub(RBAC_API_VERSION, "RoleBinding", binding["metadata"]["name"], binding["metadata"]["namespace"])
        for binding in bindings
        if (binding.get("roleRef") or {}).get("name") == SOURCE_READER
        and binding["metadata"]["name"] in names
        and binding["metadata"].get("namespace") not in found
    ]


class FilterModule:
    def filters(self):
        return {"pusher_namespaces": pusher_namespaces, "pusher_objects": pusher_objects, "stale_source_bindings": stale_source_bindings}
