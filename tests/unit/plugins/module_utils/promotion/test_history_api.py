"""The promotion history's ConfigMaps on the registry cluster, through a real ``Cluster`` over the
in-memory API server (``fake_cluster``): resourceVersions, a stale write answered with 409 and
retried by the gateway, and a job's account without the history's rights (403)."""

import json

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError
from ansible_collections.segmented.registry.plugins.module_utils.promotion import history, history_api
from ansible_collections.segmented.registry.plugins.module_utils.promotion.history import HistoryError
from tests.unit.plugins.module_utils.fake_cluster import ApiError, fake_cluster

DIGEST = "sha256:" + "4a" * 32
KEY = ("ConfigMap", "myproject", "segmented-registry-history-app")
FORBIDDEN = 'configmaps is forbidden: User "system:serviceaccount:ci:promoter" cannot list resource "configmaps" in API group "" in the namespace "myproject"'


def entries(tag="v1", env="prod", digest=DIGEST, time="2026-12-05T18:09:48Z", namespace="myproject"):
    return {(namespace, "app"): [history.entry(time, "promote", env, tag, None, digest, "alice", "ok", "copied")]}


def configmap_writes(cluster):
    return [verb for verb, kind, _ns, _name in cluster.dynamic.writes if kind == "ConfigMap"]


def test_the_first_entry_creates_the_labelled_configmap_and_the_next_updates_it():
    cluster = fake_cluster()
    written, calls = history_api.record(cluster, entries(), 20)
    assert written == ["myproject/segmented-registry-history-app"] and calls == 2
    stored = cluster.dynamic.objects[KEY]
    assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "segmented.registry", "segmented.registry/history": "true"}
    assert stored["metadata"]["annotations"] == {history.ANNOTATION_STREAM: "app"}
    history_api.record(cluster, entries(digest="sha256:" + "5b" * 32, time="2026-12-05T18:10:00Z"), 20)
    assert configmap_writes(cluster) == ["create", "replace"]
    put = [body for method, path, body, _params in cluster.dynamic.requests if method == "put"][0]
    assert put["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]  # conditional on what was read
    stored = cluster.dynamic.objects[KEY]
    assert [item["digest_after"] for item in json.loads(stored["data"]["v1.prod"])] == ["sha256:" + "5b" * 32, DIGEST]
    rows = history.flatten(history_api.read(cluster, ["myproject"]))
    assert [row["stream"] for row in rows] == ["app", "app"]
    assert history_api.read(cluster, ["elsewhere"]) == []


def test_a_write_that_lands_in_between_is_kept_the_run_reads_again_and_merges():
    cluster = fake_cluster()
    history_api.record(cluster, entries(), 20)
    server = cluster.dynamic
    request = server.request

    def racing(method, path, *args, **kwargs):
        if method == "put" and not getattr(server, "raced", False):
            server.raced = True
            history_api.record(cluster, entries(env="uat"), 20)  # another run writes between our read and our write
        return request(method, path, *args, **kwargs)

    server.request = racing
    written, calls = history_api.record(cluster, entries(tag="v2"), 20)
    assert sorted(server.objects[KEY]["data"]) == ["v1.prod", "v1.uat", "v2.prod"]  # nothing lost: the 409 made it read again
    assert calls == 4  # get, refused replace, get, replace


def test_a_configmap_of_that_name_not_made_by_the_collection_is_left_alone():
    cluster = fake_cluster([{"apiVersion": "v1", "kind": "ConfigMap", "data": {"mine": "x"},
                             "metadata": {"name": "segmented-registry-history-app", "namespace": "myproject"}}])
    with pytest.raises(HistoryError, match="was not made by this collection.*rename or delete"):
        history_api.record(cluster, entries(), 20)
    assert cluster.dynamic.writes == []


def test_a_limit_of_zero_creates_nothing():
    cluster = fake_cluster()
    assert history_api.record(cluster, entries(), 0) == ([], 1)
    assert cluster.dynamic.objects == {}


def test_a_forbidden_read_is_a_warning_naming_the_right_the_namespace_and_the_fix_and_reads_as_no_history():
    cluster = fake_cluster()
    history_api.record(cluster, entries(namespace="other"), 20)
    cluster.dynamic.refuse("get", "/namespaces/myproject/configmaps", ApiError(403, FORBIDDEN, reason="Forbidden"))
    warnings = []
    found = history_api.read(cluster, ["myproject", "other"], warnings.append)
    assert [item["metadata"]["namespace"] for item in found] == ["other"]  # the readable namespace still counts
    (warning,) = warnings
    for words in ("403", "list on configmaps", "namespace myproject", "registry_cluster_history_editors", "edit role in myproject", "not honoured"):
        assert words in warning


def test_a_forbidden_read_without_warn_fails_saying_nothing_changed():
    cluster = fake_cluster()
    cluster.dynamic.refuse("get", "/configmaps", ApiError(403, FORBIDDEN, reason="Forbidden"))
    with pytest.raises(history_api.HistoryForbidden, match="list on configmaps.*registry_cluster_history_editors.*nothing was changed"):
        history_api.read(cluster, ["myproject"])


def test_a_forbidden_write_is_a_warning_and_the_other_namespaces_are_written():
    cluster = fake_cluster()
    cluster.dynamic.refuse("get", "/namespaces/myproject/configmaps/", ApiError(403, FORBIDDEN, reason="Forbidden"))
    warnings = []
    written, _calls = history_api.record(cluster, {**entries(), **entries(namespace="other")}, 20, warnings.append)
    assert written == ["other/segmented-registry-history-app"]
    (warning,) = warnings
    for words in ("get, create and update on configmaps", "namespace myproject", "registry_cluster_history_editors", "not in its history"):
        assert words in warning
    with pytest.raises(history_api.HistoryForbidden, match="pin is not recorded"):
        cluster.dynamic.refuse("post", "/configmaps", ApiError(403, FORBIDDEN, reason="Forbidden"))
        history_api.record(cluster, entries(), 20)


def test_other_errors_are_not_warnings():
    cluster = fake_cluster()
    cluster.dynamic.refuse("get", "/configmaps", ApiError(500, "etcdserver: request timed out", reason="Internal Server Error"))
    with pytest.raises(ClusterError) as raised:
        history_api.read(cluster, ["myproject"], pytest.fail)
    assert raised.value.status == 500


def test_a_namespace_deleted_meanwhile_is_a_warning_and_the_others_are_written():
    """A deleted stream's demotion can come after its namespace is gone: its history went with it."""
    cluster = fake_cluster()
    gone = ApiError(404, 'namespaces "myproject" not found', reason="Not Found")
    cluster.dynamic.refuse("post", "/namespaces/myproject/configmaps", gone)
    warnings = []
    written, _calls = history_api.record(cluster, {**entries(), **entries(namespace="other")}, 20, warnings.append)
    assert written == ["other/segmented-registry-history-app"]
    (warning,) = warnings
    assert warning.startswith("what this run did to myproject/app is not in its history: namespace myproject no longer exists (")
    assert 'namespaces "myproject" not found' in warning
    cluster.dynamic.refuse("post", "/namespaces/myproject/configmaps", gone)
    with pytest.raises(ClusterError):  # a rollback's pin must be recorded
        history_api.record(cluster, entries(), 20)
