"""registry_credential's batch mode (option credentials): its arguments, every element checked
before any cluster, the elements run at once in threads, the result in input order, a failing
element named while the others land, and check and diff mode per element. The work layer is faked
as in test_registry_credential.py: the probe of each cluster, its client and the Credential."""
import threading
import time

import pytest

from ansible.module_utils import basic

from ansible_collections.segmented.registry.plugins.module_utils.credentials import runs
from ansible_collections.segmented.registry.plugins.module_utils.errors import CredentialsError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.reachability import ClusterUnreachable
from ansible_collections.segmented.registry.plugins.modules import registry_credential
from tests.unit.plugins.modules.harness import Fail, caller, documented, refused

if not registry_credential.HAS_KUBERNETES:
    pytest.skip("the kubernetes client is not installed", allow_module_level=True)

REGISTRY = {"host": "https://api.registry.example.com:6443", "api_key": "sha256~registry-token"}


def element(name, **options):
    """A batch element: the pull credential of cluster ``name``, with its own auth."""
    return dict({"cluster": {"host": f"https://api.{name}.example.com:6443", "api_key": f"sha256~{name}-token"},
                 "cluster_name": name, "access": "pull", "namespace": "segmented-registry-consumers",
                 "grant_namespace": name, "registry": f"{name}-registry.apps.registry.example.com"}, **options)


def result_of(spec, changed=True):
    return {"identity": spec.identity_path, "generation": f"{spec.identity}-gen1", "new_generation": changed,
            "reason": "no generation yet" if changed else None, "expires": 2_000_000, "secrets": [], "revoked": [],
            "retired": [], "changed": changed, "changes": [f"{spec.cluster}: create generation Secret"] if changed else []}


class Fake:
    """The faked work layer: what each call saw (``seen``) and, per cluster name, what its
    credential's run does (``behaviour[cluster](credential)``, default a first run)."""

    def __init__(self):
        self.seen = []
        self.behaviour = {}
        self.lock = threading.Lock()

    def record(self, *call):
        with self.lock:
            self.seen.append(call)

    def of(self, kind):
        return [call for call in self.seen if call[0] == kind]


@pytest.fixture
def fake(monkeypatch):
    state = Fake()

    class FakeCredential:
        def __init__(self, spec, registry, consumer, check_mode=False, mask=None):
            state.record("credential", spec, registry, consumer, check_mode)
            self.spec, self.changes, self.warnings = spec, [], []

        def run(self):
            state.record("run", self.spec.cluster)
            behaviour = state.behaviour.get(self.spec.cluster)
            result = behaviour(self) if behaviour else result_of(self.spec)
            self.changes.extend(result["changes"])
            return result

        def diff(self):
            return {"before": {"generation": None}, "after": {"generation": f"{self.spec.identity}-gen1"}}

    def probe(auth):
        state.record("probe", auth["host"])
        if auth["host"].startswith("https://down"):
            raise ClusterUnreachable(f"GET {auth['host']}/version failed: connection refused")

    monkeypatch.setattr(runs, "probe", probe)
    monkeypatch.setattr(runs.Cluster, "of_auth", classmethod(lambda cls, auth, where: f"cluster {auth['host']} ({where})"))
    monkeypatch.setattr(runs, "Credential", FakeCredential)
    return state


run = caller(registry_credential, {"registry_cluster": REGISTRY})


@pytest.mark.parametrize("args,words", [
    ({"credentials": [element("prod")], "cluster_name": "prod"}, ["mutually exclusive", "credentials", "cluster_name"]),
    ({"credentials": [element("prod")], "token_type": "bound"}, ["mutually exclusive", "credentials", "token_type"]),
    ({}, ["one of the following is required", "cluster_name", "credentials"]),
    ({"credentials": [{k: v for k, v in element("prod").items() if k != "access"}]}, ["missing required arguments", "access", "credentials"]),
    ({"credentials": [{k: v for k, v in element("prod").items() if k != "registry"}]}, ["state is present", "registry", "credentials"]),
    ({"credentials": [element("prod", access="admin")]}, ["access", "pull, push", "credentials"]),
    ({"credentials": [element("prod")], "parallel": 0}, ["parallel: 0 is less than 1", "Nothing was changed"]),
    ({"credentials": []}, ["credentials: the list is empty", "Nothing was changed"]),
], ids=["naming-option-beside", "setting-beside", "neither", "element-access-required", "element-present-needs-registry",
        "element-access-choice", "parallel-0", "empty"])
def test_bad_batch_arguments_are_refused_naming_the_option_and_reach_nothing(run_module, fake, args, words):
    refused(run(run_module, Fail, **args), words, fake.seen)


