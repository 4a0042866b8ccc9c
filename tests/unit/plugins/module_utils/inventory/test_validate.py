"""The inventory model: the valid example, every error case, all problems at once, no secrets."""


import copy
import re
import json
import os

import pytest
import yaml

from ansible_collections.segmented.registry.plugins.module_utils.inventory import checks, schema, shape, validate
from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import misspelt_variables, split_host_port
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    K8S_AUTH_ENVIRONMENT,
    Problem,
    S3Storage,
    ScanGate,
    Storage,
    Tls,
    TopologyError,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.options import (
    clusters_to_hosts,
    hosts_to_clusters,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.reachability import unreachable_problems
from ansible_collections.segmented.registry.plugins.module_utils.inventory.environments import build_environments
from ansible_collections.segmented.registry.plugins.module_utils.inventory.validate import build_topology
from ansible_collections.segmented.registry.plugins.module_utils.kube import AUTH_OPTIONS

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".."))
TOKEN = "sha256~VerySecretToken-0123456789"
PASSWORD = "hunter2-but-longer"

ENVIRONMENTS = [
    {"name": "test", "route_host": "test-registry.apps.registry.example.com",
     "storage": {"size": "100Gi", "storage_class": "gp3-csi"}},
    {"name": "uat", "route_host": "uat-registry.apps.registry.example.com", "endpoint": "uat-registry.example.com:8443",
     "ca_cert": "/etc/pki/router-ca.crt"},
    {"name": "prod", "route_host": "prod-registry.apps.registry.example.com", "validate_certs": False,
     "storage": {"claim_name": "prod-registry-storage"},
     "policy": {"after": "uat", "scan_gate": {"annotation": "security.example.com/scan-result"}}},
]

HOSTS = {
    "registry-cluster": {
        "segmented_registry_role": "registry",
        "segmented_registry_integrated_registry": "default-route-openshift-image-registry.apps.registry.example.com",
        "segmented_registry_k8s_auth": {"kubeconfig": "/home/ops/.kube/config", "context": "registry"},
    },
    "test-cluster": {
        "segmented_registry_environment": "test",
        "segmented_registry_k8s_auth": {"kubeconfig": "/home/ops/.kube/config", "context": "test"},
    },
    "uat-cluster": {"segmented_registry_role": "consumer", "segmented_registry_environment": "uat"},
    "prod-cluster": {
        "segmented_registry_environment": "prod",
        "segmented_registry_k8s_auth": {"host": "https://api.prod.example.com:6443/", "api_key": TOKEN},
    },
    "legacy-cluster": {},
    "old-cluster": {"segmented_registry_environment": "default"},
}


def env(**changes):
    result = copy.deepcopy(ENVIRONMENTS)
    for key, value in changes.items():
        index, field = key.split("__", 1)
        if value is None:
            result[int(index)].pop(field, None)
        else:
            result[int(index)][field] = value
    return result


def hosts(**changes):
    result = copy.deepcopy(HOSTS)
    for host, variables in changes.items():
        host = host.replace("_", "-")
        if variables is None:
            result.pop(host, None)
        else:
            result.setdefault(host, {}).update(variables)
    return result


_SAME = object()


def problems_of(environments=_SAME, inventory_hosts=_SAME):
    with pytest.raises(TopologyError) as info:
        build_topology(ENVIRONMENTS if environments is _SAME else environments,
                       HOSTS if inventory_hosts is _SAME else inventory_hosts)
    return info.value.problems


def only_problem(environments=_SAME, inventory_hosts=_SAME):
    problems = problems_of(environments, inventory_hosts)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def assert_problem(problem, host, field, *words):
    text = str(problem)
    assert problem.host == host, text
    assert problem.field == field, text
    assert text.startswith(f"{host}: {field}: "), text
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"


# --- the valid inventory ---------------------------------------------------------------------


def test_valid_inventory():
    topology = build_topology(ENVIRONMENTS, HOSTS)
    assert list(topology.environments) == ["test", "uat", "prod"]
    assert topology.registry.name == "registry-cluster"
    assert topology.registry.integrated_registry.startswith("default-route-openshift-image-registry")
    assert [(c.name, c.environment) for c in topology.consumers] == [
        ("test-cluster", "test"), ("uat-cluster", "uat"), ("prod-cluster", "prod")]
    assert topology.default_clusters == ("legacy-cluster", "old-cluster")
    assert [c.name for c in topology.managed_clusters] == ["registry-cluster", "test-cluster", "uat-cluster",
                                                           "prod-cluster"]
    assert topology.promotion_order == ["test", "uat", "prod"]

    test, uat, prod = (topology.environments[name] for name in ("test", "uat", "prod"))
    assert test.endpoint == test.route_host and test.namespace == "test"
    assert test.storage == Storage(size="100Gi", storage_class="gp3-csi")
    assert uat.endpoint == "uat-registry.example.com:8443" and uat.ca_cert == "/etc/pki/router-ca.crt"
    assert uat.validate_certs is True and uat.storage == Storage()
    assert [(e.state, e.replicas, e.tls) for e in (test, uat, prod)] == [("present", 1, Tls("edge", None))] * 3
    assert prod.validate_certs is False
    assert prod.storage.claim_name == "prod-registry-storage"
    assert prod.after == "uat"
    assert prod.scan_gate == ScanGate(annotation="security.example.com/scan-result", value="passed")


def test_auth_sources_and_client_kwargs():
    topology = build_topology(ENVIRONMENTS, HOSTS)
    by_name = {c.name: c for c in topology.managed_clusters}
    assert by_name["registry-cluster"].auth.source == "kubeconfig /home/ops/.kube/config context registry"
    assert by_name["prod-cluster"].auth.source == "host https://api.prod.example.com:6443"
    assert by_name["uat-cluster"].auth.source == K8S_AUTH_ENVIRONMENT
    assert by_name["uat-cluster"].auth.uses_environment
    assert by_name["prod-cluster"].auth.client_kwargs() == {"host": "https://api.prod.example.com:6443/",
                                                            "api_key": TOKEN}
    assert by_name["uat-cluster"].auth.client_kwargs() == {}


def test_aliases_are_canonicalised():
    inventory = hosts(test_cluster={"segmented_registry_k8s_auth": {
        "kubeconfig": "/k", "context": "test", "verify_ssl": "no", "ssl_ca_cert": "/ca.crt", "cert_file": "/c.crt",
        "key_file": "/c.key", "impersonate_groups": "a,b"}})
    cluster = build_topology(ENVIRONMENTS, inventory).consumers[0]
    assert cluster.auth.client_kwargs() == {
        "kubeconfig": "/k", "context": "test", "validate_certs": False, "ca_cert": "/ca.crt", "client_cert": "/c.crt",
        "client_key": "/c.key", "impersonate_groups": ["a", "b"]}


