"""The reconcile module's arguments and result, with its I/O faked: the registry cluster (its
``ImageStreamAPI``, the ImageStream listing and the token it mints) and the promotion run
(``promotion.run.reconcile`` as the job calls it). The job's checks and result fields are real."""
import functools

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import (ImageStreamAPI)
from ansible_collections.segmented.registry.plugins.module_utils.promotion import history, history_api, job
from ansible_collections.segmented.registry.plugins.modules import reconcile
from tests.unit.plugins.modules.harness import Fail, caller, documented, refused, without as omitted

NOWHERE = {"host": "https://127.0.0.1:9", "api_key": "sha256~unused-token"}
ENVIRONMENTS = [{"name": "test", "route_host": "test-registry.apps.example.com"},
                {"name": "prod", "route_host": "prod-registry.apps.example.com"},
                {"name": "old", "route_host": "old-registry.apps.example.com", "state": "absent"}]
JOB = dict(NOWHERE, environments=ENVIRONMENTS, service_account="segmented-registry-promotion/promoter",
           integrated_registry="image-registry.apps.example.com")
DIGEST = "sha256:" + "4a" * 32
COPY = {"action": "copy", "result": "copied", "environment": "test", "repository": "myproject/app", "tag": "v1",
        "digest": DIGEST, "bytes_sent": 1024}

#: A history ConfigMap as the registry cluster returns it.
ENTRY = history.entry("2026-12-05T18:09:48Z", "promote", "test", "v1", None, DIGEST, "alice", "ok", "")
HISTORY = {"metadata": {"namespace": "myproject", "name": "segmented-registry-history-app",
                        "annotations": {history.ANNOTATION_STREAM: "app"}},
           "data": history.merge({}, [ENTRY], 5, "cm")}
#: The history's real I/O, before the ``calls`` fixture fakes it.
READ, RECORD = history_api.read, history_api.record


def outcome():
    """What ``promotion.run.reconcile`` returns after one copy."""
    return {"actions": [COPY], "summary": {"copied": 1}, "unknown_environments": [], "absent_environments": [],
            "audit": [{"tag": "myproject/app:v1", "digest": DIGEST, "approved": ["test"], "present": [],
                       "drift": ["test"]}],
            "warnings": [], "seconds": {"read": 0.1, "total": 0.2}}


@pytest.fixture
def calls(monkeypatch):
    """Every call into the faked layer: the connection, the listing, each minted token, the run."""
    seen = []

    def record(cluster, entries, limit, warn=None):
        seen.append(("history", entries, limit))
        return [f"{namespace}/{history.configmap_name(stream)}" for namespace, stream in sorted(entries)], 2

    def read(cluster, namespaces, warn=None):
        seen.append(("read history", namespaces))
        return [HISTORY]

    def connect(cls, module):
        seen.append(("connect", module.check_mode))
        return type("API", (), {"cluster": "the registry cluster"})()

    def list_streams(api, namespaces):
        seen.append(("list", namespaces))
        return [], 1

    def mint_token(client, service_account, duration, audiences=None):
        seen.append(("mint", service_account, duration, audiences))
        return f"minted-{audiences}"

    def run(entries, environments, source, destinations, scope=None, prune=True, check_mode=False, **kwargs):
        seen.append(("pins", kwargs["pins"]))
        seen.append(("copier", kwargs["copier"] is not None))
        seen.append(("reconcile", sorted(destinations), scope.to_dict(), prune, check_mode, kwargs["image_workers"],
                     kwargs["blob_workers"]))
        return outcome()

    monkeypatch.setattr(ImageStreamAPI, "connect", classmethod(connect))
    monkeypatch.setattr(job, "list_streams", list_streams)
    monkeypatch.setattr(job, "mint_token", mint_token)
    monkeypatch.setattr(job, "reconcile", run)
    monkeypatch.setattr(job.history_api, "record", record)
    monkeypatch.setattr(job.history_api, "read", read)
    return seen


run = caller(reconcile)


