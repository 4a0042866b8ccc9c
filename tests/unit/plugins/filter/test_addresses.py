"""address_families (plugins/filter/addresses.py): the consumer role's EndpointSlices, one per
address family that has addresses."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.segmented.registry.plugins.filter.addresses import FilterModule, address_families


def families(addresses):
    return {item["family"]: item["addresses"] for item in address_families(addresses)}


def test_it_is_registered():
    assert FilterModule().filters() == {"address_families": address_families}


def test_both_families_ipv4_first_each_in_the_order_given():
    assert address_families(["2001:db8::10", "192.0.2.11", "192.0.2.10", "::ffff:192.0.2.12"]) == [
        {"family": 4, "address_type": "IPv4", "addresses": ["192.0.2.11", "192.0.2.10"]},
        {"family": 6, "address_type": "IPv6", "addresses": ["2001:db8::10", "::ffff:192.0.2.12"]},
    ]


def test_a_family_without_addresses_is_there_empty():
    assert families(["192.0.2.10"]) == {4: ["192.0.2.10"], 6: []}
    assert families(["fd00::1"]) == {4: [], 6: ["fd00::1"]}
    assert families([]) == {4: [], 6: []}


def test_whitespace_around_an_address_is_dropped():
    assert families([" 192.0.2.10 "]) == {4: ["192.0.2.10"], 6: []}


@pytest.mark.parametrize("address", ["registry.example.com", "192.0.2.10:443", "[fd00::1]", "192.0.2.256", ""])
def test_what_is_no_ip_address_is_refused_naming_the_variable_and_the_fix(address):
    with pytest.raises(AnsibleFilterError, match=r"^consumer_cluster_service_addresses: .* is not an IPv4 or IPv6 address; "
                                                 r"an EndpointSlice holds IP addresses only"):
        address_families(["192.0.2.10", address])


@pytest.mark.parametrize("value", ["192.0.2.10", {"a": 1}, None], ids=["string", "mapping", "none"])
def test_what_is_no_list_is_refused(value):
    with pytest.raises(AnsibleFilterError, match="^addresses is .*, not a list of IP addresses"):
        address_families(value, "addresses")