def test_inline_kubeconfig_and_default_kubeconfig():
    inventory = hosts(test_cluster={"segmented_registry_k8s_auth": {"kubeconfig": {"apiVersion": "v1", "users": [
        {"name": "u", "user": {"token": TOKEN}}]}, "context": "t"}},
        uat_cluster={"segmented_registry_k8s_auth": {"context": "uat"}})
    topology = build_topology(ENVIRONMENTS, inventory)
    sources = {c.name: c.auth.source for c in topology.consumers}
    assert sources["test-cluster"] == "kubeconfig (inline) context t"
    assert sources["uat-cluster"] == "kubeconfig (K8S_AUTH_KUBECONFIG or ~/.kube/config) context uat"
    assert TOKEN not in json.dumps(topology.to_dict())


def test_environment_given_as_a_one_item_list_and_empty_inventory_values():
    inventory = hosts(test_cluster={"segmented_registry_environment": ["test"]},
                      legacy_cluster={"segmented_registry_environment": ""})
    topology = build_topology(ENVIRONMENTS, inventory)
    assert topology.consumers[0].environment == "test"
    assert "legacy-cluster" in topology.default_clusters


def test_registry_cluster_may_say_default():
    inventory = hosts(registry_cluster={"segmented_registry_environment": "default"})
    assert build_topology(ENVIRONMENTS, inventory).registry.name == "registry-cluster"


def test_values_after_the_module_argument_spec():
    """The module passes every suboption, unset ones as None, and keeps aliases beside their option."""
    environments = copy.deepcopy(ENVIRONMENTS)
    for item in environments:
        for key in schema.ENVIRONMENT_KEYS:
            item.setdefault(key, None)
    inventory = hosts(test_cluster={"segmented_registry_k8s_auth": dict(
        {key: None for key in AUTH_OPTIONS}, kubeconfig="/k", context="test", validate_certs=False,
        verify_ssl="no")})
    topology = build_topology(environments, inventory)
    assert topology.environments["test"].validate_certs is True
    assert topology.consumers[0].auth.client_kwargs() == {"kubeconfig": "/k", "context": "test",
                                                          "validate_certs": False}


def test_storage_size_as_number_and_quantities():
    topology = build_topology(env(**{"0__storage": {"size": 1073741824}}), HOSTS)
    assert topology.environments["test"].storage.size == "1073741824"
    for good in ("100Gi", "1.5Ti", "500M", "1e3", "0.5Gi", "128974848"):
        assert checks.is_quantity(good), good
    for bad in ("100 Gi", "100GB", "-1Gi", "0", "Gi", "1.2.3Gi", "", "0Gi"):
        assert not checks.is_quantity(bad), bad


def test_promotion_order_follows_after():
    environments = env(**{"0__policy": {"after": "prod"}, "2__policy": {"after": "uat"}})
    assert build_topology(environments, HOSTS).promotion_order == ["uat", "prod", "test"]


def test_summary_names_every_cluster():
    lines = build_topology(ENVIRONMENTS, HOSTS).summary()
    text = "\n".join(lines)
    assert "registry cluster registry-cluster" in lines[0]
    assert "test: registry test-registry.apps.registry.example.com in namespace test, consumers: test-cluster" in text
    assert "left alone (no environment): legacy-cluster, old-cluster" in text
    assert TOKEN not in text


# --- environments ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, words", [
    ("Test", ["\"Test\"", "DNS-1123 label", "lowercase"]),
    ("te_st", ["\"te_st\"", "DNS-1123 label"]),
    ("-test", ["\"-test\""]),
    ("a" * 64, ["at most 63"]),
    ("default", ["'default' is reserved", "choose another name"]),
    ("openshift-config", ["OpenShift reserves", "choose another name"]),
    ("kube-system", ["OpenShift reserves"]),
])
def test_bad_environment_name(name, words):
    problem = only_problem(ENVIRONMENTS + [{"name": name, "route_host": "extra-registry.apps.registry.example.com"}])
    assert_problem(problem, "segmented_registry_environments[3]" + (
        f" ({name})" if isinstance(name, str) else ""), "name", *words)


def test_environment_name_required():
    problem = only_problem(ENVIRONMENTS + [{"route_host": "extra-registry.apps.registry.example.com"}])
    assert_problem(problem, "segmented_registry_environments[3]", "name", "is required", "lowercase DNS label")


def test_broken_environment_still_known_to_hosts_and_policies():
    """One problem per mistake: hosts and policy.after naming a broken environment add none."""
    problem = only_problem(env(**{"1__storage": {"size": "big"}}))
    assert_problem(problem, "segmented_registry_environments[1] (uat)", "storage.size")


def test_duplicate_environment_name():
    environments = ENVIRONMENTS + [{"name": "uat", "route_host": "uat2-registry.apps.registry.example.com"}]
    problem = only_problem(environments)
    assert_problem(problem, "segmented_registry_environments[3] (uat)", "name", "\"uat\"",
                   "already defined by segmented_registry_environments[1] (uat)", "must be unique")


@pytest.mark.parametrize("route_host", ["Test-Registry.example.com", "https://test.example.com", "test.example.com:443",
                                        "test_registry.example.com", "a" * 64 + ".example.com", ""])
def test_bad_route_host(route_host):
    problem = only_problem(env(**{"0__route_host": route_host}))
    assert_problem(problem, "segmented_registry_environments[0] (test)", "route_host", "DNS-1123 subdomain",
                   "like test-registry.apps.registry.example.com")


def test_route_host_required():
    problem = only_problem(env(**{"0__route_host": None}))
    assert_problem(problem, "segmented_registry_environments[0] (test)", "route_host", "is required",
                   "test-registry.apps.registry.example.com")


def test_duplicate_route_host_and_endpoint():
    problems = problems_of(env(**{"1__route_host": "test-registry.apps.registry.example.com", "1__endpoint": None}))
    assert len(problems) == 2
    assert_problem(problems[0], "segmented_registry_environments[1] (uat)", "route_host",
                   "already the route_host of segmented_registry_environments[0] (test)")
    assert_problem(problems[1], "segmented_registry_environments[1] (uat)", "endpoint",
                   "already the endpoint of segmented_registry_environments[0] (test)", "own host[:port]")