without = functools.partial(omitted, JOB)


@pytest.mark.parametrize("args,words", [
    (without("environments"), ["missing required arguments", "environments"]),
    (dict(JOB, registry_token="given"), ["mutually exclusive", "service_account", "registry_token"]),
    (without("service_account"), ["one of the following is required", "service_account", "registry_token"]),
    (dict(JOB, details="some"), ["details", "all, changes"]),
    (dict(JOB, parallel_images="four"), ["parallel_images", "int"]),
    (dict(JOB, prune="sometimes"), ["prune", "bool"]),
    (dict(JOB, environments="test"), ["environments"]),
    (dict(JOB, parallel_blobs=0), ["parallel_blobs must be at least 1"]),
    (dict(JOB, token_duration=60), ["token_duration must be at least"]),
    (dict(JOB, namespace=["p"], tag="v1"), ["tag needs stream"]),
    (dict(JOB, stream="app"), ["stream needs exactly one namespace"]),
    (dict(JOB, namespace=["Not_A_Namespace"]), ["Not_A_Namespace"]),
    (dict(JOB, environment=["staging"]), ["environment", "staging"]),
    (dict(JOB, environment=["old"]), ["environment", "old", "state: absent"]),
    (dict(JOB, annotation_key="not a key!"), ["annotation_key"]),
    (dict(JOB, environments=[{"name": "test"}]), ["route_host"]),
    (dict(JOB, history_limit=history.MAX_LIMIT + 1), ["history_limit", f"between 0 (keep none) and {history.MAX_LIMIT}"]),
    (dict(JOB, copy_jobs={"image": "registry.example.com/copier:latest"}), ["copy_jobs.image", "pinned by digest"]),
    (dict(JOB, copy_jobs={"image": "registry.example.com/copier@sha256:" + "a" * 64, "jobs": 0}), ["copy_jobs.jobs", "at least 1"]),
    (dict(JOB, copy_jobs={"jobs": 2}), ["image"]),
    (dict(without("service_account"), registry_token="given", copy_jobs={"image": "r.example.com/c@sha256:" + "a" * 64}),
     ["copy_jobs needs service_account"]),
], ids=["environments-required", "service_account-and-registry_token", "no-credential", "details-choice",
        "parallel_images-type", "prune-type", "environments-elements", "parallel_blobs-range", "token_duration-range",
        "tag-without-stream", "stream-without-one-namespace", "namespace-name", "environment-unknown",
        "environment-absent", "annotation_key", "environment-without-route_host", "history_limit-range",
        "copy_jobs-image-unpinned", "copy_jobs-jobs-range", "copy_jobs-image-required", "copy_jobs-without-service_account"])
def test_bad_arguments_fail_naming_the_option_and_reach_nothing(run_module, calls, args, words):
    refused(run(run_module, Fail, **args), words, calls)


def test_a_missing_integrated_registry_is_refused_before_the_cluster(run_module, calls):
    result = run(run_module, Fail, **without("integrated_registry"))
    assert "integrated_registry is required" in result["msg"]
    assert calls == []


def test_the_defaults_reach_the_run(run_module, calls):
    run(run_module, **JOB)
    assert calls[:2] == [("connect", False), ("list", None)]
    assert ("mint", "segmented-registry-promotion/promoter", 900, None) in calls
    assert ("mint", "segmented-registry-promotion/promoter", 900, [job.TOKEN_SERVER_AUDIENCE]) in calls
    assert calls[-1][0] == "history"  # after the run, from what it did
    assert calls[-4:-2] == [("pins", {}), ("copier", False)]  # copies run in this process
    assert calls[-2] == ("reconcile", ["prod", "test"],
                         {"namespaces": None, "stream": None, "tag": None, "environments": None}, True, False, 4, 6)


def test_copy_jobs_hand_the_run_a_copier(run_module, calls):
    run(run_module, **dict(JOB, copy_jobs={"image": "registry.example.com/copier@sha256:" + "a" * 64, "jobs": 4}))
    assert ("copier", True) in calls


