"""The tag_environments_info module's arguments and result, with its work layer faked: the registry
cluster's ``ImageStreamAPI`` and ``list_tags``, which the module calls to read the listing, and the
history reader, which it calls for the rollbacks in force."""
from types import SimpleNamespace

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import (ImageStreamAPI)
from ansible_collections.segmented.registry.plugins.module_utils.promotion import history
from ansible_collections.segmented.registry.plugins.modules import tag_environments_info
from tests.unit.plugins.modules.harness import Fail, caller, documented

NOWHERE = {"host": "https://127.0.0.1:9", "api_key": "sha256~unused-token"}
DIGEST = "sha256:" + "4a" * 32
EARLIER = "sha256:" + "3b" * 32
#: What the faked ``ImageStreamAPI.connect`` returns: the API, with its cluster gateway.
API = SimpleNamespace(cluster="the registry cluster's gateway")


def listing():
    """What ``list_tags`` returns for one namespace: one tag in test and uat."""
    return {"tags": [{"namespace": "myproject", "stream": "app", "tag": "v1", "environments": ["test", "uat"],
                      "digest": DIGEST}],
            "errors": [], "namespaces": ["myproject"], "list_calls": 1}


@pytest.fixture
def calls(monkeypatch):
    """Every call into the faked layer: the connection (with the module's check mode), the listing
    and the history read (a rollback of v1 in uat, from DIGEST to EARLIER)."""
    seen = []

    def connect(cls, module):
        seen.append(("connect", module.check_mode))
        return API

    def list_tags(api, namespaces, key, environment):
        seen.append(("list", api, namespaces, key, environment))
        return listing()

    def read_history(cluster, namespaces, warn):
        seen.append(("history", cluster, sorted(namespaces), warn is not None))
        rolled_back = [history.entry("2026-01-02T00:00:00Z", "rollback", "uat", "v1", DIGEST, EARLIER, "a", "ok", ""),
                       history.entry("2026-01-01T00:00:00Z", "promote", "uat", "v1", EARLIER, DIGEST, "a", "ok", "")]
        return [{"metadata": {"namespace": "myproject", "annotations": {history.ANNOTATION_STREAM: "app"}},
                 "data": history.merge({}, list(reversed(rolled_back)), 20, "cm")}]

    monkeypatch.setattr(ImageStreamAPI, "connect", classmethod(connect))
    monkeypatch.setattr(tag_environments_info, "read_history", read_history)
    monkeypatch.setattr(tag_environments_info, "list_tags", list_tags)
    return seen


run = caller(tag_environments_info, NOWHERE)


@pytest.mark.parametrize("args,words", [
    ({"environment": "Not_A_Name"}, ["environment", "Not_A_Name"]),
    ({"environment": ["test", "uat"]}, ["environment"]),
    ({"namespace": ["Not_A_Namespace"]}, ["Not_A_Namespace"]),
    ({"known_environments": ["Bad_Name"]}, ["known_environments", "Bad_Name"]),
    ({"annotation_key": "not a key!"}, ["annotation_key"]),
    ({"query": "tags"}, ["query", "dict"]),
    ({"query": {"broken": "tags[?"}}, ["query.broken"]),
], ids=["environment-name", "environment-type", "namespace-name", "known-name", "annotation_key", "query-type",
        "query-expression"])
def test_bad_arguments_fail_naming_the_option_and_reach_nothing(run_module, calls, args, words):
    if "query" in args:
        pytest.importorskip("jmespath")
    result = run(run_module, Fail, **args)
    for word in words:
        assert word in result["msg"], result["msg"]
    assert calls == []


def test_the_defaults_list_the_whole_cluster(run_module, calls):
    run(run_module)
    assert calls[1] == ("list", API, None, "segmented.registry/environments", None)


def test_every_option_reaches_the_listing(run_module, calls):
    run(run_module, namespace=["payments", "myproject", "payments"], environment="default", annotation_key="environment")
    assert calls[1] == ("list", API, ["myproject", "payments"], "environment", "default")


def test_the_result_has_exactly_the_documented_keys(run_module, calls):
    result = run(run_module, namespace=["myproject"])
    assert set(result) == set(documented(tag_environments_info)) - {"query_results"} | {"changed"}
    assert result["changed"] is False
    assert result["tags"] == listing()["tags"]


def test_known_environments_add_each_tag_s_unknown_names(run_module, calls):
    result = run(run_module, namespace=["myproject"], known_environments=["test", "prod"])
    assert result["tags"][0]["unknown_environments"] == ["uat"]


def test_a_query_adds_its_results(run_module, calls):
    pytest.importorskip("jmespath")
    result = run(run_module, namespace=["myproject"], query={"names": "tags[].tag"})
    assert set(result) == set(documented(tag_environments_info)) | {"changed"}
    assert result["query_results"] == {"names": ["v1"]}


def test_without_rollbacks_the_history_is_not_read(run_module, calls):
    result = run(run_module, namespace=["myproject"])
    assert [call[0] for call in calls] == ["connect", "list"]
    assert "rollbacks" not in result["tags"][0]


def test_rollbacks_add_each_tag_s_rollbacks_in_force_read_through_the_same_cluster(run_module, calls):
    result = run(run_module, namespace=["myproject"], rollbacks=True)
    assert calls[2] == ("history", API.cluster, ["myproject"], True)  # a forbidden namespace is warned about
    assert result["tags"][0]["rollbacks"] == {"uat": {"rolled_back_from": DIGEST, "rolled_back_to": EARLIER}}


def test_rollbacks_of_the_whole_cluster_read_the_history_of_the_namespaces_with_a_tag(run_module, calls):
    run(run_module, rollbacks=True)
    assert calls[2] == ("history", API.cluster, ["myproject"], True)


def test_a_tag_without_a_rollback_gets_none(run_module, calls, monkeypatch):
    monkeypatch.setattr(tag_environments_info, "read_history", lambda cluster, namespaces, warn: [])
    result = run(run_module, namespace=["myproject"], rollbacks=True)
    assert result["tags"][0]["rollbacks"] == {}


def test_check_mode_lists_the_same_and_changes_nothing(run_module, calls):
    result = run(run_module, namespace=["myproject"], _ansible_check_mode=True)
    assert calls[0] == ("connect", True)
    assert result == dict(listing(), changed=False)


def test_check_mode_reads_the_rollbacks_the_same(run_module, calls):
    result = run(run_module, namespace=["myproject"], rollbacks=True, _ansible_check_mode=True)
    assert [call[0] for call in calls] == ["connect", "list", "history"]
    assert result["tags"][0]["rollbacks"] == {"uat": {"rolled_back_from": DIGEST, "rolled_back_to": EARLIER}}
