"""The validate_inventory module, run in-process with its arguments patched in."""


import json
import os
import subprocess
import sys

import pytest

from ansible_collections.segmented.registry.plugins.modules import validate_inventory
from tests.unit.plugins.modules.harness import Exit, Fail, documented

TOKEN = "sha256~module-test-token"

ENVIRONMENTS = [
    {"name": "test", "route_host": "test-registry.apps.registry.example.com"},
    {"name": "prod", "route_host": "prod-registry.apps.registry.example.com", "policy": {"after": "test"}},
]
CLUSTERS = [
    {"name": "registry-cluster", "role": "registry", "k8s_auth": {"kubeconfig": "/k", "context": "registry"}},
    {"name": "test-cluster", "environment": "test", "k8s_auth": {"kubeconfig": "/k", "context": "test"}},
    {"name": "prod-cluster", "environment": "prod",
     "k8s_auth": {"host": "https://api.prod.example.com:6443", "api_key": TOKEN}},
    {"name": "legacy-cluster"},
]


@pytest.fixture
def run(run_module):
    def runner(args, expect=Exit):
        return run_module(validate_inventory, args, expect)

    return runner


def test_valid_inventory_offline(run, monkeypatch):
    monkeypatch.setattr(validate_inventory, "probe_all", lambda *a, **k: pytest.fail("no network expected"))
    result = run({"environments": ENVIRONMENTS, "clusters": CLUSTERS, "check_reachable": False})
    assert result["changed"] is False
    assert result["clusters"] == {}
    assert result["topology"]["registry_cluster"]["name"] == "registry-cluster"
    assert result["topology"]["default_clusters"] == ["legacy-cluster"]
    assert result["ansible_facts"] == {"segmented_registry_topology": result["topology"]}
    assert any("prod: registry prod-registry" in line for line in result["summary"])
    assert TOKEN not in json.dumps(result)


def test_normalized_environments_through_the_argument_spec(run, monkeypatch):
    """The fact segmented_registry_topology.environments as the module returns it: every field, its
    default filled in, whatever the argument spec passed for what the inventory left out."""
    monkeypatch.setattr(validate_inventory, "probe_all", lambda *a, **k: pytest.fail("no network expected"))
    environments = ENVIRONMENTS + [
        {"name": "uat", "route_host": "uat-registry.apps.registry.example.com", "replicas": "2",
         "tls": {"termination": "reencrypt"},
         "storage": {"s3": {"bucket": "acme-uat-registry", "credentials_secret": "uat-registry-s3"}}},
        {"name": "old", "route_host": "old-registry.apps.registry.example.com", "state": "absent",
         "tls": {"termination": "passthrough", "serving_cert_secret": "old-registry-tls"}},
    ]
    result = run({"environments": environments, "clusters": CLUSTERS, "check_reachable": False})
    report = result["topology"]["environments"]
    assert report["test"] == {
        "name": "test", "namespace": "test", "state": "present",
        "route_host": "test-registry.apps.registry.example.com", "endpoint": "test-registry.apps.registry.example.com",
        "ca_cert": None, "validate_certs": True, "replicas": 1,
        "tls": {"termination": "edge", "serving_cert_secret": None},
        "storage": {"size": None, "storage_class": None, "claim_name": None, "s3": None},
        "policy": {"after": None, "scan_gate": None},
        "consumers": ["test-cluster"],
    }
    assert report["uat"]["replicas"] == 2
    assert report["uat"]["tls"] == {"termination": "reencrypt", "serving_cert_secret": None}
    assert report["uat"]["storage"]["s3"] == {"bucket": "acme-uat-registry", "region": "us-east-1", "endpoint": None,
                                              "credentials_secret": "uat-registry-s3", "force_path_style": False,
                                              "root_directory": None}
    assert report["old"]["state"] == "absent"
    assert result["topology"]["promotion_order"] == ["test", "prod", "uat"]


