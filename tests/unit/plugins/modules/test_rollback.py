"""The rollback module's arguments and result, with its I/O faked: the registry cluster (its
``ImageStreamAPI``, the history ConfigMaps, the token it mints), the integrated registry's answer
for the digest to put back, and the promotion run (``promotion.run.reconcile`` as the job calls
it). The job's checks, the history's reading and the result are real."""
import functools

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import ImageStreamAPI
from ansible_collections.segmented.registry.plugins.module_utils.promotion import history, history_api, job
from ansible_collections.segmented.registry.plugins.modules import rollback
from tests.unit.plugins.module_utils.fake_cluster import ApiError, fake_cluster
from tests.unit.plugins.modules.harness import Fail, caller, documented, refused, without as omitted

NOWHERE = {"host": "https://127.0.0.1:9", "api_key": "sha256~unused-token"}
ENVIRONMENTS = [{"name": "test", "route_host": "test-registry.apps.example.com"},
                {"name": "prod", "route_host": "prod-registry.apps.example.com"},
                {"name": "old", "route_host": "old-registry.apps.example.com", "state": "absent"}]
JOB = dict(NOWHERE, environments=ENVIRONMENTS, service_account="segmented-registry-promotion/promoter",
           integrated_registry="image-registry.apps.example.com", namespace="myproject", name="app:v1",
           environment="prod")
KEY = "segmented.registry/environments"
A, B = "sha256:" + "aa" * 32, "sha256:" + "bb" * 32

#: The history's real read, before the ``calls`` fixture fakes it.
READ = history_api.read


def imagestream(approved=("test", "prod"), digest=B):
    return {"metadata": {"namespace": "myproject", "name": "app", "annotations": {}},
            "spec": {"tags": [{"name": "v1", "annotations": {KEY: ",".join(approved)}}]},
            "status": {"tags": [{"tag": "v1", "items": [{"image": digest}]}]}}


def configmap(*items):
    """The history ConfigMap of app with these (action, before, after) entries of v1 in prod, newest first."""
    entries = [history.entry(f"2026-12-0{5 - n}T10:00:00Z", action, "prod", "v1", before, after, "alice", "ok", "")
               for n, (action, before, after) in enumerate(items)]
    return {"metadata": {"namespace": "myproject", "name": "segmented-registry-history-app",
                         "annotations": {history.ANNOTATION_STREAM: "app"}},
            "data": history.merge({}, list(reversed(entries)), 20, "cm")}


PROMOTED = configmap(("promote", A, B), ("promote", None, A))


@pytest.fixture
def cluster():
    """What the faked cluster and registries hold; a test changes it before the run."""
    return {"imagestream": imagestream(), "history": [PROMOTED], "in_source": {A, B}, "prod": B}


@pytest.fixture
def calls(monkeypatch, cluster):
    seen = []

    def connect(cls, module):
        seen.append(("connect", module.check_mode))
        return type("API", (), {"cluster": "the registry cluster",
                                "get": lambda self, namespace, stream: cluster["imagestream"]})()

    def mint_token(client, service_account, duration, audiences=None):
        return f"minted-{audiences}"

    def read(gateway, namespaces, warn=None):
        seen.append(("read history", namespaces))
        return cluster["history"]

    def record(gateway, entries, limit, warn=None):
        seen.append(("history", entries, limit))
        return ["myproject/segmented-registry-history-app"], 2

    def head_manifest(client, repository, reference):
        seen.append(("source head", repository, reference))
        return {"digest": reference} if reference in cluster["in_source"] else None

    def run(entries, environments, source, destinations, scope=None, prune=True, check_mode=False, pins=None, **kwargs):
        seen.append(("reconcile", scope.to_dict(), check_mode, pins))
        (frm, to) = pins[("myproject/app", "v1", "prod")]
        assert frm == B
        same = cluster["prod"] == to
        action = {"action": "skip" if same else "copy", "environment": "prod", "repository": "myproject/app", "tag": "v1",
                  "digest": to, "current": cluster["prod"], "pinned_from": frm}
        if cluster.get("gate"):
            action.update(action="gated", reason=cluster["gate"])
        elif not same and not check_mode:
            action["result"] = "copied"
        return {"actions": [action], "summary": {action["action"]: 1}, "unknown_environments": [], "absent_environments": [],
                "audit": [], "warnings": [], "seconds": {"read": 0.1, "total": 0.2}}

    monkeypatch.setattr(ImageStreamAPI, "connect", classmethod(connect))
    monkeypatch.setattr(job, "mint_token", mint_token)
    monkeypatch.setattr(job, "reconcile", run)
    monkeypatch.setattr(job.history_api, "read", read)
    monkeypatch.setattr(job.history_api, "record", record)
    monkeypatch.setattr(job.RegistryClient, "head_manifest", head_manifest)
    return seen


run = caller(rollback)
without = functools.partial(omitted, JOB)


@pytest.mark.parametrize("args,words", [
    (without("environment"), ["missing required arguments", "environment"]),
    (dict(JOB, environment=["prod", "test"]), ["environment"]),
    (dict(JOB, environment="staging"), ["environment: staging is no promotion target", "test, prod"]),
    (dict(JOB, environment="old"), ["environment: old", "state: absent"]),
    (dict(JOB, stream="app"), ["mutually exclusive", "name", "stream"]),
    (dict(JOB, name="app"), ["name", "<stream>:<tag>"]),
    (dict(JOB, namespace="Not_A_Namespace"), ["Not_A_Namespace"]),
    (dict(JOB, history_limit=-1), ["history_limit"]),
    (dict(JOB, max_attempts=3), ["max_attempts"]),
], ids=["environment-required", "environment-one", "environment-unknown", "environment-absent", "name-and-stream",
        "name-shape", "namespace-name", "history_limit-range", "no-max_attempts"])