def test_endpoint_may_not_equal_another_route_host():
    problem = only_problem(env(**{"1__endpoint": "test-registry.apps.registry.example.com"}))
    assert_problem(problem, "segmented_registry_environments[1] (uat)", "endpoint", "already the endpoint")


@pytest.mark.parametrize("endpoint, words", [
    ("https://uat.example.com", ["drop the scheme"]),
    ("uat.example.com/v2", ["without a path"]),
    ("uat.example.com:0", ["port must be a number from 1 to 65535"]),
    ("uat.example.com:99999", ["1 to 65535"]),
    ("uat.example.com:http", ["port"]),
    ("UAT.example.com", ["lowercase DNS name"]),
    ("[fd00::1", ["brackets"]),
])
def test_bad_endpoint(endpoint, words):
    problem = only_problem(env(**{"1__endpoint": endpoint}))
    assert_problem(problem, "segmented_registry_environments[1] (uat)", "endpoint", "is not host[:port]", *words)


@pytest.mark.parametrize("value, expected", [
    ("registry.example.com", ("registry.example.com", None)),
    ("registry.example.com:5000", ("registry.example.com", 5000)),
    ("10.0.0.1:5000", ("10.0.0.1", 5000)),
    ("[fd00::1]:5000", ("[fd00::1]", 5000)),
    ("localhost", ("localhost", None)),
])
def test_split_host_port(value, expected):
    assert split_host_port(value) == expected


@pytest.mark.parametrize("value", ["maybe", 2, [], ""])
def test_bad_validate_certs(value):
    problem = only_problem(env(**{"0__validate_certs": value}))
    assert_problem(problem, "segmented_registry_environments[0] (test)", "validate_certs", "not a boolean",
                   "true (the default) or false")


def test_validate_certs_accepts_ansible_booleans():
    topology = build_topology(env(**{"0__validate_certs": "no", "1__validate_certs": "yes"}), HOSTS)
    assert topology.environments["test"].validate_certs is False
    assert topology.environments["uat"].validate_certs is True


def test_bad_ca_cert():
    problem = only_problem(env(**{"1__ca_cert": ""}))
    assert_problem(problem, "segmented_registry_environments[1] (uat)", "ca_cert", "path of a PEM file")


def test_unknown_environment_key():
    problem = only_problem(env(**{"0__route_hots": "x"}))
    assert_problem(problem, "segmented_registry_environments[0] (test)", "route_hots", "unknown key \"route_hots\"",
                   "did you mean 'route_host'?", "known keys: name, route_host")


@pytest.mark.parametrize("storage, field, words", [
    ({"size": "100GB"}, "storage.size", ["\"100GB\" is not a Kubernetes quantity", "like 100Gi"]),
    ({"size": "100Gi", "class": "x"}, "storage.class", ["unknown key \"class\"", "storage_class"]),
    ({"storage_class": "Fast SSD"}, "storage.storage_class", ["\"Fast SSD\" is not a StorageClass name"]),
    ({"claim_name": "Registry"}, "storage.claim_name", ["not a PersistentVolumeClaim name"]),
    ({"claim_name": "pvc", "size": "1Gi"}, "storage.claim_name", ["excludes size and storage_class",
                                                                  "keep one or the other"]),
    ({"claim_name": "pvc", "storage_class": "gp3"}, "storage.claim_name", ["excludes size and storage_class"]),
    ("100Gi", "storage", ["must be a mapping", "\"100Gi\""]),
])
def test_bad_storage(storage, field, words):
    problem = only_problem(env(**{"0__storage": storage}))
    assert_problem(problem, "segmented_registry_environments[0] (test)", field, *words)


@pytest.mark.parametrize("policy, field, words", [
    ({"after": "staging"}, "policy.after", ["\"staging\" is not a known environment", "use one of: prod, test, uat"]),
    ({"after": "prod"}, "policy.after", ["\"prod\" is this environment itself"]),
    ({"after": "default"}, "policy.after", ["\"default\" is not a known environment"]),
    ({"after": ["uat"]}, "policy.after", ["[\"uat\"] is not the name of another environment",
                                          "name the environment whose registry must hold a digest first"]),
    ({"before": "uat"}, "policy.before", ["unknown key \"before\"", "known keys: after, scan_gate"]),
    ({"scan_gate": {"value": "ok"}}, "policy.scan_gate.annotation", ["is required", "security.example.com/scan-result"]),
    ({"scan_gate": {"annotation": "not a key!"}}, "policy.scan_gate.annotation",
     ["\"not a key!\" is not a Kubernetes annotation key", "[prefix/]name"]),
    ({"scan_gate": {"annotation": "Bad_Prefix/scan"}}, "policy.scan_gate.annotation", ["not a Kubernetes annotation key"]),
    ({"scan_gate": {"annotation": "example.com/scan", "value": ""}}, "policy.scan_gate.value",
     ["non-empty string (default 'passed')"]),
    ({"scan_gate": {"annotation": "example.com/scan", "values": "ok"}}, "policy.scan_gate.values",
     ["unknown key \"values\"", "did you mean 'value'?"]),
    ({"scan_gate": "scanned"}, "policy.scan_gate", ["must be a mapping", "\"scanned\""]),
    ("uat", "policy", ["must be a mapping with after and/or scan_gate"]),
])
def test_bad_policy(policy, field, words):
    problem = only_problem(env(**{"2__policy": policy}))
    assert_problem(problem, "segmented_registry_environments[2] (prod)", field, *words)


def test_scan_gate_without_prefix_and_custom_value():
    topology = build_topology(env(**{"2__policy": {"scan_gate": {"annotation": "scanned", "value": "clean"}}}), HOSTS)
    assert topology.environments["prod"].scan_gate == ScanGate("scanned", "clean")


def test_policy_cycle_reported_once():
    environments = env(**{"0__policy": {"after": "prod"}, "1__policy": {"after": "test"}})
    problem = only_problem(environments)
    assert_problem(problem, "segmented_registry_environments[0] (test)", "policy.after",
                   "cycle (test -> prod -> uat -> test)", "remove policy.after from one of them")


def test_two_environment_cycle():
    environments = env(**{"1__policy": {"after": "prod"}})
    problem = only_problem(environments)
    assert "uat -> prod -> uat" in str(problem)


@pytest.mark.parametrize("value, words", [
    (None, ["is not defined", "group_vars/all"]),
    ([], ["is empty", "at least one environment"]),
    ({"name": "test"}, ["must be a list of environments", "a mapping"]),
    ("test", ["must be a list of environments", "a string"]),
])
def test_environments_variable_itself(value, words):
    problems = problems_of(value, {"registry-cluster": HOSTS["registry-cluster"]})
    assert_problem(problems[0], "inventory", "segmented_registry_environments", *words)