def test_reachability_is_checked_for_managed_clusters_only(run, monkeypatch):
    calls = {}

    def fake_probe_all(clusters, timeout):
        calls.update(clusters=clusters, timeout=timeout)
        return {name: {"reachable": True, "server": "https://x", "version": "v1", "user": "u"}
                for name in clusters}

    monkeypatch.setattr(validate_inventory, "probe_all", fake_probe_all)
    result = run({"environments": ENVIRONMENTS, "clusters": CLUSTERS, "timeout": 3, "_ansible_check_mode": True})
    assert sorted(calls["clusters"]) == ["prod-cluster", "registry-cluster", "test-cluster"]
    assert calls["clusters"]["prod-cluster"] == {"host": "https://api.prod.example.com:6443", "api_key": TOKEN}
    assert calls["clusters"]["registry-cluster"] == {"kubeconfig": "/k", "context": "registry"}
    assert calls["timeout"] == 3
    assert result["changed"] is False and set(result["clusters"]) == set(calls["clusters"])


def test_unreachable_clusters_fail_with_every_problem(run, monkeypatch):
    monkeypatch.setattr(validate_inventory, "probe_all", lambda clusters, timeout: {
        "registry-cluster": {"reachable": True},
        "test-cluster": {"reachable": False, "server": "https://api.test:6443", "error": "connection refused"},
        "prod-cluster": {"reachable": False, "server": "https://api.prod.example.com:6443", "error": "timed out"},
    })
    result = run({"environments": ENVIRONMENTS, "clusters": CLUSTERS}, expect=Fail)
    assert [p["host"] for p in result["problems"]] == ["test-cluster", "prod-cluster"]
    lines = result["msg"].splitlines()
    assert lines[0] == "The inventory has 2 problems:"
    assert "test-cluster: segmented_registry_k8s_auth: cannot reach the cluster at https://api.test:6443" in lines[1]
    assert "connection refused" in lines[1]
    assert "timed out" in lines[2]
    assert result["clusters"]["test-cluster"]["reachable"] is False


def test_leave_out_passes_and_names_the_unreachable_consumers(run, monkeypatch):
    monkeypatch.setattr(validate_inventory, "probe_all", lambda clusters, timeout: {
        "registry-cluster": {"reachable": True},
        "test-cluster": {"reachable": False, "server": "https://api.test:6443", "error": "connection refused"},
        "prod-cluster": {"reachable": True},
    })
    result = run({"environments": ENVIRONMENTS, "clusters": CLUSTERS, "unreachable_consumers": "leave_out"})
    assert list(result["left_out"]) == ["test-cluster"]
    assert result["left_out"]["test-cluster"].startswith("test-cluster: segmented_registry_k8s_auth: cannot reach the cluster at https://api.test:6443")
    assert "connection refused" in result["left_out"]["test-cluster"]
    assert result["topology"]["registry_cluster"]["name"] == "registry-cluster"


def test_an_unreachable_registry_cluster_fails_even_with_leave_out(run, monkeypatch):
    monkeypatch.setattr(validate_inventory, "probe_all", lambda clusters, timeout: {
        "registry-cluster": {"reachable": False, "server": "https://api.registry:6443", "error": "timed out"},
        "test-cluster": {"reachable": False, "server": "https://api.test:6443", "error": "connection refused"},
        "prod-cluster": {"reachable": True},
    })
    result = run({"environments": ENVIRONMENTS, "clusters": CLUSTERS, "unreachable_consumers": "leave_out"}, expect=Fail)
    assert [p["host"] for p in result["problems"]] == ["registry-cluster"]
    assert "registry-cluster: segmented_registry_k8s_auth: cannot reach the cluster at https://api.registry:6443" in result["msg"]


def test_every_cluster_answering_leaves_nothing_out(run, calls):
    assert run({"environments": ENVIRONMENTS, "clusters": CLUSTERS, "unreachable_consumers": "leave_out"})["left_out"] == {}
    assert run({"environments": ENVIRONMENTS, "clusters": CLUSTERS})["left_out"] == {}