def test_bad_arguments_fail_naming_the_option_and_reach_nothing(run_module, calls, args, words):
    refused(run(run_module, Fail, **args), words, calls)


def test_the_digest_before_the_last_promotion_is_copied_back_pinned_and_recorded(run_module, calls):
    result = run(run_module, **JOB, requester="alice", _ansible_diff=True)
    assert ("source head", "myproject/app", A) in calls  # the digest to put back, asked before the run
    (reconciled,) = [call for call in calls if call[0] == "reconcile"]
    assert reconciled[1] == {"namespaces": ["myproject"], "stream": "app", "tag": "v1", "environments": ["prod"]}
    assert reconciled[3] == {("myproject/app", "v1", "prod"): (B, A)}
    assert (result["changed"], result["digest_before"], result["digest_after"], result["rolled_back_from"]) == (True, B, A, B)
    assert result["diff"] == {"before": {"digest": B}, "after": {"digest": A}}
    (recorded,) = [call for call in calls if call[0] == "history"]
    (entry,) = recorded[1][("myproject", "app")]
    assert (entry["action"], entry["digest_before"], entry["digest_after"], entry["by"]) == ("rollback", B, A, "alice")
    assert set(result) == set(documented(rollback)) - {"query_results"}
    assert set(result["reconcile"]) >= {"copies", "history_written", "stats"}


def test_check_mode_previews_the_copy_and_records_nothing(run_module, calls):
    result = run(run_module, **JOB, _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] is True and result["diff"]["after"] == {"digest": A}
    assert not [call for call in calls if call[0] == "history"]
    assert [call[2] for call in calls if call[0] == "reconcile"] == [True]


def test_a_second_run_finds_the_digest_in_place_and_the_pin_recorded(run_module, calls, cluster):
    cluster["prod"] = A
    cluster["history"] = [configmap(("rollback", B, A), ("promote", A, B), ("promote", None, A))]
    result = run(run_module, **JOB)
    assert result["changed"] is False and (result["digest_before"], result["digest_after"]) == (A, A)
    assert not [call for call in calls if call[0] == "history" and call[1]]  # nothing to record
    # in place but not pinned yet (put back by hand): the pin is recorded, and that is the change
    cluster["history"] = [PROMOTED]
    result = run(run_module, **JOB)
    assert result["changed"] is True
    assert [call[1][("myproject", "app")][0]["message"] for call in calls if call[0] == "history" and call[1]] == ["already served; pinned"]


@pytest.mark.parametrize("change,words", [
    ({"history": []}, ["no promotion is recorded", "ConfigMap myproject/segmented-registry-history-app, key v1.prod"]),
    ({"history": [configmap(("promote", None, B))]}, ["brought the first digest there"]),
    ({"imagestream": imagestream(digest="sha256:" + "cc" * 32)}, ["the source tag now serves sha256:cccc"]),
    ({"imagestream": imagestream(approved=("test",))}, ["not approved for prod", "its approval list: test"]),
    ({"in_source": {B}}, [f"image-registry.apps.example.com/myproject/app@{A} is no longer in the integrated registry"]),
], ids=["no-history", "first-promotion", "source-moved", "not-approved", "pruned-from-the-source"])
def test_a_rollback_that_cannot_be_done_is_refused_before_anything_changes(run_module, calls, cluster, change, words):
    cluster.update(change)
    result = run(run_module, Fail, **JOB)
    for word in words:
        assert word in result["msg"]
    assert not [call for call in calls if call[0] in ("reconcile", "history")]
    assert not result.get("changed")


def test_a_rollback_a_policy_holds_back_fails_saying_why_and_changes_nothing(run_module, calls, cluster):
    cluster["gate"] = "policy after uat: this digest is not in uat's registry (myproject/app) yet"
    result = run(run_module, Fail, **JOB)
    assert "policy after uat" in result["msg"] and not result["changed"]
    assert (result["digest_before"], result["digest_after"]) == (B, B)
    assert not [call for call in calls if call[0] == "history" and call[1]]


def test_an_account_that_may_not_read_the_history_fails_naming_the_right_before_anything_changes(run_module, calls, cluster, monkeypatch):
    registry_cluster = fake_cluster()
    registry_cluster.dynamic.refuse("get", "/configmaps", ApiError(403, 'configmaps is forbidden: User "promoter" cannot list resource "configmaps"',
                                                                   reason="Forbidden"))
    api = type("API", (), {"cluster": registry_cluster, "get": lambda self, namespace, stream: cluster["imagestream"]})()
    monkeypatch.setattr(ImageStreamAPI, "connect", classmethod(lambda cls, module: api))
    monkeypatch.setattr(job.history_api, "read", READ)  # the real read, on the fake API server
    result = run(run_module, Fail, **JOB)
    for words in ("403", "list on configmaps", "namespace myproject", "registry_cluster_history_editors", "edit role in myproject",
                  "nothing was changed"):
        assert words in result["msg"]
    assert not [call for call in calls if call[0] in ("reconcile", "history", "source head")]
    assert registry_cluster.dynamic.writes == [] and not result.get("changed")
