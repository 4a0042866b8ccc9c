"""The promote module's arguments and result, with its I/O faked: the registry cluster (its
``ImageStreamAPI``, the approval list's write ``TagEdit.apply`` and the tokens it mints) and the
promotion run (``promotion.run.reconcile`` as the job calls it). The edit's and the job's checks
and result fields are real."""
import functools

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.approval.edit import TagEdit
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import (ImageStreamAPI)
from ansible_collections.segmented.registry.plugins.module_utils.promotion import history, job
from ansible_collections.segmented.registry.plugins.modules import promote
from tests.unit.plugins.modules.harness import Fail, caller, documented, refused, without as omitted

NOWHERE = {"host": "https://127.0.0.1:9", "api_key": "sha256~unused-token"}
ENVIRONMENTS = [{"name": "test", "route_host": "test-registry.apps.example.com"},
                {"name": "prod", "route_host": "prod-registry.apps.example.com"},
                {"name": "old", "route_host": "old-registry.apps.example.com", "state": "absent"}]
JOB = dict(NOWHERE, environments=ENVIRONMENTS, service_account="segmented-registry-promotion/promoter",
           integrated_registry="image-registry.apps.example.com", namespace="myproject", name="app:v1",
           environment=["prod"])
KEY = "segmented.registry/environments"
DIGEST = "sha256:" + "4a" * 32
COPY = {"action": "copy", "result": "copied", "environment": "prod", "repository": "myproject/app", "tag": "v1",
        "digest": DIGEST, "bytes_sent": 1024}


def written(before, after):
    """What the write (``imagestreams.edit_tag_environments``) returns, the ImageStream as stored."""
    stream = {"metadata": {"namespace": "myproject", "name": "app", "annotations": {}},
              "spec": {"tags": [{"name": "v1", "annotations": {KEY: ",".join(after)} if after else {}}]},
              "status": {"tags": [{"tag": "v1", "items": [{"image": DIGEST}]}]}}
    return {"changed": before != after, "before": before, "after": after, "digest": DIGEST, "attempts": 1,
            "imagestream": stream, "unreadable": None}


def outcome():
    """What ``promotion.run.reconcile`` returns after one copy."""
    return {"actions": [COPY], "summary": {"copied": 1}, "unknown_environments": [], "absent_environments": [],
            "audit": [], "warnings": [], "seconds": {"read": 0.1, "total": 0.2}}


@pytest.fixture
def calls(monkeypatch):
    """Every call into the faked layer: the connection, the write, each minted token, the run."""
    seen = []

    def record(cluster, entries, limit, warn=None):
        seen.append(("history", entries, limit))
        return [f"{namespace}/{history.configmap_name(stream)}" for namespace, stream in sorted(entries)], 2

    def read(cluster, namespaces, warn=None):
        seen.append(("read history", namespaces))
        return []

    def connect(cls, module):
        seen.append(("connect", module.check_mode, module.server_side_dry_run))
        return type("API", (), {"cluster": "the registry cluster"})()

    def apply(edit, api):
        seen.append(("apply", edit.namespace, edit.stream, edit.tag, edit.add, edit.remove, edit.known, edit.absent,
                     edit.annotation_key, edit.max_attempts))
        return written(["test"], edit.change(["test"]))

    def mint_token(client, service_account, duration, audiences=None):
        seen.append(("mint", service_account, duration, audiences))
        return f"minted-{audiences}"

    def run(entries, environments, source, destinations, scope=None, prune=True, check_mode=False, **kwargs):
        seen.append(("reconcile", [(e["namespace"], e["stream"], e["tag"], e["environments"]) for e in entries],
                     scope.to_dict(), check_mode))
        return outcome()

    monkeypatch.setattr(ImageStreamAPI, "connect", classmethod(connect))
    monkeypatch.setattr(TagEdit, "apply", apply)
    monkeypatch.setattr(job, "mint_token", mint_token)
    monkeypatch.setattr(job, "reconcile", run)
    monkeypatch.setattr(job.history_api, "record", record)
    monkeypatch.setattr(job.history_api, "read", read)
    return seen


run = caller(promote)


without = functools.partial(omitted, JOB)


