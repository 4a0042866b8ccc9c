# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: addresses
short_description: The IP addresses a host name resolves to, for an EndpointSlice
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Resolves each term (a host name, or C(host:port)) on the controller with the system resolver
    (C(/etc/hosts), then DNS, what C(getaddrinfo) returns) and returns its IPv4 and IPv6 addresses,
    sorted, as one list per term.
  - An EndpointSlice holds IP addresses only, and the API server refuses loopback, link-local and
    unspecified ones; such an address, or a name that does not resolve, is an error that says so.
  - The addresses are those the controller (the AWX execution environment) sees; where the
    clusters resolve the name differently (split-horizon DNS), give the addresses yourself.
options:
  _terms:
    description: Host names (C(host) or C(host:port)).
    required: true
"""

EXAMPLES = r"""
- name: The addresses of the prod registry
  ansible.builtin.debug:
    msg: "{{ lookup('segmented.registry.addresses', 'prod-registry.apps.registry.example.com', wantlist=True) }}"
"""

RETURN = r"""
_raw:
  description: One list of addresses per term.
  type: list
  elements: list
"""

import ipaddress
import socket

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import split_host_port


def resolve(name):
    """Sorted IP addresses of ``name`` (IPv4 first); raises ValueError with the reason."""
    try:
        host = split_host_port(name)[0].strip("[]")
    except ValueError as exc:
        raise ValueError(f"{name!r} is not a registry host[:port]: {exc}")
    try:
        answers = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"{host} does not resolve on the controller ({exc}): fix DNS, or give the addresses yourself, or use a Service of type ExternalName")
    found = sorted({ipaddress.ip_address(answer[4][0]) for answer in answers}, key=lambda ip: (ip.version, ip))
    bad = [str(ip) for ip in found if ip.is_loopback or ip.is_link_local or ip.is_unspecified]
    if bad:
        raise ValueError(
            f"{host} resolves to {', '.join(bad)}, which an EndpointSlice cannot hold (loopback, "
            "link-local or unspecified): give the addresses the clusters reach it on, or use a Service of "
            "type ExternalName"
        )
    return [str(ip) for ip in found]


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        result = []
        for term in terms:
            try:
                result.append(resolve(str(term)))
            except ValueError as exc:
                raise AnsibleLookupError(str(exc))
        return result
