"""The one gateway to a cluster (plugins/module_utils/cluster.py), against an in-memory API server
behind the kubernetes client's dynamic ``request`` (fake_cluster.py)."""

import pytest

from ansible_collections.segmented.registry.plugins.module_utils import cluster, kube
from ansible_collections.segmented.registry.plugins.module_utils.cluster import NAMESPACE, SECRET, SERVICE_ACCOUNT, Cluster
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, Conflict, Gone

from .fake_cluster import ApiError, fake_cluster

TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"


def secret(name="pull", namespace="app", **data):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "type": "Opaque", "data": data}


def test_fixed_kinds_have_their_paths_without_discovery():
    assert SECRET.path("pull", "app") == "/api/v1/namespaces/app/secrets/pull"
    assert NAMESPACE.path("app", "ignored") == "/api/v1/namespaces/app"
    assert SERVICE_ACCOUNT.path("sa", "ns", "token") == "/api/v1/namespaces/ns/serviceaccounts/sa/token"
    assert cluster.ROLE_BINDING.path(namespace="ns") == "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/rolebindings"
    found = fake_cluster()
    assert found.kind("v1", "Secret") is SECRET
    assert found.dynamic.lookups == []


def test_a_kind_is_looked_up_once_per_cluster():
    found = fake_cluster()
    first = found.kind("image.openshift.io/v1", "ImageStream")
    second = found.kind("image.openshift.io/v1", "ImageStream")
    assert first == second == cluster.Kind("image.openshift.io/v1", "ImageStream", "imagestreams", True)
    assert found.dynamic.lookups == [("image.openshift.io/v1", "ImageStream")]


def test_a_kind_the_cluster_does_not_serve_names_the_cluster_and_the_fix():
    found = fake_cluster(kinds={})
    with pytest.raises(ClusterError, match=r"the cluster at https://api.example.com:6443 does not serve image.openshift.io/v1 ImageStream: .*auth options"):
        found.kind("image.openshift.io/v1", "ImageStream")
    with pytest.raises(ClusterError, match="^point elsewhere$"):
        found.kind("image.openshift.io/v1", "ImageStream", missing="point elsewhere")


def test_get_answers_the_servers_json_and_none_on_404():
    found = fake_cluster([secret()])
    got = found.get(SECRET, "pull", "app")
    assert isinstance(got, dict) and got["metadata"]["name"] == "pull"
    assert found.get(SECRET, "absent", "app") is None


def test_a_403_names_the_host_what_was_done_and_carries_the_status():
    found = fake_cluster()
    found.dynamic.refuse("get", "/secrets/pull", ApiError(403, 'secrets "pull" is forbidden: User "dev" cannot get resource "secrets"'))
    with pytest.raises(ClusterError) as caught:
        found.get(SECRET, "pull", "app")
    assert str(caught.value) == (
        'no permission to read Secret app/pull (403 Forbidden at https://api.example.com:6443): secrets "pull" is forbidden: '
        'User "dev" cannot get resource "secrets"'
    )
    assert caught.value.status == 403


def test_a_401_says_which_credentials_to_check():
    found = fake_cluster(where="the registry cluster")
    found.dynamic.refuse("get", "/secrets", ApiError(401, "Unauthorized"))
    with pytest.raises(ClusterError, match="the API server at the registry cluster did not accept the credentials .* check api_key / kubeconfig"):
        found.list(SECRET, "app")


def test_no_answer_says_the_server_cannot_be_reached():
    found = fake_cluster()
    found.dynamic.refuse("get", "/namespaces/app", ConnectionRefusedError("Connection refused"))
    with pytest.raises(ClusterError, match="cannot reach the API server at https://api.example.com:6443 to read Namespace app: Connection refused"):
        found.get(NAMESPACE, "app")


def test_a_stale_replace_is_a_conflict():
    found = fake_cluster([secret()])
    old = found.get(SECRET, "pull", "app")
    found.dynamic.put(dict(old, data={"k": "changed"}), "MODIFIED")
    with pytest.raises(Conflict):
        found.replace(SECRET, dict(old, data={"k": "mine"}))


def test_edit_reads_again_and_retries_on_conflict():
    found = fake_cluster([secret(k="v0")])
    seen = []

    def compute(current):
        seen.append(current["data"]["k"])
        if len(seen) == 1:  # another writer lands between this read and this write
            found.dynamic.put(dict(current, data={"k": "theirs"}), "MODIFIED")
        return dict(current, data={"k": current["data"]["k"] + "+mine"})

    written = found.edit(SECRET, "pull", "app", compute)
    assert seen == ["v0", "theirs"]
    assert written["data"] == {"k": "theirs+mine"}
    assert found.get(SECRET, "pull", "app")["data"] == {"k": "theirs+mine"}


