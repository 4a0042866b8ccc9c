"""registry_cluster_host (plugins/filter/hosts.py): the inventory host of the registry cluster."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.segmented.registry.plugins.filter.hosts import FilterModule, registry_cluster_host


def test_it_is_registered():
    assert FilterModule().filters() == {"registry_cluster_host": registry_cluster_host}


def test_the_one_host_with_the_registry_role():
    hostvars = {"test": {"segmented_registry_environment": "test"}, "hub": {"segmented_registry_role": "registry"},
                "prod": {"segmented_registry_role": "consumer", "segmented_registry_environment": "prod"}}
    assert registry_cluster_host(hostvars) == "hub"


def test_no_registry_host_is_refused_saying_how_to_mark_one():
    with pytest.raises(AnsibleFilterError, match="^no host has segmented_registry_role: registry; mark exactly one host"):
        registry_cluster_host({"test": {"segmented_registry_environment": "test"}, "other": {"segmented_registry_role": "consumer"}})


def test_two_registry_hosts_are_refused_naming_them():
    hostvars = {"a": {"segmented_registry_role": "registry"}, "b": {"segmented_registry_role": "registry"}}
    with pytest.raises(AnsibleFilterError, match=r"^2 hosts have \(a, b\) segmented_registry_role: registry; mark exactly one"):
        registry_cluster_host(hostvars)