def test_a_bad_element_is_refused_with_its_index_and_cluster_and_nothing_is_called(run_module, fake):
    credentials = [element("prod"), element("Prod_East"), element("uat", duration=60)]
    result = run(run_module, Fail, credentials=credentials)
    assert result["msg"].startswith('credentials[1] (cluster Prod_East): cluster_name: "Prod_East"')
    assert "credentials[2] (cluster uat): duration: 60 seconds" in result["msg"]
    assert "credentials[0]" not in result["msg"]
    assert result["msg"].endswith(". Nothing was changed")
    refused(result, [], fake.seen)


def test_each_element_gets_the_single_mode_defaults_and_its_own_cluster(run_module, fake):
    run(run_module, credentials=[element("prod"), element("test", access="push", namespace="myproject", grant_namespace=None),
                                 element("gone", cluster=None, state="absent", registry=None)])
    specs = {call[1].cluster: call for call in fake.of("credential")}
    prod = specs["prod"][1]
    assert (prod.secret_name, prod.token_type, prod.duration, prod.renew_before, prod.rotate, prod.grace, prod.revoke_retired) == (
        "segmented-registry-pull", "bound", 604800, 172800, False, 0, False)
    assert specs["test"][1].secret_name == "segmented-registry-push"
    assert specs["prod"][3] == "cluster https://api.prod.example.com:6443 (cluster prod)"
    assert specs["prod"][2] == f"cluster {REGISTRY['host']} (the registry cluster)"
    assert specs["gone"][3] is None  # no consumer cluster: the registry side only
    # the registry cluster probed once for the batch, each consumer once
    assert sorted(call[1] for call in fake.of("probe")) == sorted(
        [REGISTRY["host"], "https://api.prod.example.com:6443", "https://api.test.example.com:6443"])


def test_the_elements_run_at_once(run_module, fake):
    """Three credentials each wait in their run until all three are running: one thread at a time
    would never get past the barrier (it breaks after 5 s, and the module would not exit)."""
    barrier = threading.Barrier(3, timeout=5)

    def wait_for_the_others(credential):
        barrier.wait()
        return result_of(credential.spec)

    fake.behaviour = dict.fromkeys(["prod", "uat", "test"], wait_for_the_others)
    result = run(run_module, credentials=[element("prod"), element("uat"), element("test")])
    assert [item["failed"] for item in result["credentials"]] == [False, False, False]


def test_parallel_bounds_how_many_run_at_once(run_module, fake):
    running, most = [0], [0]
    lock = threading.Lock()
    both = threading.Barrier(2, timeout=5)

    def counted(credential):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        both.wait()  # two are running at once here ...
        time.sleep(0.3)  # ... long enough for a third to start, were it allowed to
        with lock:
            running[0] -= 1
        return result_of(credential.spec)

    fake.behaviour = dict.fromkeys(["a1", "a2", "a3", "a4"], counted)
    run(run_module, credentials=[element(name) for name in ("a1", "a2", "a3", "a4")], parallel=2)
    assert most[0] == 2  # ... and never more than two


def test_the_results_come_in_input_order_whatever_order_they_finish_in(run_module, fake):
    """uat waits for prod to finish, prod for dev: they finish dev, prod, uat; input order is uat,
    prod, dev (neither finishing nor alphabetical order)."""
    done = {name: threading.Event() for name in ("uat", "prod", "dev")}

    def after(other):
        def behaviour(credential):
            if other is not None:
                assert done[other].wait(5)
            done[credential.spec.cluster].set()
            return result_of(credential.spec)
        return behaviour

    fake.behaviour = {"uat": after("prod"), "prod": after("dev"), "dev": after(None)}
    result = run(run_module, credentials=[element("uat"), element("prod"), element("dev")])
    assert [item["cluster_name"] for item in result["credentials"]] == ["uat", "prod", "dev"]
    assert [item["identity"] for item in result["credentials"]] == [
        "segmented-registry-consumers/segmented-pull-uat", "segmented-registry-consumers/segmented-pull-prod",
        "segmented-registry-consumers/segmented-pull-dev"]
    assert set(result) == {"changed", "credentials"}
    keys = set(documented(registry_credential)) - {"credentials"} | {"cluster_name", "access", "namespace", "state", "failed", "changed"}
    assert all(set(item) == keys for item in result["credentials"])


