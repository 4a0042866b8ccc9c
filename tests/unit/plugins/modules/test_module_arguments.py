"""Every module refuses bad input with a message that names the option, before it reaches a
cluster: the cluster here is an address where nothing listens, so a module that went there first
would fail with a connection error instead."""
import importlib

import pytest

from tests.unit.plugins.modules.harness import Fail

NOWHERE = {"host": "https://127.0.0.1:9", "api_key": "sha256~unused-token"}
ENVIRONMENTS = [{"name": "test", "route_host": "test-registry.apps.example.com"},
                {"name": "prod", "route_host": "prod-registry.apps.example.com"}]
JOB = dict(NOWHERE, environments=ENVIRONMENTS, service_account="segmented-registry-promotion/promoter")

CASES = [
    ("cluster_image_config", dict(NOWHERE, state="gone"), ["state", "present, absent"]),
    ("cluster_image_config", dict(NOWHERE, trusted_ca=[{"registry": "r.example.com"}]), ["ca", "trusted_ca"]),
    ("image_streams", dict(NOWHERE, registry="registry.example.com"), ["namespaces"]),
    ("image_streams", dict(NOWHERE, namespaces=["p"], registry="registry.example.com",
                           tags=[{"namespace": "p", "stream": "app", "tag": "v1", "digest": "v1"}]), ["tags[0].digest"]),
    ("image_streams", dict(NOWHERE, namespaces=["Not_A_Name"], registry="registry.example.com"), ["namespaces", "Not_A_Name"]),
    ("pull_secret", dict(NOWHERE, from_secret="a/b", auths={"r.example.com": {"auth": "eA=="}}),
     ["mutually exclusive", "from_secret", "auths"]),
    ("pull_secret", dict(NOWHERE, wait_timeout="soon"), ["wait_timeout", "int"]),
    ("tag_environments", dict(NOWHERE, namespace="p", name="app:v1", stream="app", tag="v1", add=["test"]),
     ["mutually exclusive", "name", "stream"]),
    ("tag_environments", dict(NOWHERE, namespace="p", name="app:v1", add=["Not_A_Name"]), ["Not_A_Name"]),
    ("tag_environments_info", dict(NOWHERE, namespace=["p"], environment="Not_A_Name"), ["Not_A_Name"]),
    ("registry_credential", {"registry_cluster": NOWHERE, "access": "pull", "namespace": "test"}, ["cluster_name"]),
    ("registry_credential", {"registry_cluster": NOWHERE, "cluster_name": "c", "access": "admin", "namespace": "test"},
     ["access", "pull, push"]),
    ("promote", dict(JOB, namespace="p", name="app:v1"), ["environment"]),
    ("promote", dict(JOB, namespace="p", name="app:v1", environment=["test"], state="maybe"), ["state", "present, absent"]),
    ("promote", dict(JOB, namespace="p", name="app:v1", environment=["test"], service_account=None),
     ["service_account", "registry_token"]),
    ("reconcile", dict(JOB, namespace=["p"], tag="v1"), ["tag needs stream"]),
    ("reconcile", dict(JOB, environment=["staging"]), ["environment", "staging"]),
    ("validate_inventory", {"environments": ENVIRONMENTS, "clusters": [{"name": "c", "environment": "staging"}],
                            "check_reachable": False}, ["staging"]),
]


@pytest.mark.parametrize("name,args,words", CASES, ids=[f"{name}-{i}" for i, (name, _a, _w) in enumerate(CASES)])
def test_bad_input_is_refused_naming_the_option_before_any_cluster(run_module, name, args, words):
    module = importlib.import_module(f"ansible_collections.segmented.registry.plugins.modules.{name}")
    result = run_module(module, {key: value for key, value in args.items() if value is not None}, expect=Fail)
    message = result["msg"]
    for word in words:
        assert word in message, f"{name}: {word!r} not in {message!r}"
    for sign in ("127.0.0.1:9", "onnection refused", "Max retries"):
        assert sign not in message, f"{name} reached the cluster before checking its input: {message!r}"
    assert not result.get("changed"), result
