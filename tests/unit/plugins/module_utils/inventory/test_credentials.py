import pytest

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import TopologyError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.validate import build_topology

ENVIRONMENTS = [{"name": "test", "route_host": "test-registry.example.com"}]


def hosts(**consumer_vars):
    return {
        "registry": {"segmented_registry_role": "registry", "segmented_registry_k8s_auth": {"context": "registry"}},
        "test": dict({"segmented_registry_environment": "test", "segmented_registry_k8s_auth": {"context": "test"}},
                     **consumer_vars),
    }


def credentials_of(topology, name="test"):
    return next(cluster.credentials for cluster in topology.consumers if cluster.name == name)


def test_pull_and_builders_are_grouped_and_defaulted():
    topology = build_topology(ENVIRONMENTS, hosts(segmented_registry_credentials={
        "pull": ["myproject/default", "myproject/deployer", "other/default"],
        "builders": [{"namespace": "myproject"}, {"namespace": "tools", "service_account": "pipeline"}]}))
    assert credentials_of(topology) == {
        "pull": [{"namespace": "myproject", "service_accounts": ["default", "deployer"]},
                 {"namespace": "other", "service_accounts": ["default"]}],
        "builders": [{"namespace": "myproject", "service_account": "builder"},
                     {"namespace": "tools", "service_account": "pipeline"}]}
    assert topology.to_dict()["consumer_clusters"][0]["credentials"]["builders"][1]["service_account"] == "pipeline"


def test_no_variable_means_no_credentials_but_the_cluster_wide_one():
    topology = build_topology(ENVIRONMENTS, hosts())
    assert credentials_of(topology) == {"pull": [], "builders": []}


def problems(value, **extra):
    consumer = dict(segmented_registry_credentials=value, **extra)
    with pytest.raises(TopologyError) as error:
        build_topology(ENVIRONMENTS, hosts(**consumer))
    return [str(problem) for problem in error.value.problems]


@pytest.mark.parametrize("value, needle", [
    (["myproject/default"], "must be a mapping"),
    ({"pul": []}, "did you mean 'pull'"),
    ({"pull": {"myproject": "default"}}, "must be a list"),  # a string is a list of one, as Ansible's type list takes it
    ({"pull": ["myproject"]}, "is not namespace/serviceaccount"),
    ({"pull": ["My/default"]}, "is not namespace/serviceaccount"),
    ({"pull": ["a/b", "a/b"]}, "listed twice"),
    ({"pull": ["openshift-config/default"]}, "always written to openshift-config"),
    ({"builders": [{"namespace": "Bad"}]}, "not a namespace name"),
    ({"builders": [{"namespace": "a", "sa": "x"}]}, "unknown key"),
    ({"builders": ["a", "a"]}, "one builder per build namespace"),
    ({"builders": [{"namespace": "a", "service_account": "Bad_SA"}]}, "not a service account name"),
])
def test_bad_values_are_reported_with_field_and_fix(value, needle):
    found = problems(value)
    assert any(needle in text and "segmented_registry_credentials" in text for text in found), found


def test_a_cluster_left_alone_or_the_registry_cluster_gets_none():
    found = problems({"pull": ["a/b"]}, segmented_registry_environment="default")
    assert any("has no environment" in text for text in found), found
    registry_hosts = hosts()
    registry_hosts["registry"]["segmented_registry_credentials"] = {"pull": ["a/b"]}
    with pytest.raises(TopologyError) as error:
        build_topology(ENVIRONMENTS, registry_hosts)
    assert "registry cluster, which mints" in error.value.text


def test_a_build_namespace_may_not_be_an_environments_namespace():
    """Issue 22: a builder's push credential pushes to the namespace of its name on the registry
    cluster; the test environment's registry takes its pushes there from promotion alone."""
    found = problems({"builders": [{"namespace": "myproject"}, {"namespace": "test"}]})
    assert found == ['test: segmented_registry_credentials.builders[1].namespace: "test" is also the namespace of '
                     "environment test (segmented_registry_environments[0] (test)) on the registry cluster; a build "
                     "there could push into that environment's registry past promotion: build in a namespace of "
                     "its own"], found
