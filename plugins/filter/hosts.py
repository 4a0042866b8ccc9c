# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Which inventory host is the registry cluster (documented in registry_cluster_host.yml beside
this file)."""

from ansible.errors import AnsibleFilterError

from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import ROLE_REGISTRY, VAR_ROLE


def registry_cluster_host(hostvars):
    """The name of the one host of ``hostvars`` with ``segmented_registry_role: registry``; none, or
    more than one, is an error that says how to mark it."""
    found = [name for name in hostvars if (hostvars[name] or {}).get(VAR_ROLE) == ROLE_REGISTRY]
    if len(found) != 1:
        which = "no host has" if not found else f"{len(found)} hosts have ({', '.join(found)})"
        raise AnsibleFilterError(
            f"{which} {VAR_ROLE}: {ROLE_REGISTRY}; mark exactly one host, the cluster that hosts the environment registries, with it "
            "(segmented.registry.validate_inventory reports this and every other problem of the inventory)"
        )
    return found[0]


class FilterModule:
    def filters(self):
        return {"registry_cluster_host": registry_cluster_host}