def test_one_failure_is_named_and_the_others_land(run_module, fake):
    def half_way(credential):
        credential.changes.append("uat/segmented-registry-pull: created")
        raise CredentialsError("cannot patch shop/default: forbidden; grant patch serviceaccounts")

    fake.behaviour = {"uat": half_way}
    result = run(run_module, Fail, credentials=[element("prod"), element("uat"), element("dev")])
    assert result["msg"] == ("1 of 3 credentials failed (the others ran): credentials[1] (cluster uat): "
                             "cannot patch shop/default: forbidden; grant patch serviceaccounts")
    prod, uat, dev = result["credentials"]
    assert (prod["failed"], prod["generation"], dev["failed"], dev["generation"]) == (
        False, "segmented-pull-prod-gen1", False, "segmented-pull-dev-gen1")
    assert uat == {"cluster_name": "uat", "access": "pull", "namespace": "segmented-registry-consumers", "state": "present",
                   "failed": True, "changed": True, "changes": ["uat/segmented-registry-pull: created"],
                   "msg": "credentials[1] (cluster uat): cannot patch shop/default: forbidden; grant patch serviceaccounts"}
    assert result["changed"] is True
    assert sorted(call[1] for call in fake.of("run")) == ["dev", "prod", "uat"]


def test_every_failure_is_named_an_unreachable_consumer_included(run_module, fake):
    def refused_rights(_credential):
        raise CredentialsError("the registry cluster: missing create serviceaccounts/token")

    fake.behaviour = {"prod": refused_rights}
    down = element("uat", cluster={"host": "https://down.uat.example.com:6443"})
    result = run(run_module, Fail, credentials=[element("prod"), down, element("dev")])
    assert result["msg"].startswith("2 of 3 credentials failed (the others ran): credentials[0] (cluster prod): the registry cluster: missing")
    assert "; credentials[1] (cluster uat): credentials[1].cluster: cannot use the cluster: GET https://down.uat.example.com:6443/version" in result["msg"]
    assert [item["failed"] for item in result["credentials"]] == [True, True, False]
    assert result["credentials"][1]["changes"] == [] and result["credentials"][1]["changed"] is False
    assert result["changed"] is True  # dev landed


def test_an_unreachable_registry_cluster_fails_the_batch_before_any_credential(run_module, fake):
    result = run(run_module, Fail, registry_cluster={"host": "https://down.registry.example.com:6443"},
                 credentials=[element("prod"), element("uat")])
    assert result["msg"].startswith("registry_cluster: cannot use the cluster: GET https://down.registry.example.com:6443/version failed")
    assert result["changed"] is False
    assert fake.of("credential") == []


@pytest.mark.parametrize("changed,expected", [([True, False], True), ([False, True], True), ([False, False], False)],
                         ids=["first", "second", "neither"])
def test_the_batch_changed_when_any_element_changed(run_module, fake, changed, expected):
    fake.behaviour = {"prod": lambda credential: result_of(credential.spec, changed[0]),
                      "uat": lambda credential: result_of(credential.spec, changed[1])}
    result = run(run_module, credentials=[element("prod"), element("uat")])
    assert result["changed"] is expected
    assert [item["changed"] for item in result["credentials"]] == changed


def test_check_mode_reaches_every_element(run_module, fake):
    run(run_module, credentials=[element("prod"), element("uat")], _ansible_check_mode=True)
    assert [call[4] for call in fake.of("credential")] == [True, True]


def test_diff_mode_lists_a_diff_per_credential_named(run_module, fake):
    result = run(run_module, credentials=[element("prod"), element("uat")], _ansible_diff=True)
    assert result["diff"] == [
        {"before": {"generation": None}, "after": {"generation": "segmented-pull-prod-gen1"},
         "before_header": "credentials[0] (cluster prod)", "after_header": "credentials[0] (cluster prod)"},
        {"before": {"generation": None}, "after": {"generation": "segmented-pull-uat-gen1"},
         "before_header": "credentials[1] (cluster uat)", "after_header": "credentials[1] (cluster uat)"},
    ]
    assert "diff" not in run(run_module, credentials=[element("prod")])


def test_warnings_are_prefixed_with_their_element(run_module, fake, monkeypatch):
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning: warned.append(warning))

    def warns(credential):
        credential.warnings.append("namespace shop is not there yet")
        return result_of(credential.spec)

    fake.behaviour = {"uat": warns}
    run(run_module, credentials=[element("prod"), element("uat")], _ansible_check_mode=True)
    assert warned == ["credentials[1] (cluster uat): namespace shop is not there yet"]


def test_every_element_s_api_key_is_a_no_log_value(run_module, fake, monkeypatch):
    made = []
    monkeypatch.setattr(registry_credential, "module_of", lambda make=registry_credential.module_of: made.append(make()) or made[-1])
    run(run_module, credentials=[element("prod"), element("uat")])
    assert {"sha256~prod-token", "sha256~uat-token", REGISTRY["api_key"]} <= made[0].no_log_values