def test_environment_entry_not_a_mapping():
    problem = only_problem(ENVIRONMENTS + ["staging"])
    assert_problem(problem, "segmented_registry_environments[3]", "", "must be a mapping", "\"staging\"")


# --- deployment fields: state, replicas, tls, storage.s3 ----------------------------------------

S3 = {"bucket": "acme-prod-registry", "credentials_secret": "prod-registry-s3"}


def test_normalized_environment_has_every_field_with_its_default():
    """The fact segmented_registry_topology.environments: every key, defaults filled in."""
    report = build_topology(ENVIRONMENTS, HOSTS).to_dict()
    assert report["environments"]["uat"] == {
        "name": "uat",
        "namespace": "uat",
        "state": "present",
        "route_host": "uat-registry.apps.registry.example.com",
        "endpoint": "uat-registry.example.com:8443",
        "ca_cert": "/etc/pki/router-ca.crt",
        "validate_certs": True,
        "replicas": 1,
        "tls": {"termination": "edge", "serving_cert_secret": None},
        "storage": {"size": None, "storage_class": None, "claim_name": None, "s3": None},
        "policy": {"after": None, "scan_gate": None},
        "consumers": ["uat-cluster"],
    }
    assert report["environments"]["test"]["storage"] == {"size": "100Gi", "storage_class": "gp3-csi",
                                                         "claim_name": None, "s3": None}
    assert [list(item) for item in report["environments"].values()] == [list(report["environments"]["uat"])] * 3


def test_s3_storage_tls_replicas_and_state_in_normalized_output():
    environments = env(**{
        "2__storage": {"s3": {"bucket": "acme-prod-registry", "credentials_secret": "prod-registry-s3",
                              "region": "eu-west-1", "endpoint": "https://minio.example.com:9000",
                              "force_path_style": "yes", "root_directory": "/registry"}},
        "2__replicas": 3,
        "2__tls": {"termination": "passthrough", "serving_cert_secret": "prod-registry-tls"},
        "1__tls": {"termination": "reencrypt"},
        "0__state": "present",
    })
    topology = build_topology(environments, HOSTS)
    prod = topology.environments["prod"]
    assert prod.storage == Storage(s3=S3Storage(bucket="acme-prod-registry", credentials_secret="prod-registry-s3",
                                                region="eu-west-1", endpoint="https://minio.example.com:9000",
                                                force_path_style=True, root_directory="/registry"))
    assert prod.replicas == 3
    report = topology.to_dict()["environments"]
    assert report["prod"]["storage"] == {"size": None, "storage_class": None, "claim_name": None, "s3": {
        "bucket": "acme-prod-registry", "region": "eu-west-1", "endpoint": "https://minio.example.com:9000",
        "credentials_secret": "prod-registry-s3", "force_path_style": True, "root_directory": "/registry"}}
    assert report["prod"]["tls"] == {"termination": "passthrough", "serving_cert_secret": "prod-registry-tls"}
    # reencrypt without a Secret: OpenShift's service CA issues the pod's certificate
    assert report["uat"]["tls"] == {"termination": "reencrypt", "serving_cert_secret": None}
    assert report["test"]["state"] == "present"


def test_s3_defaults_in_normalized_output():
    report = build_topology(env(**{"2__storage": {"s3": dict(S3)}}), HOSTS).to_dict()
    assert report["environments"]["prod"]["storage"]["s3"] == {
        "bucket": "acme-prod-registry", "region": "us-east-1", "endpoint": None,
        "credentials_secret": "prod-registry-s3", "force_path_style": False, "root_directory": None}


def test_deployment_fields_after_the_module_argument_spec():
    """The module fills in every suboption of a given mapping (unset ones as None, defaults as
    defaults); a mapping not given stays None."""
    environments = copy.deepcopy(ENVIRONMENTS)
    for item in environments:
        for key in schema.ENVIRONMENT_KEYS:
            item.setdefault(key, None)
    environments[0]["tls"] = {"termination": "edge", "serving_cert_secret": None}
    environments[0]["storage"] = {"size": "100Gi", "storage_class": None, "claim_name": None, "s3": None}
    environments[2]["storage"] = {"size": None, "storage_class": None, "claim_name": None, "s3": dict(
        S3, region="us-east-1", endpoint=None, force_path_style=False, root_directory=None)}
    environments[2]["replicas"] = 2
    topology = build_topology(environments, HOSTS)
    assert [(e.state, e.replicas, e.tls.termination) for e in topology.environments.values()] == [
        ("present", 1, "edge"), ("present", 1, "edge"), ("present", 2, "edge")]
    assert topology.environments["prod"].storage.s3.bucket == "acme-prod-registry"


@pytest.mark.parametrize("state", ["gone", "Absent", True, ["absent"]])
def test_bad_state(state):
    problem = only_problem(env(**{"1__state": state}))
    assert_problem(problem, "segmented_registry_environments[1] (uat)", "state", "is not a state",
                   "use present (the default", "or absent (its registry is removed")


@pytest.mark.parametrize("replicas", [0, 11, -1, "two", True, 2.5, [2]])
def test_bad_replicas(replicas):
    problem = only_problem(env(**{"2__replicas": replicas, "2__storage": {"s3": dict(S3)}}))
    assert_problem(problem, "segmented_registry_environments[2] (prod)", "replicas", "is not a number of registry pods",
                   "whole number from 1 to 10 (default 1)")


def test_replicas_as_a_string_of_digits():
    topology = build_topology(env(**{"2__replicas": "4", "2__storage": {"s3": dict(S3)}}), HOSTS)
    assert topology.environments["prod"].replicas == 4


@pytest.mark.parametrize("storage", [None, {"size": "10Gi"}, {"claim_name": "prod-registry-storage"}])
def test_more_than_one_replica_needs_s3(storage):
    problem = only_problem(env(**{"2__replicas": 2, "2__storage": storage}))
    assert_problem(problem, "segmented_registry_environments[2] (prod)", "replicas",
                   "2 registry pods need object storage", "filesystem storage on one volume serves one replica",
                   "use storage.s3", "or set replicas: 1")


def test_one_replica_explicitly_on_a_volume():
    assert build_topology(env(**{"2__replicas": 1}), HOSTS).environments["prod"].replicas == 1


