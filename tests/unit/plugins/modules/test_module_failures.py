"""Every module turns the collection's errors into ``fail_json`` in one place, ``errors.failing``:
each case makes a module hit one of its errors (before any cluster, or with the cluster faked) and
checks that the failure went through the helper once, with the error's message and the module's
failure keys."""
import importlib

import pytest

from ansible_collections.segmented.registry.plugins.module_utils import errors
from ansible_collections.segmented.registry.plugins.module_utils.credentials import runs
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import CredentialsError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.reachability import ClusterUnreachable
from tests.unit.plugins.modules.harness import Fail

NOWHERE = {"host": "https://127.0.0.1:9", "api_key": "sha256~unused-token"}
ENVIRONMENTS = [{"name": "test", "route_host": "test-registry.apps.example.com"},
                {"name": "prod", "route_host": "prod-registry.apps.example.com"}]
JOB = dict(NOWHERE, environments=ENVIRONMENTS, service_account="segmented-registry-promotion/promoter")
CREDENTIAL = {"registry_cluster": NOWHERE, "cluster": NOWHERE, "cluster_name": "prod-cluster", "access": "pull",
              "namespace": "prod", "registry": "prod-registry.apps.example.com"}

#: module, arguments, the error class the helper sees, words of the message
CASES = [
    ("cluster_image_config", dict(NOWHERE, allow=["r.example.com"], deny=["r.example.com"]),
     "ImageConfigError", ["r.example.com is in both allow and deny"]),
    ("pull_secret", dict(NOWHERE, from_secret="no-slash"), "PullSecretError", ["from_secret", "namespace/name"]),
    ("tag_environments", dict(NOWHERE, namespace="p", name="app:v1", add=["Not_A_Name"]), "EnvironmentsError",
     ["Not_A_Name"]),
    ("tag_environments_info", dict(NOWHERE, namespace=["p"], environment="Not_A_Name"), "EnvironmentsError",
     ["Not_A_Name"]),
    ("promote", dict(JOB, namespace="p", name="app:v1", environment=["test"], max_attempts=0), "ImageStreamError",
     ["max_attempts must be at least 1"]),
    ("promote", dict(JOB, namespace="p", name="app:v1", environment=["test"], parallel_blobs=0), "PromotionError",
     ["parallel_blobs must be at least 1, not 0"]),
    ("reconcile", dict(JOB, namespace=["p"], tag="v1"), "ScopeError", ["tag needs stream"]),
    ("reconcile", dict(JOB, token_duration=60), "PromotionError", ["token_duration must be at least"]),
    ("registry_credential", dict(CREDENTIAL, namespace="Not_A_Namespace"), "CredentialsError",
     ["namespace: ", "is not a namespace name", "Nothing was changed"]),
    ("validate_inventory", {"environments": ENVIRONMENTS, "clusters": [{"name": "c", "environment": "staging"}],
                            "check_reachable": False}, "TopologyError", ["staging"]),
]


@pytest.fixture
def seen(monkeypatch):
    """The errors ``failing`` turned into ``fail_json`` (it builds the arguments with ``failure``)."""
    calls = []
    failure = errors.failure

    def spy(error, **extra):
        calls.append(type(error).__name__)
        return failure(error, **extra)

    monkeypatch.setattr(errors, "failure", spy)
    return calls


def module_named(name):
    return importlib.import_module(f"ansible_collections.segmented.registry.plugins.modules.{name}")


@pytest.mark.parametrize("name,args,error,words", CASES, ids=[f"{name}-{error}" for name, _args, error, _words in CASES])
def test_a_module_error_goes_through_the_helper(run_module, seen, name, args, error, words):
    result = run_module(module_named(name), args, expect=Fail)
    assert seen == [error]
    for word in words:
        assert word in result["msg"], f"{name}: {word!r} not in {result['msg']!r}"
    assert not result.get("changed"), result


def test_validate_inventory_keeps_its_failure_keys(run_module, seen):
    args = {"environments": ENVIRONMENTS, "clusters": [{"name": "c", "environment": "staging"}], "check_reachable": False}
    result = run_module(module_named("validate_inventory"), args, expect=Fail)
    assert set(result) == {"msg", "problems", "clusters"}
    assert result["clusters"] == {}
    assert result["msg"].startswith("The inventory has 2 problems:\n- c: segmented_registry_environment: ")
    assert [problem["host"] for problem in result["problems"]][0] == "c"
    assert len(result["problems"]) == 2


def test_tag_environments_info_brings_the_listing_along_with_a_query_error(run_module, seen, monkeypatch):
    module = module_named("tag_environments_info")
    pytest.importorskip("jmespath")
    monkeypatch.setattr(module.ImageStreamAPI, "connect", classmethod(lambda cls, _module: object()))
    monkeypatch.setattr(module, "list_tags", lambda *_a: {"tags": [], "errors": []})
    result = run_module(module, dict(NOWHERE, namespace=["p"], query={"bad": "abs(tags)"}), expect=Fail)
    assert seen == ["QueryError"]
    assert result["msg"].startswith("query.bad:")
    assert result["tags"] == [] and result["errors"] == []


def test_registry_credential_names_the_unusable_cluster_and_changes_nothing(run_module, seen, monkeypatch):
    module = module_named("registry_credential")
    if not module.HAS_KUBERNETES:
        pytest.skip("the kubernetes client is not installed")

    def refused(_auth):
        raise ClusterUnreachable("the API server at https://127.0.0.1:9 rejected the credentials: 401 Unauthorized")

    monkeypatch.setattr(runs, "probe", refused)
    result = run_module(module, CREDENTIAL, expect=Fail)
    assert seen == ["ClusterError"]
    assert result == {"msg": "registry_cluster: cannot use the cluster: the API server at https://127.0.0.1:9 rejected "
                             "the credentials: 401 Unauthorized. Check registry_cluster (an expired or revoked api_key "
                             "is refused with 401); nothing was changed", "changed": False}


def test_registry_credential_reports_what_it_changed_before_it_failed(run_module, seen, monkeypatch):
    module = module_named("registry_credential")
    if not module.HAS_KUBERNETES:
        pytest.skip("the kubernetes client is not installed")

    class HalfWay:
        def __init__(self, *_args, **_kwargs):
            self.changes = []

        def run(self):
            self.changes.append("prod/segmented-registry-pull: created")
            raise CredentialsError("cannot patch prod/default: forbidden; grant patch serviceaccounts")

    monkeypatch.setattr(runs, "probe", lambda _auth: {"server": "https://127.0.0.1:9"})
    monkeypatch.setattr(runs.Cluster, "of_auth", classmethod(lambda *_a: object()))
    monkeypatch.setattr(runs, "Credential", HalfWay)
    result = run_module(module, CREDENTIAL, expect=Fail)
    assert seen == ["CredentialsError"]
    assert result == {"msg": "cannot patch prod/default: forbidden; grant patch serviceaccounts", "changed": True,
                      "changes": ["prod/segmented-registry-pull: created"]}


def test_a_bug_is_not_turned_into_a_failure(run_module, seen, monkeypatch):
    module = module_named("tag_environments")

    def broken(*_args, **_kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(module, "TagEdit", broken)
    with pytest.raises(KeyError):
        run_module(module, dict(NOWHERE, namespace="p", name="app:v1", add=["test"]), expect=Fail)
    assert seen == []
