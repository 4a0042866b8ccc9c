# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The token server's route host (``registry_cluster_token_server_route_host``) against the
environments' route hosts (pure): the ``token_server_route_host`` option of ``validate_inventory``.

The token server's Route needs a host name of its own: the realm URL the environment registries
send clients to (``https://<host>/token``) must reach the token server, not one of the registries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Problem
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_subdomain
from ansible_collections.segmented.registry.plugins.module_utils.text import show

VAR_TOKEN_SERVER_ROUTE_HOST = "registry_cluster_token_server_route_host"
#: The example the messages give.
EXAMPLE_ROUTE_HOST = "registry-token.apps.registry.example.com"


def token_server_route_host_problems(host: str, route_host: Optional[Any], route_hosts: Mapping[str, str]) -> list[Problem]:
    """The problems (``Problem`` of ``host``, the registry cluster) of ``route_host``: it must be a
    lowercase DNS name that no environment of ``route_hosts`` (``{environment: its route_host}``)
    uses. None: nothing to check."""
    if route_host is None:
        return []
    if not is_dns1123_subdomain(route_host):
        return [
            Problem(
                host,
                VAR_TOKEN_SERVER_ROUTE_HOST,
                "{} is not a lowercase DNS name (letters, digits, '-' and '.', at most 253 characters); use a name of its own, like {}".format(
                    show(route_host), EXAMPLE_ROUTE_HOST
                ),
            )
        ]
    users = [environment for environment, environment_host in route_hosts.items() if environment_host == route_host]
    return [
        Problem(
            host,
            VAR_TOKEN_SERVER_ROUTE_HOST,
            "{} is the route_host of environment {}: the token server needs a route host of its own, like {}, that no environment uses".format(
                show(route_host), environment, EXAMPLE_ROUTE_HOST
            ),
        )
        for environment in users
    ]