@pytest.mark.parametrize("tls, field, words", [
    ({"termination": "pass"}, "tls.termination",
     ["\"pass\" is not a Route termination", "use edge (the default", "reencrypt", "or passthrough"]),
    ({"termination": "Edge"}, "tls.termination", ["\"Edge\" is not a Route termination"]),
    ({"termination": "edge", "serving_cert_secret": "uat-registry-tls"}, "tls.serving_cert_secret",
     ["is not used with termination edge", "plain HTTP to the registry pod", "remove serving_cert_secret",
      "set tls.termination to reencrypt or passthrough"]),
    ({"serving_cert_secret": "uat-registry-tls"}, "tls.serving_cert_secret", ["is not used with termination edge"]),
    ({"termination": "passthrough"}, "tls.serving_cert_secret",
     ["is required with termination passthrough", "kubernetes.io/tls Secret in namespace uat",
      "like uat-registry-tls", "or use termination reencrypt"]),
    ({"termination": "reencrypt", "serving_cert_secret": "Bad_Name"}, "tls.serving_cert_secret",
     ["\"Bad_Name\" is not a Secret name", "kubernetes.io/tls Secret in namespace uat"]),
    ({"termination": "reencrypt", "cert": "x"}, "tls.cert", ["unknown key \"cert\"", "termination, serving_cert_secret"]),
    ("edge", "tls", ["must be a mapping like {termination: reencrypt}", "\"edge\""]),
])
def test_bad_tls(tls, field, words):
    problem = only_problem(env(**{"1__tls": tls}))
    assert_problem(problem, "segmented_registry_environments[1] (uat)", field, *words)


def test_tls_termination_null_is_edge():
    assert build_topology(env(**{"1__tls": {"termination": None}}), HOSTS).environments["uat"].tls == Tls()


@pytest.mark.parametrize("bucket, words", [
    ("ab", ["2 characters, not 3 to 63"]),
    ("a" * 64, ["64 characters, not 3 to 63"]),
    ("Acme-Registry", ["it has characters other than lowercase letters, digits"]),
    ("acme_registry", ["characters other than"]),
    ("-acme", ["it must start and end with a letter or digit"]),
    ("acme.", ["it must start and end with a letter or digit"]),
    ("acme..registry", ["two dots may not be adjacent"]),
    ("192.168.1.10", ["may not be an IP address"]),
    (42, ["\"42\"", "2 characters"]),  # a number is written as a string, as Ansible's type str does
])
def test_bad_s3_bucket(bucket, words):
    problem = only_problem(env(**{"2__storage": {"s3": dict(S3, bucket=bucket)}}))
    assert_problem(problem, "segmented_registry_environments[2] (prod)", "storage.s3.bucket", "is not an S3 bucket name",
                   "3 to 63 lowercase letters, digits, '.' and '-'", "like acme-prod-registry", *words)


@pytest.mark.parametrize("s3, field, words", [
    ({"credentials_secret": "prod-registry-s3"}, "storage.s3.bucket", ["is required", "like acme-prod-registry"]),
    ({"bucket": "acme-prod-registry"}, "storage.s3.credentials_secret",
     ["is required: name a Secret in namespace prod with the keys access_key and secret_key",
      "like prod-registry-s3"]),
    (dict(S3, credentials_secret="S3 Keys"), "storage.s3.credentials_secret",
     ["\"S3 Keys\" is not a Secret name", "keys access_key and secret_key"]),
    (dict(S3, region="eu west"), "storage.s3.region", ["\"eu west\" is not a region name", "like us-east-1 (the default)"]),
    (dict(S3, region=""), "storage.s3.region", ["is not a region name"]),
    (dict(S3, endpoint="minio.example.com:9000"), "storage.s3.endpoint",
     ["is not an http(s)://host[:port] URL", "start it with http:// or https://", "leave it out for AWS S3"]),
    (dict(S3, endpoint="https://minio.example.com:9000/bucket"), "storage.s3.endpoint", ["without a path"]),
    (dict(S3, endpoint="https://minio.example.com:99999"), "storage.s3.endpoint", ["1 to 65535"]),
    (dict(S3, endpoint="ftp://minio.example.com"), "storage.s3.endpoint", ["start it with http:// or https://"]),
    (dict(S3, force_path_style="sometimes"), "storage.s3.force_path_style", ["not a boolean", "false (the default) or true"]),
    (dict(S3, root_directory="registry"), "storage.s3.root_directory",
     ["\"registry\" is not an absolute path", "starting with /, like /registry"]),
    (dict(S3, access_key="AKIA"), "storage.s3.access_key", ["unknown key \"access_key\"", "credentials_secret"]),
    ("acme-prod-registry", "storage.s3", ["must be a mapping like {bucket: acme-prod-registry, credentials_secret: "
                                          "prod-registry-s3}", "\"acme-prod-registry\""]),
])
def test_bad_s3(s3, field, words):
    problem = only_problem(env(**{"2__storage": {"s3": s3}}))
    assert_problem(problem, "segmented_registry_environments[2] (prod)", field, *words)


def test_s3_credentials_secret_problem_text():
    problem = only_problem(env(**{"2__storage": {"s3": {"bucket": "acme-prod-registry"}}}))
    assert str(problem).startswith("segmented_registry_environments[2] (prod): storage.s3.credentials_secret: is "
                                   "required: name a Secret in namespace prod ")


@pytest.mark.parametrize("volume, words", [
    ({"size": "100Gi"}, ["a bucket excludes storage.size"]),
    ({"storage_class": "gp3-csi"}, ["a bucket excludes storage.storage_class"]),
    ({"claim_name": "prod-registry-storage"}, ["a bucket excludes storage.claim_name"]),
    ({"size": "100Gi", "storage_class": "gp3-csi"}, ["excludes storage.size and storage.storage_class"]),
])
def test_s3_excludes_volume_settings(volume, words):
    problem = only_problem(env(**{"2__storage": dict(volume, s3=dict(S3))}))
    assert_problem(problem, "segmented_registry_environments[2] (prod)", "storage.s3", *words,
                   "keep s3 or the volume settings, not both")


@pytest.mark.parametrize("value, expected", [
    ("https://minio.example.com:9000", ("https", "minio.example.com", 9000)),
    ("http://10.0.0.5", ("http", "10.0.0.5", None)),
    ("https://s3.eu-west-1.amazonaws.com", ("https", "s3.eu-west-1.amazonaws.com", None)),
])
def test_split_url(value, expected):
    assert checks.split_url(value) == expected


def test_duplicate_route_host_alone():
    """Two environments with one route host (the endpoints told apart) is one problem, on the second."""
    problem = only_problem(env(**{"1__route_host": "Test-Registry.apps.registry.example.com".lower()}))
    assert_problem(problem, "segmented_registry_environments[1] (uat)", "route_host",
                   "\"test-registry.apps.registry.example.com\" is already the route_host of "
                   "segmented_registry_environments[0] (test)", "each environment needs its own registry host")