def test_every_option_reaches_the_run_in_its_place(run_module, calls):
    run(run_module, **dict(without("service_account"), registry_token="given", namespace=["myproject"], stream="app",
                           tag="v1", environment=["prod"], prune=False, parallel_images=2, parallel_blobs=3))
    assert ("list", ["myproject"]) in calls
    assert not [call for call in calls if call[0] == "mint"]
    assert calls[-1][0] == "history"  # after the run, from what it did
    assert calls[-4:-2] == [("pins", {}), ("copier", False)]
    assert calls[-2] == ("reconcile", ["prod", "test"],
                         {"namespaces": ["myproject"], "stream": "app", "tag": "v1", "environments": ["prod"]},
                         False, False, 2, 3)


def test_the_result_has_exactly_the_documented_keys(run_module, calls):
    result = run(run_module, **JOB)
    assert set(result) == set(documented(reconcile)) - {"query_results", "bytes_planned", "history"}
    assert result["changed"] is True
    assert result["copies"] == [COPY] and result["bytes_moved"] == 1024


def test_check_mode_reaches_the_run_and_adds_the_planned_bytes(run_module, calls):
    result = run(run_module, **JOB, _ansible_check_mode=True)
    assert calls[0] == ("connect", True)
    assert calls[-1][4] is True
    assert set(result) == set(documented(reconcile)) - {"query_results", "history_written", "history"}
    assert not [call for call in calls if call[0] == "history"]  # nothing was carried out, nothing is recorded


def test_a_query_adds_its_results(run_module, calls):
    pytest.importorskip("jmespath")
    result = run(run_module, **JOB, query={"copied": "copies[].tag"})
    assert set(result) == set(documented(reconcile)) - {"bytes_planned", "history"}
    assert result["query_results"] == {"copied": ["v1"]}


def test_the_run_s_copies_are_recorded_by_the_requester_within_the_limit(run_module, calls):
    result = run(run_module, **JOB, requester="alice", history_limit=7)
    (recorded,) = [call for call in calls if call[0] == "history"]
    entries, limit = recorded[1], recorded[2]
    assert limit == 7 and list(entries) == [("myproject", "app")]
    (item,) = entries[("myproject", "app")]
    assert (item["action"], item["environment"], item["tag"], item["digest_after"], item["by"], item["result"]) == (
        "promote", "test", "v1", DIGEST, "alice", "ok")
    assert result["history_written"] == ["myproject/segmented-registry-history-app"]
    assert result["stats"]["api_calls"] == 3 + 2  # the listing, two tokens, and the history's get and write
    run(run_module, **JOB)
    assert [call for call in calls if call[0] == "history"][-1][1][("myproject", "app")][0]["by"] == "segmented.registry"


def test_show_history_returns_the_entries_of_the_scope_for_a_jmespath_select(run_module, calls):
    result = run(run_module, **JOB, namespace=["myproject"], environment=["test"], show_history=True,
                 query={"prod": "history[?environment=='prod']", "test": "history[?environment=='test'].by"})
    assert ("read history", ["myproject"]) in calls
    assert [(row["namespace"], row["stream"], row["tag"], row["environment"]) for row in result["history"]] == [
        ("myproject", "app", "v1", "test")]
    assert result["query_results"] == {"prod": [], "test": ["alice"]}
    result = run(run_module, **JOB, namespace=["myproject"], environment=["prod"], show_history=True)
    assert result["history"] == []  # narrowed to prod


def test_the_rollbacks_in_the_history_reach_the_run_as_pins(run_module, calls, monkeypatch):
    rolled_back = {"metadata": HISTORY["metadata"], "data": history.merge({}, [
        history.entry("2026-12-05T18:09:48Z", "promote", "prod", "v1", None, "sha256:" + "aa" * 32, "a", "ok", ""),
        history.entry("2026-12-05T18:10:48Z", "rollback", "prod", "v1", DIGEST, "sha256:" + "aa" * 32, "a", "ok", "")], 5, "cm")}
    monkeypatch.setattr(job.history_api, "read", lambda cluster, namespaces, warn=None: [HISTORY, rolled_back])
    run(run_module, **JOB, namespace=["myproject"])
    assert ("pins", {("myproject/app", "v1", "prod"): (DIGEST, "sha256:" + "aa" * 32)}) in calls


