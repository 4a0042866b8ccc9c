"""The pull_secret module's arguments and result, with its work layer faked: the ``RolledOutEdit``
around the ``PullSecretEdit`` it builds, and the ``ClusterObjects`` it applies them to (the
consumer module helper ``run`` between them is real)."""
import pytest

from ansible_collections.segmented.registry.plugins.modules import pull_secret
from tests.unit.plugins.modules.harness import Fail, caller, documented, fake_consumer_layer

NOWHERE = {"host": "https://127.0.0.1:9", "api_key": "sha256~unused-token"}
FROM = "openshift-config/segmented-registry-pull"
AUTHS = {"prod-registry.apps.registry.example.com": {"auth": "dTpw"}}

#: What RolledOutEdit.apply returns after a change the nodes rolled out (diff included; the module
#: keeps it in diff mode only).
APPLIED = {
    "changed": True,
    "registries": ["prod-registry.apps.registry.example.com"],
    "changed_registries": ["prod-registry.apps.registry.example.com"],
    "node_rollout": ["worker: Updated=True, Updating=False, 3/3 machines updated"],
    "diff": {"before": {"registries": ["quay.io"]},
             "after": {"registries": ["prod-registry.apps.registry.example.com", "quay.io"]}},
}


@pytest.fixture
def calls(monkeypatch):
    """Every call into the faked layer: the edits' arguments, the connection, the apply."""
    seen = []

    class FakeSecretEdit:
        def __init__(self, *args):
            seen.append(("secret", args))

    class FakeRolledOut:
        def __init__(self, edit, wait, timeout):
            assert isinstance(edit, FakeSecretEdit)
            seen.append(("rollout", wait, timeout))

        def apply(self, api, present=True):
            seen.append(("apply", api, present))
            return dict(APPLIED)

    monkeypatch.setattr(pull_secret, "PullSecretEdit", FakeSecretEdit)
    monkeypatch.setattr(pull_secret, "RolledOutEdit", FakeRolledOut)
    fake_consumer_layer(monkeypatch, seen)
    return seen


run = caller(pull_secret, NOWHERE)


@pytest.mark.parametrize("args,words", [
    ({"from_secret": FROM, "auths": AUTHS}, ["mutually exclusive", "from_secret", "auths"]),
    ({"from_secret": FROM, "state": "gone"}, ["state", "present, absent"]),
    ({"from_secret": FROM, "wait_timeout": "soon"}, ["wait_timeout", "int"]),
    ({"from_secret": FROM, "wait": "perhaps"}, ["wait", "bool"]),
    ({"auths": "not-a-mapping"}, ["auths", "dict"]),
], ids=["from_secret-and-auths", "state-choice", "wait_timeout-type", "wait-type", "auths-type"])
def test_bad_arguments_fail_naming_the_option_and_reach_nothing(run_module, calls, args, words):
    result = run(run_module, Fail, **args)
    for word in words:
        assert word in result["msg"], result["msg"]
    assert calls == []


def test_bad_auths_never_echo_a_credential(run_module, calls):
    result = run(run_module, Fail, auths="sec=ret,nope")
    assert "sec=ret" not in result["msg"]
    assert calls == []


def test_the_defaults_reach_the_edits(run_module, calls):
    run(run_module, from_secret=FROM)
    assert calls[:2] == [("secret", ("openshift-config", "pull-secret", FROM, None)), ("rollout", True, 900)]
    assert calls[3] == ("apply", "the cluster", True)


def test_every_option_reaches_the_edits_in_its_place(run_module, calls):
    run(run_module, namespace="ns", name="merged", auths=AUTHS, wait=False, wait_timeout=60, state="absent")
    assert calls[:2] == [("secret", ("ns", "merged", None, AUTHS)), ("rollout", False, 60)]
    assert calls[3] == ("apply", "the cluster", False)


def test_the_result_has_exactly_the_documented_keys(run_module, calls):
    result = run(run_module, from_secret=FROM)
    assert set(result) == set(documented(pull_secret)) | {"changed"}
    assert result["changed"] is True


def test_check_mode_is_a_dry_run_that_waits_for_no_node(run_module, calls):
    result = run(run_module, from_secret=FROM, _ansible_check_mode=True)
    assert ("rollout", False, 900) in calls
    assert ("connect", True, True) in calls
    assert "diff" not in result


def test_a_normal_run_is_no_dry_run(run_module, calls):
    run(run_module, from_secret=FROM)
    assert ("connect", False, False) in calls


def test_diff_mode_returns_the_edit_s_diff(run_module, calls):
    result = run(run_module, from_secret=FROM, _ansible_diff=True)
    assert result["diff"] == APPLIED["diff"]