# --- state: absent ---------------------------------------------------------------------------


def retired(**changes):
    """The environments with uat retired (state: absent), prod waiting on test instead."""
    return env(**dict({"1__state": "absent", "2__policy": {"after": "test"}}, **changes))


def without_uat_cluster():
    return hosts(uat_cluster=None)


def test_absent_environment_stays_in_the_topology_but_is_no_promotion_target():
    topology = build_topology(retired(), without_uat_cluster())
    assert list(topology.environments) == ["test", "uat", "prod"]
    assert topology.environments["uat"].state == "absent"
    assert topology.environments["uat"].is_present is False
    assert topology.promotion_order == ["test", "prod"]
    report = topology.to_dict()
    assert report["environments"]["uat"]["state"] == "absent"
    assert report["environments"]["uat"]["consumers"] == []
    assert report["promotion_order"] == ["test", "prod"]
    lines = topology.summary()
    assert lines[0].endswith("hosts test, prod")
    assert "uat: state absent: its registry in namespace uat is removed; not a promotion target" in lines


def test_environments_alone_keep_absent_ones():
    environments = build_environments(retired())
    assert [(name, e.state) for name, e in environments.items()] == [
        ("test", "present"), ("uat", "absent"), ("prod", "present")]


def test_consumer_of_an_absent_environment():
    problem = only_problem(retired())
    assert_problem(problem, "uat-cluster", "segmented_registry_environment", "\"uat\" has state: absent",
                   "no cluster can pull from it", "assign this cluster a present environment (prod, test)",
                   "or default to leave it alone", "set the state of uat back to present")


def test_policy_after_naming_an_absent_environment():
    problem = only_problem(env(**{"1__state": "absent"}), without_uat_cluster())
    assert_problem(problem, "segmented_registry_environments[2] (prod)", "policy.after", "\"uat\" has state: absent",
                   "no promotion target", "point policy.after at a present environment (test)",
                   "remove policy.after", "set the state of uat back to present")


def test_absent_environments_are_not_offered_as_fixes():
    problem = only_problem(retired(), hosts(uat_cluster={"segmented_registry_environment": "qa"}))
    assert_problem(problem, "uat-cluster", "segmented_registry_environment", "use one of: prod, test (or default")


# --- hosts ---------------------------------------------------------------------------------------


def test_no_registry_cluster():
    problem = only_problem(inventory_hosts=hosts(registry_cluster=None))
    assert_problem(problem, "inventory", "segmented_registry_role", "no host has segmented_registry_role: registry",
                   "mark exactly one host")


def test_two_registry_clusters():
    inventory = hosts(legacy_cluster={"segmented_registry_role": "registry",
                                      "segmented_registry_k8s_auth": {"kubeconfig": "/k2"}})
    problem = only_problem(inventory_hosts=inventory)
    assert_problem(problem, "inventory", "segmented_registry_role", "2 hosts",
                   "(registry-cluster, legacy-cluster)", "keep the role on one of them")


@pytest.mark.parametrize("role", ["Registry", "hub", "default", 1])
def test_unknown_role(role):
    problem = only_problem(inventory_hosts=hosts(legacy_cluster={"segmented_registry_role": role}))
    assert_problem(problem, "legacy-cluster", "segmented_registry_role", "is not a role",
                   "use registry", "or consumer")


def test_consumer_role_without_environment():
    problem = only_problem(inventory_hosts=hosts(legacy_cluster={"segmented_registry_role": "consumer"}))
    assert_problem(problem, "legacy-cluster", "segmented_registry_environment", "is not set",
                   "segmented_registry_role is consumer", "assign one environment (prod, test, uat)", "default")


def test_consumer_role_with_default_is_left_alone():
    inventory = hosts(legacy_cluster={"segmented_registry_role": "consumer",
                                      "segmented_registry_environment": "default"})
    assert "legacy-cluster" in build_topology(ENVIRONMENTS, inventory).default_clusters


def test_consumer_with_two_environments():
    problem = only_problem(inventory_hosts=hosts(test_cluster={"segmented_registry_environment": ["test", "uat"]}))
    assert_problem(problem, "test-cluster", "segmented_registry_environment", "[\"test\", \"uat\"]",
                   "a consumer is assigned exactly one environment", "keep one name")


def test_consumer_with_empty_list():
    problem = only_problem(inventory_hosts=hosts(test_cluster={"segmented_registry_environment": []}))
    assert_problem(problem, "test-cluster", "segmented_registry_environment", "exactly one environment")


def test_consumer_environment_not_a_string():
    problem = only_problem(inventory_hosts=hosts(test_cluster={"segmented_registry_environment": {"name": "test"}}))
    assert_problem(problem, "test-cluster", "segmented_registry_environment", "must be an environment name")


def test_unknown_environment():
    problem = only_problem(inventory_hosts=hosts(test_cluster={"segmented_registry_environment": "staging"}))
    assert_problem(problem, "test-cluster", "segmented_registry_environment", "\"staging\" is not a known environment",
                   "use one of: prod, test, uat", "or default to leave this cluster alone")


def test_environment_on_the_registry_cluster():
    problem = only_problem(inventory_hosts=hosts(registry_cluster={"segmented_registry_environment": "prod"}))
    assert_problem(problem, "registry-cluster", "segmented_registry_environment", "\"prod\" is set on the registry "
                   "cluster", "hosts every environment", "remove segmented_registry_environment")


def test_integrated_registry_on_a_consumer():
    problem = only_problem(inventory_hosts=hosts(
        test_cluster={"segmented_registry_integrated_registry": "image-registry.example.com"}))
    assert_problem(problem, "test-cluster", "segmented_registry_integrated_registry", "only meaningful on the registry "
                   "cluster", "remove it")


@pytest.mark.parametrize("value, words", [
    ("https://default-route.example.com", ["drop the scheme"]),
    ("default-route.example.com:70000", ["1 to 65535"]),
])
def test_bad_integrated_registry(value, words):
    problem = only_problem(inventory_hosts=hosts(registry_cluster={"segmented_registry_integrated_registry": value}))
    assert_problem(problem, "registry-cluster", "segmented_registry_integrated_registry", "is not host[:port]", *words)


def test_integrated_registry_may_not_be_an_environment_endpoint():
    problem = only_problem(inventory_hosts=hosts(
        registry_cluster={"segmented_registry_integrated_registry": "uat-registry.example.com:8443"}))
    assert_problem(problem, "registry-cluster", "segmented_registry_integrated_registry",
                   "also the endpoint of an environment", "needs a host of its own")


