"""The lab inventory (inventories/lab) as validate_inventory's topology, the realistic input of the
roles' filters: ``lab_topology(extra_environments, **host_changes)``."""
import os

import yaml

from ansible_collections.segmented.registry.plugins.module_utils.inventory.validate import build_topology

LAB = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "inventories", "lab")


def lab_topology(extra_environments=(), **host_changes):
    """The topology of the lab inventory, with ``extra_environments`` added to
    segmented_registry_environments and ``host_changes`` (host -> variables) merged into its hosts."""
    with open(os.path.join(LAB, "hosts.yml")) as handle:
        hosts = yaml.safe_load(handle)["all"]["children"]["clusters"]["hosts"]
    with open(os.path.join(LAB, "group_vars", "all.yml")) as handle:
        environments = yaml.safe_load(handle)["segmented_registry_environments"] + list(extra_environments)
    for host, variables in host_changes.items():
        hosts.setdefault(host, {}).update(variables)
    return build_topology(environments, hosts).to_dict()


def lab_environments(extra_environments=()):
    """The environments of ``lab_topology(extra_environments)``, as validate_inventory normalizes them."""
    return list(lab_topology(extra_environments)["environments"].values())