def test_bad_inventory_fails_with_every_problem(run, monkeypatch):
    monkeypatch.setattr(validate_inventory, "probe_all", lambda *a, **k: pytest.fail("no network expected"))
    clusters = CLUSTERS + [{"name": "qa-cluster", "environment": "qa"},
                           {"name": "both", "environment": ["test", "prod"]}]
    result = run({"environments": ENVIRONMENTS + [{"name": "Staging", "route_host": "s.example.com"}],
                  "clusters": clusters}, expect=Fail)
    texts = [p["text"] for p in result["problems"]]
    assert len(texts) == 3, texts
    assert texts[0].startswith("segmented_registry_environments[2] (Staging): name:")
    assert texts[1].startswith("qa-cluster: segmented_registry_environment: \"qa\" is not a known environment")
    assert texts[2].startswith("both: segmented_registry_environment:")
    assert result["msg"].splitlines()[1:] == ["- " + text for text in texts]


def test_secrets_are_no_log_in_the_argument_spec():
    spec = validate_inventory.argument_spec()
    auth = spec["clusters"]["options"]["k8s_auth"]["options"]
    for name in ("api_key", "password", "kubeconfig"):
        assert auth[name].get("no_log") is True, name
    for name in ("proxy_basic_auth", "basic_auth"):
        assert auth["proxy_headers"]["options"][name].get("no_log") is True, name
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
    assert set(auth) == set(AUTH_ARG_SPEC)


def test_documentation_matches_the_argument_spec(collections_path, tmp_path):
    """A quick local version of ansible-test's validate-modules for the options tree (via ansible-doc)."""
    ansible_doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path)
    env.pop("ANSIBLE_CONFIG", None)
    output = subprocess.run([ansible_doc, "-j", "segmented.registry.validate_inventory"], env=env, check=True,
                            cwd=str(tmp_path),
                            capture_output=True, text=True).stdout
    doc = json.loads(output)["segmented.registry.validate_inventory"]["doc"]

    def compare(documented, spec, where):
        assert set(documented) == set(spec), where
        for name, item in spec.items():
            options = item.get("options")
            assert documented[name].get("type", "str") == item.get("type", "str"), where + name
            assert sorted(documented[name].get("aliases", [])) == sorted(item.get("aliases", [])), where + name
            assert documented[name].get("default") == item.get("default"), where + name
            assert bool(documented[name].get("required")) == bool(item.get("required")), where + name
            if options:
                compare(documented[name]["suboptions"], options, where + name + ".")

    compare(doc["options"], validate_inventory.argument_spec(), "")
    assert set(doc["attributes"]) == {"check_mode", "diff_mode", "idempotent", "facts", "action"}
    assert doc["attributes"]["check_mode"]["support"] == "full"


# -- argument handling and result shape ----------------------------------------------------------

OFFLINE = {"environments": ENVIRONMENTS, "clusters": CLUSTERS, "check_reachable": False}
ROLE_VARIABLES = {"role": "segmented.registry.registry_cluster", "clusters": "registry", "variables": ["v"]}


@pytest.fixture
def calls(monkeypatch):
    """Every call into the work layer: the inventory check (``build_topology``) and the probes."""
    seen = []
    build_topology = validate_inventory.build_topology

    def checked(environments, hosts, touch):
        seen.append(("build", touch))
        return build_topology(environments, hosts, touch=touch)

    def probe_all(clusters, timeout):
        seen.append(("probe", sorted(clusters), timeout))
        return {name: {"reachable": True, "server": "https://x", "version": "v1", "user": "u"} for name in clusters}

    monkeypatch.setattr(validate_inventory, "build_topology", checked)
    monkeypatch.setattr(validate_inventory, "probe_all", probe_all)
    return seen


@pytest.mark.parametrize("args,words", [
    (dict(OFFLINE, touch="some"), ["touch", "all, registry"]),
    (dict(OFFLINE, timeout="soon"), ["timeout", "int"]),
    (dict(OFFLINE, check_reachable="perhaps"), ["check_reachable", "bool"]),
    (dict(OFFLINE, unreachable_consumers="skip"), ["unreachable_consumers", "fail, leave_out"]),
    (dict(OFFLINE, clusters=[{"role": "registry"}]), ["name", "clusters"]),
    (dict(OFFLINE, clusters=[{"name": "c", "role": "boss"}]), ["role", "registry, consumer"]),
    (dict(OFFLINE, environments=[{"name": "test"}]), ["route_host", "environments"]),
    (dict(OFFLINE, environments=[dict(ENVIRONMENTS[0], state="gone")]), ["state", "present, absent"]),
    (dict(OFFLINE, role_variables=[{"clusters": "registry", "variables": ["v"]}]), ["role", "role_variables"]),
    (dict(OFFLINE, role_variables=[dict(ROLE_VARIABLES, clusters="all")]), ["clusters", "registry, consumers"]),
    (dict(OFFLINE, role_variables=[{"role": "r", "clusters": "registry"}]), ["variables", "role_variables"]),
], ids=["touch-choice", "timeout-type", "check_reachable-type", "unreachable_consumers-choice", "cluster-name-required", "cluster-role-choice",
        "environment-route_host-required", "environment-state-choice", "role_variables-role-required",
        "role_variables-clusters-choice", "role_variables-variables-required"])
