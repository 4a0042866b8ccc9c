"""The cluster_image_config module's arguments and result, with its work layer faked: the
``NodeImageConfig`` edit it builds and the ``ClusterObjects`` it applies it to (the consumer module
helper ``run`` between them is real)."""
import pytest

from ansible_collections.segmented.registry.plugins.module_utils.consumer.node_config import NodeImageConfig
from ansible_collections.segmented.registry.plugins.modules import cluster_image_config
from tests.unit.plugins.modules.harness import Fail, caller, documented, fake_consumer_layer

NOWHERE = {"host": "https://127.0.0.1:9", "api_key": "sha256~unused-token"}
ALLOW = ["prod-registry.apps.registry.example.com"]
DENY = ["test-registry.apps.registry.example.com"]
CA = {"registry": "prod-registry.apps.registry.example.com", "ca": "-----BEGIN CERTIFICATE-----\nx\n"}

#: What NodeImageConfig.apply returns (diff included; the module keeps it in diff mode only).
APPLIED = {
    "changed": True,
    "registry_sources": {"allowedRegistries": ["registry.redhat.io"] + ALLOW},
    "trusted_ca_configmap": "segmented-registry-trusted-ca",
    "trusted_ca_keys": ["prod-registry.apps.registry.example.com"],
    "match_images": None,
    "import_registries": [],
    "changed_objects": ["Image cluster"],
    "diff": {"before": {"image": {"spec": {}}}, "after": {"image": {"spec": {"registrySources": {}}}}},
}


@pytest.fixture
def calls(monkeypatch):
    """Every call into the faked layer: the edit's arguments, the connection, the apply."""
    seen = []
    fake_consumer_layer(monkeypatch, seen, cluster_image_config, "NodeImageConfig", APPLIED,
                        PLATFORM_REGISTRIES=NodeImageConfig.PLATFORM_REGISTRIES)
    return seen


run = caller(cluster_image_config, NOWHERE)


@pytest.mark.parametrize("args,words", [
    ({"state": "gone"}, ["state", "present, absent"]),
    ({"allow": {"a": 1}}, ["allow", "list"]),
    ({"trusted_ca": [{"registry": "r.example.com"}]}, ["ca", "trusted_ca"]),
    ({"trusted_ca": [{"ca": "pem"}]}, ["registry", "trusted_ca"]),
    ({"allow": ALLOW, "nonsense": True}, ["nonsense"]),
], ids=["state-choice", "allow-type", "trusted_ca-ca-required", "trusted_ca-registry-required",
        "unknown-option"])
def test_bad_arguments_fail_naming_the_option_and_reach_nothing(run_module, calls, args, words):
    result = run(run_module, Fail, **args)
    for word in words:
        assert word in result["msg"], result["msg"]
    assert calls == []


def test_the_defaults_reach_the_edit(run_module, calls):
    run(run_module, allow=ALLOW)
    assert calls[0] == ("build", (ALLOW, [], list(NodeImageConfig.PLATFORM_REGISTRIES), [],
                                  "segmented-registry-trusted-ca", None, []))
    assert calls[2] == ("apply", "the cluster", True)


def test_every_option_reaches_the_edit_in_its_place(run_module, calls):
    run(run_module, allow=ALLOW, deny=DENY, platform_registries=["quay.io"], trusted_ca=[CA],
        trusted_ca_configmap="my-cas", credential_provider_registries=["quay.io/team"], state="absent",
        import_registries=["registry.apps.example.com"])
    assert calls[0] == ("build", (ALLOW, DENY, ["quay.io"], [CA], "my-cas", ["quay.io/team"], ["registry.apps.example.com"]))
    assert calls[2] == ("apply", "the cluster", False)


def test_the_result_has_exactly_the_documented_keys(run_module, calls):
    result = run(run_module, allow=ALLOW, deny=DENY)
    assert set(result) == set(documented(cluster_image_config)) | {"changed"}
    assert result["changed"] is True
    assert result["changed_objects"] == ["Image cluster"]


def test_check_mode_connects_for_a_server_side_dry_run(run_module, calls):
    result = run(run_module, allow=ALLOW, _ansible_check_mode=True)
    assert calls[1] == ("connect", True, True)
    assert "diff" not in result


def test_a_normal_run_is_no_dry_run(run_module, calls):
    run(run_module, allow=ALLOW)
    assert calls[1] == ("connect", False, False)


def test_diff_mode_returns_the_edit_s_diff(run_module, calls):
    result = run(run_module, allow=ALLOW, _ansible_diff=True)
    assert result["diff"] == APPLIED["diff"]
    assert set(result) == set(documented(cluster_image_config)) | {"changed", "diff"}