@pytest.mark.parametrize("auth, field, words", [
    ({"kubeconfig": "/k", "contxt": "test"}, "segmented_registry_k8s_auth.contxt",
     ["unknown key \"contxt\"", "did you mean 'context'?"]),
    ({"token": TOKEN, "host": "https://api.example.com"}, "segmented_registry_k8s_auth.token",
     ["unknown key \"token\"", "known keys: api_key"]),
    ({"host": "api.example.com:6443", "api_key": TOKEN}, "segmented_registry_k8s_auth.host",
     ["\"api.example.com:6443\" is not the API server URL", "with its scheme"]),
    ({"host": "https://api.example.com", "api_key": 12345}, "segmented_registry_k8s_auth.api_key",
     ["must be a non-empty string, not a number"]),
    ({"kubeconfig": 3}, "segmented_registry_k8s_auth.kubeconfig", ["path of a kubeconfig file or an inline"]),
    ({"kubeconfig": "/k", "validate_certs": "sometimes"}, "segmented_registry_k8s_auth.validate_certs",
     ["\"sometimes\" is not a boolean"]),
    ({"kubeconfig": "/k", "validate_certs": True, "verify_ssl": False}, "segmented_registry_k8s_auth.verify_ssl",
     ["alias both set with different values", "keep only validate_certs"]),
    ({"kubeconfig": "/k", "proxy_headers": {"cookie": "x"}}, "segmented_registry_k8s_auth.proxy_headers.cookie",
     ["unknown key \"cookie\""]),
    ({"kubeconfig": "/k", "proxy_headers": "x"}, "segmented_registry_k8s_auth.proxy_headers", ["must be a mapping"]),
    ({"kubeconfig": "/k", "impersonate_groups": [1]}, "segmented_registry_k8s_auth.impersonate_groups",
     ["must be a list of group names"]),
    ({"kubeconfig": "/k", "context": ""}, "segmented_registry_k8s_auth.context", ["must be a non-empty string"]),
])
def test_bad_k8s_auth(auth, field, words):
    problem = only_problem(inventory_hosts=hosts(test_cluster={"segmented_registry_k8s_auth": auth}))
    assert_problem(problem, "test-cluster", field, *words)
    assert TOKEN not in str(problem)


def test_k8s_auth_not_a_mapping():
    problem = only_problem(inventory_hosts=hosts(test_cluster={"segmented_registry_k8s_auth": "/home/ops/kubeconfig"}))
    assert_problem(problem, "test-cluster", "segmented_registry_k8s_auth", "must be a mapping of kubernetes.core "
                   "authentication options")
    assert "/home/ops/kubeconfig" not in str(problem)  # could have been a token


def test_k8s_auth_on_default_cluster_is_checked_but_not_managed():
    problem = only_problem(inventory_hosts=hosts(legacy_cluster={"segmented_registry_k8s_auth": {"kubconfig": "/k"}}))
    assert_problem(problem, "legacy-cluster", "segmented_registry_k8s_auth.kubconfig", "did you mean 'kubeconfig'?")
    # a default cluster relying on K8S_AUTH_* does not count against the managed ones
    inventory = hosts(legacy_cluster={})
    assert build_topology(ENVIRONMENTS, inventory).default_clusters[0] == "legacy-cluster"


def test_two_managed_clusters_on_k8s_auth_environment():
    inventory = hosts(test_cluster={"segmented_registry_k8s_auth": None})
    inventory["test-cluster"].pop("segmented_registry_k8s_auth")
    problem = only_problem(inventory_hosts=inventory)
    assert_problem(problem, "inventory", "segmented_registry_k8s_auth", "test-cluster, uat-cluster",
                   "K8S_AUTH_* environment variables", "silently reach the same cluster",
                   "give each managed cluster its own segmented_registry_k8s_auth")


def test_k8s_auth_without_a_target_counts_as_environment():
    inventory = hosts(test_cluster={"segmented_registry_k8s_auth": {"validate_certs": False}})
    problem = only_problem(inventory_hosts=inventory)
    assert "test-cluster, uat-cluster" in str(problem)


@pytest.mark.parametrize("auth", [
    {"kubeconfig": "/home/ops/.kube/config", "context": "registry"},
    {"host": "https://API.prod.example.com:6443", "api_key": "another-token"},
])
def test_two_hosts_reaching_the_same_cluster(auth):
    inventory = hosts(test_cluster={"segmented_registry_k8s_auth": auth})
    problem = only_problem(inventory_hosts=inventory)
    assert problem.host == "test-cluster" or problem.host == "prod-cluster"
    assert "reaches the same cluster as" in str(problem)
    assert "each inventory host must be a different cluster" in str(problem)
    assert "another-token" not in str(problem)


# --- everything at once, no secrets ---------------------------------------------------------


def test_all_problems_are_reported_at_once():
    environments = env(**{"0__name": "Test", "1__storage": {"size": "lots"}, "2__policy": {"after": "qa"}})
    inventory = hosts(
        registry_cluster={"segmented_registry_environment": "prod"},
        test_cluster={"segmented_registry_environment": ["test", "uat"]},
        prod_cluster={"segmented_registry_k8s_auth": {"host": "https://api.prod.example.com", "api_key": TOKEN,
                                                      "tokn": TOKEN}},
        legacy_cluster={"segmented_registry_role": "master"},
    )
    problems = problems_of(environments, inventory)
    seen = {(p.host, p.field) for p in problems}
    assert seen == {
        ("segmented_registry_environments[0] (Test)", "name"),
        ("segmented_registry_environments[1] (uat)", "storage.size"),
        ("segmented_registry_environments[2] (prod)", "policy.after"),
        ("registry-cluster", "segmented_registry_environment"),
        ("test-cluster", "segmented_registry_environment"),
        ("prod-cluster", "segmented_registry_k8s_auth.tokn"),
        ("legacy-cluster", "segmented_registry_role"),
    }
    error = TopologyError(problems)
    assert error.text.startswith("The inventory has 7 problems:\n- ")
    assert len(error.text.splitlines()) == 8
    assert str(error) == error.text
    assert TOKEN not in error.text
    assert all(TOKEN not in json.dumps(p.to_dict()) for p in problems)


def test_problem_text():
    problem = Problem("host-a", "segmented_registry_role", "is bad")
    assert str(problem) == "host-a: segmented_registry_role: is bad"
    assert problem.to_dict() == {"host": "host-a", "field": "segmented_registry_role", "message": "is bad",
                                 "text": "host-a: segmented_registry_role: is bad"}
    assert TopologyError([problem]).text == "The inventory has 1 problem:\n- host-a: segmented_registry_role: is bad"


