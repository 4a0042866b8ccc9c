# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""IP addresses sorted by address family (documented in address_families.yml beside this file)."""

import ipaddress
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

#: The address families of an EndpointSlice, in the order the consumer role writes them.
FAMILIES = (4, 6)


def address_families(addresses, name="consumer_cluster_service_addresses"):
    """One item per address family, IPv4 then IPv6: ``{"family": 4, "address_type": "IPv4",
    "addresses": [...]}``, the addresses of that family in the order given (stripped of whitespace) (an empty list for a
    family with none). An item that is no IP address is an error naming ``name``."""
    if isinstance(addresses, (str, bytes, Mapping)) or not isinstance(addresses, Sequence):
        raise AnsibleFilterError(f"{name} is {type(addresses).__name__}, not a list of IP addresses: give a list like [192.0.2.10, 2001:db8::10]")
    found = {family: [] for family in FAMILIES}
    for item in addresses:
        address = str(item).strip()
        try:
            version = ipaddress.ip_address(address).version
        except ValueError:
            raise AnsibleFilterError(
                f"{name}: {item!r} is not an IPv4 or IPv6 address; an EndpointSlice holds IP addresses only, like 192.0.2.10 or 2001:db8::10 "
                "(or use consumer_cluster_service_mode: externalname)"
            )
        found[version].append(address)
    return [{"family": family, "address_type": f"IPv{family}", "addresses": found[family]} for family in FAMILIES]


class FilterModule:
    def filters(self):
        return {"address_families": address_families}
