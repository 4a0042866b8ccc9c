"""The promotion job's identities against the token server's namespace, and the inventory's source
namespaces (what the promoter may read and pull)."""
import pytest

from ansible_collections.segmented.registry.plugins.module_utils.inventory.pushers import DEFAULT_PUSHER, pusher_problems
from ansible_collections.segmented.registry.plugins.module_utils.inventory.validate import build_topology

ENVIRONMENTS = [{"name": "test", "route_host": "test-registry.example.com"},
                {"name": "prod", "route_host": "prod-registry.example.com"}]


def test_the_default_pusher_is_outside_the_token_servers_namespace():
    assert pusher_problems("registry", [DEFAULT_PUSHER], "segmented-registry") == []
    assert pusher_problems("registry", None, "segmented-registry") == []


def test_a_pusher_in_the_token_servers_namespace_is_refused_naming_both_and_the_fix():
    problems = pusher_problems("registry", [DEFAULT_PUSHER, "segmented-registry/promoter"], "segmented-registry")
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.host, problem.field) == ("registry", "registry_cluster_pushers[1]")
    for part in ('"segmented-registry/promoter"', "namespace segmented-registry",
                 "registry_cluster_token_server_namespace", "signing key",
                 "put the pusher in a namespace of its own, like segmented-registry-promotion/promoter"):
        assert part in problem.message, problem.message


@pytest.mark.parametrize("pusher", ["promoter", "a/b/c", "Bad/promoter", 7])
def test_a_pusher_that_is_not_namespace_slash_name_is_refused(pusher):
    (problem,) = pusher_problems("registry", [pusher], "segmented-registry")
    assert problem.field == "registry_cluster_pushers[0]"
    assert "is not namespace/name of a service account" in problem.message


def test_source_namespaces_are_the_build_namespaces_of_every_consumer():
    hosts = {
        "registry": {"segmented_registry_role": "registry", "segmented_registry_k8s_auth": {"context": "registry"}},
        "test": {"segmented_registry_environment": "test", "segmented_registry_k8s_auth": {"context": "test"},
                 "segmented_registry_credentials": {"builders": [{"namespace": "team-b"}, {"namespace": "team-a"}]}},
        "prod": {"segmented_registry_environment": "prod", "segmented_registry_k8s_auth": {"context": "prod"},
                 "segmented_registry_credentials": {"pull": ["team-a/default"], "builders": [{"namespace": "team-a"}]}},
    }
    topology = build_topology(ENVIRONMENTS, hosts)
    assert topology.source_namespaces == ["team-a", "team-b"]
    assert topology.to_dict()["source_namespaces"] == ["team-a", "team-b"]
    del hosts["test"]["segmented_registry_credentials"], hosts["prod"]["segmented_registry_credentials"]
    assert build_topology(ENVIRONMENTS, hosts).to_dict()["source_namespaces"] == []