def test_to_dict_holds_no_secret():
    inventory = hosts(
        test_cluster={"segmented_registry_k8s_auth": {"host": "https://api.test.example.com", "username": "ops",
                                                      "password": PASSWORD,
                                                      "proxy_headers": {"proxy_basic_auth": "u:" + PASSWORD}}},
        uat_cluster={"segmented_registry_k8s_auth": {"kubeconfig": {"users": [{"user": {"token": TOKEN}}]},
                                                     "context": "uat"}},
    )
    topology = build_topology(ENVIRONMENTS, inventory)
    text = json.dumps(topology.to_dict()) + repr(topology) + "\n".join(topology.summary())
    for secret in (TOKEN, PASSWORD):
        assert secret not in text
    report = topology.to_dict()
    assert report["registry_cluster"]["auth"] == "kubeconfig /home/ops/.kube/config context registry"
    assert [c["auth"] for c in report["consumer_clusters"]] == [
        "host https://api.test.example.com as ops", "kubeconfig (inline) context uat",
        "host https://api.prod.example.com:6443"]
    assert report["environments"]["prod"]["consumers"] == ["prod-cluster"]
    assert report["default_clusters"] == ["legacy-cluster", "old-cluster"]
    assert report["promotion_order"] == ["test", "uat", "prod"]
    json.dumps(report)  # plain data


# --- helpers used by the module and the action plugin --------------------------------------


def test_clusters_round_trip():
    clusters = hosts_to_clusters(HOSTS)
    assert clusters[0] == {"name": "registry-cluster", "role": "registry",
                           "integrated_registry": HOSTS["registry-cluster"]["segmented_registry_integrated_registry"],
                           "k8s_auth": HOSTS["registry-cluster"]["segmented_registry_k8s_auth"]}
    assert clusters_to_hosts(clusters) == HOSTS


def test_clusters_to_hosts_problems():
    with pytest.raises(TopologyError) as info:
        clusters_to_hosts([{"name": "a"}, {"name": "a"}, {"role": "registry"}])
    assert [str(p) for p in info.value.problems] == [
        "a: name: is listed twice in clusters; list each inventory host once",
        "clusters[2]: name: each cluster needs the name of its inventory host, not null",
    ]


def test_unreachable_problems():
    topology = build_topology(ENVIRONMENTS, HOSTS)
    problems = unreachable_problems(topology, {
        "registry-cluster": {"reachable": True},
        "prod-cluster": {"reachable": False, "server": "https://api.prod.example.com:6443", "error": "timed out"},
    })
    assert [str(p) for p in problems] == [
        "prod-cluster: segmented_registry_k8s_auth: cannot reach the cluster at https://api.prod.example.com:6443 "
        "(credentials from host https://api.prod.example.com:6443): timed out; check that the API server is up and "
        "that segmented_registry_k8s_auth points at it"]


def test_misspelt_variables():
    assert misspelt_variables(["segmented_registry_enviroment", "segmented_registry_environments",
                               "segmented_registry_lab_ca", "segmented_registry_k8sauth",
                               "segmented_registry_lab_kubeconfig", "segmented_registry_check_reachable"]) == {
        "segmented_registry_enviroment": "segmented_registry_environment",
        "segmented_registry_k8sauth": "segmented_registry_k8s_auth",
    }


def test_build_topology_is_pure():
    environments, inventory = copy.deepcopy(ENVIRONMENTS), copy.deepcopy(HOSTS)
    build_topology(environments, inventory)
    assert environments == ENVIRONMENTS and inventory == HOSTS
    for module in (validate, checks, schema, shape):
        with open(module.__file__) as handle:
            source = handle.read()
        # pure: no ansible-core imports but module_utils (the argument spec validator; the
        # collection's own pure helpers are fine)
        assert not re.search(r"^\s*(from|import) ansible(\.(?!module_utils\.)|\s)", source, re.MULTILINE)


# --- the example inventory ----------------------------------------------------------------


def test_example_inventory_is_valid():
    base = os.path.join(REPO, "inventories", "example")
    with open(os.path.join(base, "hosts.yml")) as handle:
        inventory = yaml.safe_load(handle)
    with open(os.path.join(base, "group_vars", "all.yml")) as handle:
        group_vars = yaml.safe_load(handle)
    found = {}

    def walk(group):
        for host, variables in ((group or {}).get("hosts") or {}).items():
            found[host] = {name: value for name, value in (variables or {}).items() if name.startswith("segmented_registry_")}
        for child in ((group or {}).get("children") or {}).values():
            walk(child)

    walk(inventory["all"])
    prod_auth = found["prod-cluster"]["segmented_registry_k8s_auth"]
    assert prod_auth["api_key"] == "{{ vault_prod_cluster_token }}"
    topology = build_topology(group_vars["segmented_registry_environments"], found)
    assert topology.registry.name == "registry-cluster"
    assert [(c.name, c.environment) for c in topology.consumers] == [
        ("test-cluster", "test"), ("uat-cluster", "uat"), ("prod-cluster", "prod")]
    assert topology.default_clusters == ("legacy-cluster",)
    assert topology.environments["prod"].after == "uat"
    assert topology.environments["prod"].scan_gate.annotation == "security.example.com/scan-result"
    prod = topology.to_dict()["environments"]["prod"]
    assert prod["replicas"] == 2 and prod["storage"]["s3"]["bucket"] == "acme-prod-registry"
    assert prod["tls"] == {"termination": "passthrough", "serving_cert_secret": "prod-registry-tls"}
    assert topology.environments["uat"].tls.termination == "reencrypt"
    assert topology.environments["staging"].state == "absent"
    assert topology.promotion_order == ["test", "uat", "prod"]


def test_environments_validate_alone_without_any_cluster():
    """What a promotion needs: the environments, checked without inventing a registry cluster."""
    environments = build_environments(copy.deepcopy(ENVIRONMENTS))
    assert list(environments) == [item["name"] for item in ENVIRONMENTS]
    with pytest.raises(TopologyError) as info:
        build_environments([{"name": "Bad", "route_host": "bad.example.com"}, {"route_host": "x.example.com"}])
    assert [(problem.host, problem.field) for problem in info.value.problems] == [
        ("segmented_registry_environments[0] (Bad)", "name"), ("segmented_registry_environments[1]", "name")]
    assert "segmented_registry_role" not in info.value.text
