"""The token server's route host (registry_cluster_token_server_route_host) against the
environments' route hosts: the token_server_route_host option of validate_inventory."""
import pytest

from ansible_collections.segmented.registry.plugins.module_utils.inventory.token_server import token_server_route_host_problems

ROUTE_HOSTS = {"test": "test-registry.apps.registry.example.com", "prod": "prod-registry.apps.registry.example.com"}


def test_a_dns_name_of_its_own_passes():
    assert token_server_route_host_problems("registry", "registry-token.apps.registry.example.com", ROUTE_HOSTS) == []
    assert token_server_route_host_problems("registry", "token", {}) == []


def test_not_set_is_not_checked():
    assert token_server_route_host_problems("registry", None, ROUTE_HOSTS) == []


@pytest.mark.parametrize("route_host", ["Not A Host Name", "Registry-Token.example.com", "token_server.example.com",
                                        "-token.example.com", "token..example.com", "", "a" * 64 + ".example.com", 7])
def test_what_is_no_lowercase_dns_name_is_refused_naming_the_variable_and_the_fix(route_host):
    (problem,) = token_server_route_host_problems("registry", route_host, ROUTE_HOSTS)
    assert (problem.host, problem.field) == ("registry", "registry_cluster_token_server_route_host")
    assert "is not a lowercase DNS name" in problem.message, problem.message
    assert "like registry-token.apps.registry.example.com" in problem.message, problem.message


def test_an_environments_route_host_is_refused_naming_the_environment():
    (problem,) = token_server_route_host_problems("registry", "prod-registry.apps.registry.example.com", ROUTE_HOSTS)
    assert str(problem) == (
        'registry: registry_cluster_token_server_route_host: "prod-registry.apps.registry.example.com" is the route_host '
        "of environment prod: the token server needs a route host of its own, like registry-token.apps.registry.example.com, "
        "that no environment uses")