def test_an_account_without_the_history_s_rights_runs_as_before_with_warnings(run_module, calls, monkeypatch):
    """Backward compatible: a job's account the history's ConfigMaps refuse (403 on list and get)
    plans and copies as it would without the history, and the result warns, naming the right, the
    namespace and the fix."""
    from ansible.module_utils import basic

    from tests.unit.plugins.module_utils.fake_cluster import ApiError, fake_cluster

    registry_cluster = fake_cluster()
    forbidden = ApiError(403, 'configmaps is forbidden: User "promoter" cannot list resource "configmaps"', reason="Forbidden")
    registry_cluster.dynamic.refuse("get", "/configmaps", forbidden, times=2)  # the LIST before, the edit's GET after
    monkeypatch.setattr(ImageStreamAPI, "connect", classmethod(lambda cls, module: type("API", (), {"cluster": registry_cluster})()))
    monkeypatch.setattr(job.history_api, "read", READ)  # the real reads and writes, on the fake API server
    monkeypatch.setattr(job.history_api, "record", RECORD)
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    result = run(run_module, **JOB, namespace=["myproject"])
    assert ("pins", {}) in calls and result["changed"] and result["copies"] == [COPY]
    assert result["history_written"] == []
    assert registry_cluster.dynamic.writes == [] and registry_cluster.dynamic.refusals == []
    read_warning, write_warning = [text for text in warnings if "configmaps" in text]
    for words in ("list on configmaps", "namespace myproject", "registry_cluster_history_editors", "edit role in myproject", "not honoured"):
        assert words in read_warning
    for words in ("get, create and update on configmaps", "namespace myproject", "registry_cluster_history_editors", "not in its history"):
        assert words in write_warning


def test_approval_lists_the_run_cannot_follow_are_recorded_as_failed_promotions(run_module, calls, monkeypatch):
    """An unreadable list fails its tag in every environment in scope, a list naming an environment
    the inventory does not define fails the tag there; the run's copies are recorded beside them,
    and a tag outside the scope is left out."""
    def stream(name, tags):
        return {"metadata": {"namespace": "myproject", "name": name},
                "spec": {"tags": [{"name": tag, "annotations": {"segmented.registry/environments": value}} for tag, value in tags]},
                "status": {"tags": [{"tag": tag, "items": [{"image": DIGEST}]} for tag, _value in tags]}}

    streams = [stream("app", [("v1", "test"), ("bad", "[test"), ("typo", "test,tset")]), stream("web", [("v2", "prod,qa")])]
    monkeypatch.setattr(job, "list_streams", lambda api, namespaces: (streams, 1))
    run(run_module, **JOB, namespace=["myproject"], stream="app", environment=["test"])
    (recorded,) = [call for call in calls if call[0] == "history"]
    assert list(recorded[1]) == [("myproject", "app")]  # web is outside the scope
    rows = [(item["tag"], item["environment"], item["result"]) for item in recorded[1][("myproject", "app")]]
    assert rows == [("v1", "test", "ok"), ("bad", "test", "failed"), ("typo", "tset", "failed")]
    calls.clear()
    run(run_module, **JOB, namespace=["myproject"])  # every environment in scope: test and prod, not the absent old
    (recorded,) = [call for call in calls if call[0] == "history"]
    assert [(item["tag"], item["environment"]) for item in recorded[1][("myproject", "app")] if item["result"] == "failed"] == [
        ("bad", "test"), ("bad", "prod"), ("typo", "tset")]
    assert [(item["tag"], item["environment"]) for item in recorded[1][("myproject", "web")]] == [("v2", "qa")]