def test_edit_gives_up_after_max_attempts_naming_the_object():
    found = fake_cluster([secret(k="v0")])

    def always_raced(current):
        found.dynamic.put(dict(current), "MODIFIED")
        return dict(current, data={"k": "mine"})

    with pytest.raises(ClusterError, match="Secret app/pull kept changing while it was being edited .*run again"):
        found.edit(SECRET, "pull", "app", always_raced)
    puts = [r for r in found.dynamic.requests if r[0] == "put"]
    assert len(puts) == cluster.MAX_ATTEMPTS


def test_edit_creates_what_is_absent_and_writes_nothing_without_a_change():
    found = fake_cluster()
    assert found.edit(SECRET, "pull", "app", lambda current: None) is None
    created = found.edit(SECRET, "pull", "app", lambda current: secret(k="v"))
    assert created["metadata"]["resourceVersion"]
    assert [r[0] for r in found.dynamic.requests] == ["get", "get", "post"]


@pytest.mark.parametrize("content_type", [cluster.MERGE, cluster.STRATEGIC, cluster.JSON_PATCH])
def test_patch_sends_an_explicit_content_type(content_type):
    found = fake_cluster([secret(k="v")])
    body = [{"op": "add", "path": "/data/x", "value": "y"}] if content_type == cluster.JSON_PATCH else {"data": {"x": "y"}}
    found.patch(SECRET, "pull", "app", body, content_type)
    method, path, _body, params = found.dynamic.requests[-1]
    assert (method, path, params["content_type"]) == ("patch", "/api/v1/namespaces/app/secrets/pull", content_type)
    assert found.get(SECRET, "pull", "app")["data"] == {"k": "v", "x": "y"}


def test_a_patch_of_another_content_type_is_refused_before_any_request():
    found = fake_cluster([secret()])
    with pytest.raises(ClusterError, match="patch content type application/json is none of"):
        found.patch(SECRET, "pull", "app", {}, "application/json")
    assert found.dynamic.requests == []


def test_a_failed_json_patch_test_is_a_lost_race():
    found = fake_cluster([secret(k="v")])
    with pytest.raises(Conflict) as caught:
        found.patch(SECRET, "pull", "app", [{"op": "test", "path": "/data/k", "value": "other"}], cluster.JSON_PATCH)
    assert caught.value.lost_race


def test_an_invalid_object_is_no_conflict():
    found = fake_cluster([secret()])
    found.dynamic.refuse("patch", "/secrets/pull", ApiError(422, "Secret is invalid", details={"kind": "Secret", "name": "pull"}))
    with pytest.raises(ClusterError, match=r"refused to update Secret app/pull \(422\): Secret is invalid") as caught:
        found.patch(SECRET, "pull", "app", {}, cluster.MERGE)
    assert not isinstance(caught.value, Conflict)


def test_check_mode_sends_every_write_as_a_dry_run():
    found = fake_cluster([secret()], dry_run=True)
    found.create(SECRET, secret("new"))
    found.patch(SECRET, "pull", "app", {"data": {"x": "y"}}, cluster.MERGE)
    found.delete(SECRET, "pull", "app")
    assert [r[3].get("dry_run") for r in found.dynamic.requests] == ["All", "All", "All"]
    assert found.get(SECRET, "new", "app") is None and found.get(SECRET, "pull", "app")["data"] == {}


def test_delete_of_what_is_gone_is_fine_only_when_asked():
    found = fake_cluster()
    assert found.delete(SECRET, "pull", "app", missing_ok=True) is None
    with pytest.raises(ClusterError, match="delete Secret app/pull") as caught:
        found.delete(SECRET, "pull", "app")
    assert caught.value.status == 404


def test_a_token_request_answers_the_token_and_a_refusal_never_shows_it():
    found = fake_cluster([{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "ns"}}], dry_run=True)
    answer = found.create_token("ns", "sa", {"expirationSeconds": 600})
    assert answer["status"]["token"] == "token-1"
    assert "dry_run" not in found.dynamic.requests[-1][3]
    found.dynamic.refuse("post", "/token", ApiError(500, "internal error", reason="Internal Server Error"))
    with pytest.raises(ClusterError) as caught:
        found.create_token("ns", "sa", {"expirationSeconds": 600, "audiences": [TOKEN]})
    assert TOKEN not in str(caught.value) and "mint a token for service account ns/sa" in str(caught.value)