def test_bad_arguments_fail_naming_the_option_and_reach_nothing(run, calls, args, words):
    result = run(args, expect=Fail)
    for word in words:
        assert word in result["msg"], result["msg"]
    assert calls == []


@pytest.mark.parametrize("pushers,namespace,words", [
    (["no-slash"], None, ["registry_cluster_pushers[0]", "no-slash", "namespace/name"]),
    (["token-server/pusher"], "token-server", ["registry_cluster_pushers[0]", "token-server", "signing key"]),
], ids=["not-namespaced", "in-the-token-server-namespace"])
def test_bad_pushers_fail_naming_the_variable_and_probe_nothing(run, calls, pushers, namespace, words):
    args = dict(OFFLINE, check_reachable=True, pushers=pushers)
    if namespace:
        args["token_server_namespace"] = namespace
    result = run(args, expect=Fail)
    for word in words:
        assert word in result["msg"], result["msg"]
    assert [call[0] for call in calls] == ["build"]


@pytest.mark.parametrize("route_host,words", [
    ("Not A Host Name", ["registry-cluster: registry_cluster_token_server_route_host:", '"Not A Host Name"', "lowercase DNS name"]),
    ("prod-registry.apps.registry.example.com",
     ["registry_cluster_token_server_route_host", "route_host of environment prod", "a route host of its own"]),
], ids=["not-a-dns-name", "an-environments-route-host"])
def test_a_bad_token_server_route_host_fails_naming_the_variable_and_probes_nothing(run, calls, route_host, words):
    result = run(dict(OFFLINE, check_reachable=True, token_server_route_host=route_host), expect=Fail)
    for word in words:
        assert word in result["msg"], result["msg"]
    assert [call[0] for call in calls] == ["build"]


def test_a_token_server_route_host_of_its_own_passes(run, calls):
    run(dict(OFFLINE, token_server_route_host="registry-token.apps.registry.example.com"))
    assert [call[0] for call in calls] == ["build"]


def test_the_defaults_reach_every_managed_cluster(run, calls):
    run({"environments": ENVIRONMENTS, "clusters": CLUSTERS})
    assert calls == [("build", "all"), ("probe", ["prod-cluster", "registry-cluster", "test-cluster"], 10)]


def test_touch_registry_reaches_the_registry_cluster_only(run, calls):
    run({"environments": ENVIRONMENTS, "clusters": CLUSTERS, "touch": "registry", "timeout": 2})
    assert calls == [("build", "registry"), ("probe", ["registry-cluster"], 2)]


def test_the_result_has_exactly_the_documented_keys(run, calls):
    result = run({"environments": ENVIRONMENTS, "clusters": CLUSTERS})
    assert set(result) == set(documented(validate_inventory)) - {"problems"} | {"changed", "ansible_facts"}
    assert result["changed"] is False
    assert result["ansible_facts"] == {"segmented_registry_topology": result["topology"]}


def test_the_topology_has_exactly_the_documented_keys(run, calls):
    import yaml

    contains = yaml.safe_load(validate_inventory.RETURN)["topology"]["contains"]
    result = run({"environments": ENVIRONMENTS, "clusters": CLUSTERS})
    assert set(result["topology"]) == set(contains)


def test_check_mode_checks_and_reports_the_same(run, calls):
    normal = run({"environments": ENVIRONMENTS, "clusters": CLUSTERS})
    checked = run({"environments": ENVIRONMENTS, "clusters": CLUSTERS, "_ansible_check_mode": True})
    assert checked == normal
    assert calls[2:] == calls[:2]