@pytest.mark.parametrize("args,words", [
    (without("environment"), ["missing required arguments", "environment"]),
    (without("namespace"), ["missing required arguments", "namespace"]),
    (without("environments"), ["missing required arguments", "environments"]),
    (dict(JOB, state="maybe"), ["state", "present, absent"]),
    (dict(JOB, reconcile="later"), ["reconcile", "bool"]),
    (dict(JOB, registry_token="given"), ["mutually exclusive", "service_account", "registry_token"]),
    (without("service_account"), ["one of the following is required", "service_account", "registry_token"]),
    (dict(JOB, stream="app"), ["mutually exclusive", "name", "stream"]),
    (dict(without("name"), stream="app"), ["required together", "stream", "tag"]),
    (without("name"), ["name", "stream and tag"]),
    (dict(JOB, environment=["old"]), ["add", "old", "state: absent"]),
    (dict(JOB, environment=["staging"]), ["staging"]),
    (dict(JOB, environment=["Not_A_Name"]), ["Not_A_Name"]),
    (dict(JOB, max_attempts=0), ["max_attempts must be at least 1"]),
    (dict(JOB, parallel_blobs=0), ["parallel_blobs must be at least 1"]),
], ids=["environment-required", "namespace-required", "environments-required", "state-choice", "reconcile-type",
        "service_account-and-registry_token", "no-credential", "name-and-stream", "stream-without-tag", "no-tag",
        "add-absent", "add-unknown", "add-bad-name", "max_attempts-range", "parallel_blobs-range"])
def test_bad_arguments_fail_naming_the_option_and_reach_nothing(run_module, calls, args, words):
    refused(run(run_module, Fail, **args), words, calls)


def test_a_missing_integrated_registry_is_refused_before_the_list_is_written(run_module, calls):
    result = run(run_module, Fail, **without("integrated_registry"))
    assert "integrated_registry is required" in result["msg"]
    assert not [call for call in calls if call[0] == "apply"]


def test_reconcile_false_needs_no_integrated_registry(run_module, calls):
    result = run(run_module, **without("integrated_registry"), reconcile=False)
    assert [call[0] for call in calls] == ["connect", "apply"]
    assert "reconcile" not in result


def test_the_defaults_promote_and_reconcile_the_one_tag(run_module, calls):
    run(run_module, **JOB)
    assert calls[1] == ("apply", "myproject", "app", "v1", ["prod"], None, ["prod", "test"], ["old"], KEY, 10)
    assert calls[-2] == ("reconcile", [("myproject", "app", "v1", ["prod", "test"])],
                         {"namespaces": ["myproject"], "stream": "app", "tag": "v1", "environments": None}, False)
    assert calls[-1][0] == "history" and calls[-1][1][("myproject", "app")][0]["environment"] == "prod"


def test_state_absent_demotes(run_module, calls):
    result = run(run_module, **dict(without("name"), stream="app", tag="v1", environment=["test"], state="absent",
                                    annotation_key="environment", max_attempts=3))
    assert calls[1] == ("apply", "myproject", "app", "v1", None, ["test"], ["prod", "test"], ["old"], "environment", 3)
    assert result["environments_before"] == ["test"] and result["environments_after"] == ["default"]


def test_the_result_has_exactly_the_documented_keys(run_module, calls):
    result = run(run_module, **JOB)
    assert set(result) == set(documented(promote)) - {"query_results", "diff"}
    assert result["changed"] is True
    assert result["environments_after"] == ["prod", "test"]
    assert result["reconcile"]["copies"] == [COPY] and result["failures"] == []


def test_check_mode_is_a_dry_run_edit_and_a_planning_run(run_module, calls):
    run(run_module, **JOB, _ansible_check_mode=True)
    assert calls[0] == ("connect", True, True)
    assert calls[-1][-1] is True


def test_a_normal_run_is_no_dry_run(run_module, calls):
    run(run_module, **JOB)
    assert calls[0] == ("connect", False, False)


def test_diff_mode_returns_the_list_before_and_after(run_module, calls):
    result = run(run_module, **JOB, _ansible_diff=True)
    assert set(result) == set(documented(promote)) - {"query_results"}
    assert result["diff"]["before"] == {"environments": ["test"]}
    assert result["diff"]["after"] == {"environments": ["prod", "test"]}


def test_a_query_adds_its_results(run_module, calls):
    pytest.importorskip("jmespath")
    result = run(run_module, **JOB, query={"after": "environments_after"})
    assert set(result) == set(documented(promote)) - {"diff"}
    assert result["query_results"] == {"after": ["prod", "test"]}