def test_access_review_answers_allowed_and_reason():
    found = fake_cluster(allowed=lambda attributes: attributes["verb"] == "get")
    assert found.access_review({"verb": "get", "resource": "secrets", "namespace": "app"}) == (True, "")
    assert found.access_review({"verb": "delete", "resource": "secrets", "namespace": "app"}) == (False, "no RBAC policy matched")
    assert found.dynamic.requests[-1][1] == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def test_list_from_and_watch_carry_on_from_the_listed_version():
    found = fake_cluster([secret("a")])
    items, version = found.list_from(SECRET, "app")
    assert [item["metadata"]["name"] for item in items] == ["a"]
    found.dynamic.put(secret("b"))
    events = list(found.watch(SECRET, "app", version, timeout_seconds=5))
    assert [(event["type"], event["object"]["metadata"].get("name")) for event in events] == [("ADDED", "b"), ("BOOKMARK", None)]
    params = found.dynamic.requests[-1][3]
    assert params["watch"] and params["resource_version"] == version and params["timeout_seconds"] == 5 and params["allow_watch_bookmarks"]


def test_a_watch_read_to_its_end_hands_its_connection_back_and_one_left_early_is_closed_first():
    found = fake_cluster([secret("a")])
    _items, version = found.list_from(SECRET, "app")
    found.dynamic.put(secret("b"))
    found.dynamic.put(secret("c"))
    list(found.watch(SECRET, "app", version, timeout_seconds=5))
    whole = found.dynamic.streams[-1]
    assert whole.released and not whole.closed
    changes = found.watch(SECRET, "app", version, timeout_seconds=5)
    assert next(changes)["object"]["metadata"]["name"] == "b"
    changes.close()  # the caller stops reading: the rest of the stream must not reach the next request
    left = found.dynamic.streams[-1]
    assert left.closed and left.released


def test_a_log_is_read_whole_or_followed_line_by_line_for_the_named_container():
    found = fake_cluster([])
    found.dynamic.logs["copier-x"] = 'copier: 1 items\n{"id":0,"result":"copied"}\n{"summary":{"copied":1}}\n'
    assert found.log("app", "copier-x", "copier") == found.dynamic.logs["copier-x"]
    assert found.dynamic.requests[-1][3]["query_params"] == [("container", "copier")]
    assert list(found.follow_log("app", "copier-x", "copier", 30)) == ["copier: 1 items", '{"id":0,"result":"copied"}', '{"summary":{"copied":1}}']
    assert found.dynamic.requests[-1][3]["query_params"] == [("container", "copier"), ("follow", "true")]
    assert found.dynamic.requests[-1][3]["_request_timeout"] == 30
    assert found.dynamic.streams[-1].released and not found.dynamic.streams[-1].closed
    lines = found.follow_log("app", "copier-x", None, 30)
    assert next(lines) == "copier: 1 items"
    lines.close()  # stopped at a line: the container may still be writing, the stream is closed
    assert found.dynamic.streams[-1].closed and found.dynamic.streams[-1].released
    assert found.dynamic.requests[-1][3]["query_params"] == [("follow", "true")]


def test_a_watch_from_a_version_no_longer_kept_raises_gone():
    found = fake_cluster([secret("a")])
    found.dynamic.oldest = 10_000
    with pytest.raises(Gone, match="list again"):
        list(found.watch(SECRET, "app", "5", timeout_seconds=5))
    found.dynamic.refuse("get", "/secrets", ApiError(410, "too old resource version"))
    with pytest.raises(Gone):
        list(found.watch(SECRET, "app", "5", timeout_seconds=5))


def test_a_cluster_is_built_from_the_auth_options_without_discovery(monkeypatch):
    class Module:
        params = {"host": "https://api.example.com:6443", "api_key": TOKEN, "validate_certs": True}
        check_mode = True

    monkeypatch.delenv("K8S_AUTH_KUBECONFIG", raising=False)
    built = Cluster.of_module(Module())
    assert built.host == "https://api.example.com:6443" and built.dry_run
    assert built.dynamic.resources._discoverer is None


def test_auth_options_without_a_usable_configuration_name_the_options(monkeypatch, tmp_path):
    class Module:
        params = {"kubeconfig": str(tmp_path / "absent")}
        check_mode = False

    with pytest.raises(ClusterError, match="could not set up the API client from the auth options"):
        Cluster.of_module(Module())
    assert kube.HAS_KUBERNETES


@pytest.mark.parametrize("chunks", [
    [b'{"a":1}\n{"b":2}\n', b'{"c":3}\n'],
    [b'{"a"', b':1}\n{"b":2}\n{"c"', b":3}"],  # lines cut across chunks, the last one without its newline
    [b'{"a":1}\n\n', b"\n", b'{"b":2}\n{"c":3}\n'],  # empty lines are left out
    [b'{"a":1}\n{"b":2}\n{"c":3}\n'],
], ids=["whole-lines", "cut-lines", "empty-lines", "one-chunk"])
def test_a_stream_is_cut_into_its_lines_whatever_its_chunks(chunks):
    class Answer:
        def stream(self, amt=None, decode_content=False):
            yield from chunks

    assert list(cluster._lines(Answer())) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
