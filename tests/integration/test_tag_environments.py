"""segmented.registry.tag_environments and tag_environments_info on the lab's first consumer cluster
(issue 3): every lab cluster serves ImageStreams, and a tag edited there is read by no promotion,
so these tests run beside the lab lane (tests/conftest.py), whose reconciles read the registry
cluster's streams whole. (promote.yml and demote.yml: test_promote.py.)

Every module run goes through ansible-playbook (ansible-runner, as AWX runs it)."""
import copy
import hashlib
import http.client
import http.server
import json
import re
import socket
import ssl
import statistics
import sys
import threading
import time
import urllib.parse
import uuid

import pytest
import yaml
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from lab import image, pki
from tests.integration import promotion_lab
from tests.integration.runs import host_results, task_result

KEY = "segmented.registry/environments"
KNOWN = ["test", "uat", "prod"]
TE = "tests/integration/playbooks/tag_environments.yml"
TE_INFO = "tests/integration/playbooks/tag_environments_info.yml"
STORM = "tests/integration/playbooks/tag_environments_storm.yml"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def cluster_of(lab):
    """The cluster these tests edit tags on: the lab's first consumer cluster."""
    return sorted(lab.layout.consumers)[0]


def fake_digest(seed):
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


@pytest.fixture(scope="module")
def registry_api(lab):
    return lab.api_client(cluster_of(lab))


@pytest.fixture(scope="module")
def streams(registry_api):
    return DynamicClient(registry_api).resources.get(api_version="image.openshift.io/v1", kind="ImageStream")


@pytest.fixture(scope="module")
def lab_auth(lab):
    return {"kubeconfig": lab.kubeconfig, "context": cluster_of(lab)}


@pytest.fixture
def namespace(registry_api, unique):
    """A fresh namespace on the cluster of these tests, deleted afterwards."""
    core = kclient.CoreV1Api(registry_api)
    name = "te-" + unique
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException:
        pass


def get_stream(streams, namespace, name):
    return streams.get(name=name, namespace=namespace).to_dict()


def spec_annotations(stream, tag):
    for item in (stream.get("spec") or {}).get("tags") or []:
        if item["name"] == tag:
            return item.get("annotations") or {}
    return None


def record_push(registry_api, lab, namespace, stream, tag, seed):
    """Record a pushed image in the ImageStream's status, the way the integrated registry does
    (status only, no spec tag); returns the digest."""
    digest = fake_digest(seed)
    image.record_push(registry_api, namespace, stream, tag, digest, lab.layout.integrated_endpoint, max_attempts=50)
    return digest


def make_stream(streams, namespace, name, spec=None, labels=None, annotations=None):
    body = {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": spec or {}}
    return streams.create(body=body, namespace=namespace).to_dict()


def set_annotation_by_hand(streams, namespace, name, tag, value, key=KEY):
    stream = get_stream(streams, namespace, name)
    for item in stream["spec"]["tags"]:
        if item["name"] == tag:
            item.setdefault("annotations", {})[key] = value
    return streams.replace(body=stream, namespace=namespace).to_dict()


def scrub(text, *secrets):
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@pytest.fixture
def tag_environments(run_playbook, lab_auth):
    """tag_environments(check=False, diff=False, auth=None, envvars=None, **module options) -> the
    registered result (a failed one too: check result['failed'])."""
    def run(check=False, diff=False, auth=None, envvars=None, **args):
        runner = run_playbook(TE, extravars={"te_args": args, "te_auth": dict(lab_auth if auth is None else auth),
                                             "te_check": check, "te_diff": diff},
                              envvars=envvars)
        secrets = [(auth or {}).get("api_key"), (envvars or {}).get("K8S_AUTH_API_KEY")]
        assert runner.status == "successful", scrub(runner.stdout_text, *secrets)
        result = task_result(runner, "Edit the environment list")
        text = json.dumps(result)
        for secret in secrets:
            assert not secret or secret not in text, "a token leaked into the result"
        return result
    return run


@pytest.fixture
def tag_environments_info(run_playbook, lab_auth, tmp_path):
    def run(**args):
        out = tmp_path / (f"info-{uuid.uuid4().hex}.json")
        runner = run_playbook(TE_INFO, extravars={"te_args": args, "te_auth": lab_auth, "te_out": str(out)})
        assert runner.status == "successful", runner.stdout_text
        return json.loads(out.read_text())
    return run


def text(runner):
    """The playbook's output without colours, whitespace collapsed (the YAML callback folds lines)."""
    return re.sub(r"\s+", " ", re.sub(r"\x1b\[[0-9;]*m", "", runner.stdout_text))


def changed_count(runner, host="localhost"):
    """How many tasks reported changed on the host."""
    return (runner.stats or {}).get("changed", {}).get(host, 0)


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


# ---------------------------------------------------------------------------------------------
# a TLS proxy in front of the API server of these tests' cluster: what reached it, and a write that
# lands between the module's read and its own write
# ---------------------------------------------------------------------------------------------


class ApiProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to the API server and records (method, path, query, content type,
    body, status) in ``requests``. ``before_write(method, path)``, when set, runs just before a
    write request (PATCH, PUT, POST, DELETE) is forwarded: a push or another edit landing
    between the module's read and its write. Its own errors go to ``errors``."""

    daemon_threads = True

    def __init__(self, upstream_port, upstream_ca, cert, key):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream_port = upstream_port
        self.upstream_context = ssl.create_default_context(cafile=upstream_ca)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.url = f"https://127.0.0.1:{int(self.server_address[1])}"
        self.requests = []
        self.errors = []
        self.before_write = None
        self.lock = threading.Lock()

    def writes(self, path_suffix=""):
        return [r for r in self.requests if r["method"] in ("PATCH", "PUT", "POST", "DELETE")
                and r["path"].endswith(path_suffix)]


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self):
        proxy = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urllib.parse.urlsplit(self.path)
        if self.command in ("PATCH", "PUT", "POST", "DELETE") and proxy.before_write:
            try:
                proxy.before_write(self.command, url.path)
            except Exception as exc:  # reported by the test, never hidden
                proxy.errors.append(repr(exc))
        upstream = http.client.HTTPSConnection("127.0.0.1", proxy.upstream_port, context=proxy.upstream_context,
                                               timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        answer = upstream.getresponse()
        payload = answer.read()
        upstream.close()
        with proxy.lock:
            proxy.requests.append({"method": self.command, "path": url.path, "query": urllib.parse.parse_qs(url.query),
                                   "content_type": self.headers.get("Content-Type"), "body": body,
                                   "status": answer.status})
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _forward


@pytest.fixture
def api_proxy(lab, tmp_path):
    """An ApiProxy in front of the API server of these tests' cluster, with a server certificate of its own CA."""
    authority = pki.Authority(str(tmp_path / "proxy-pki"))
    cert, key = authority.issue("proxy", "proxy", hosts=("127.0.0.1",), server=True)
    proxy = ApiProxy(dict(lab.layout.clusters)[cluster_of(lab)], lab.ca.cert_path, cert, key)
    proxy.ca_cert = authority.cert_path
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()
    assert not proxy.errors, proxy.errors


class Auth(dict):
    """Auth options whose token never shows in a test report (pytest prints arguments)."""

    def __repr__(self):
        return repr(dict(self, api_key="***") if "api_key" in self else dict(self))


@pytest.fixture
def proxied_auth(lab, api_proxy, make_token, namespace, unique):
    """Auth options that reach that cluster through ``api_proxy`` as an editor of
    ``namespace`` (registry-editor)."""
    token = make_token("sa-" + unique, "editor", roles={namespace: "registry-editor"}, cluster=cluster_of(lab))
    return Auth(host=api_proxy.url, ca_cert=api_proxy.ca_cert, api_key=token)


def stream_writes(proxy, namespace, stream):
    return proxy.writes(f"/namespaces/{namespace}/imagestreams/{stream}")


# ---------------------------------------------------------------------------------------------
# add / remove / exact, idempotent; pushed-only tag; check mode; diff
# ---------------------------------------------------------------------------------------------


def test_pushed_only_tag_add_remove_exact_each_idempotent(lab, registry_api, streams, namespace, tag_environments):
    digest = record_push(registry_api, lab, namespace, "app", "v1", f"{namespace}/app:v1")
    before = get_stream(streams, namespace, "app")
    assert spec_annotations(before, "v1") is None  # a push writes status only: no spec tag

    first = ok(tag_environments(namespace=namespace, name="app:v1", add=["test"], known_environments=KNOWN))
    assert first["changed"] is True
    assert first["environments_before"] == ["default"] and first["environments_after"] == ["test"]
    assert first["digest"] == digest
    after = get_stream(streams, namespace, "app")
    # The spec tag was created without `from`, touching nothing else.
    assert after["spec"]["tags"] == [{"name": "v1", "annotations": {KEY: "test"}, "referencePolicy": {"type": "Source"}}]
    assert after["status"] == before["status"]

    again = ok(tag_environments(namespace=namespace, name="app:v1", add=["test"], known_environments=KNOWN))
    assert again["changed"] is False and again["environments_after"] == ["test"]
    assert get_stream(streams, namespace, "app")["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]

    steps = [
        (dict(add=["uat", "prod"]), "prod,test,uat", ["prod", "test", "uat"]),
        (dict(remove=["prod"]), "test,uat", ["test", "uat"]),
        (dict(remove=["prod"]), "test,uat", ["test", "uat"]),  # not there: unchanged
        (dict(approved=["uat"]), "uat", ["uat"]),
        (dict(remove=["uat"]), None, ["default"]),  # last one: back to default
        (dict(approved=[]), None, ["default"]),
        (dict(approved=["prod", "test"]), "prod,test", ["prod", "test"]),
    ]
    for options, stored, shown in steps:
        result = ok(tag_environments(namespace=namespace, stream="app", tag="v1", **options))
        assert result["environments_after"] == shown, options
        assert spec_annotations(get_stream(streams, namespace, "app"), "v1").get(KEY) == stored, options
        version = get_stream(streams, namespace, "app")["metadata"]["resourceVersion"]
        rerun = ok(tag_environments(namespace=namespace, stream="app", tag="v1", **options))
        assert rerun["changed"] is False, options
        assert rerun["environments_before"] == rerun["environments_after"] == shown
        assert get_stream(streams, namespace, "app")["metadata"]["resourceVersion"] == version, options
    final = get_stream(streams, namespace, "app")
    assert final["status"] == before["status"]
    assert final["spec"]["tags"] == [{"name": "v1", "annotations": {KEY: "prod,test"},
                                      "referencePolicy": {"type": "Source"}}]


def test_check_mode_writes_nothing_and_reports(lab, registry_api, streams, namespace, tag_environments, api_proxy,
                                               proxied_auth):
    """Check mode sends the patch as a server-side dry run: the API server sees it (dryRun=All),
    writes nothing, and refuses it when its guard is stale, which the module then re-reads and
    retries like a real write."""
    make_stream(streams, namespace, "app")
    record_push(registry_api, lab, namespace, "app", "v1", namespace)
    version = get_stream(streams, namespace, "app")["metadata"]["resourceVersion"]

    checked = ok(tag_environments(check=True, auth=proxied_auth, namespace=namespace, name="app:v1", add=["uat"]))
    assert checked["changed"] is True and checked["environments_after"] == ["uat"] and checked["attempts"] == 1
    writes = stream_writes(api_proxy, namespace, "app")
    assert [(w["method"], w["query"].get("dryRun"), w["status"]) for w in writes] == [("PATCH", ["All"], 200)]
    assert writes[0]["content_type"] == "application/json-patch+json"
    stream = get_stream(streams, namespace, "app")
    assert stream["metadata"]["resourceVersion"] == version and spec_annotations(stream, "v1") is None

    ok(tag_environments(namespace=namespace, name="app:v1", add=["uat"]))
    version = get_stream(streams, namespace, "app")["metadata"]["resourceVersion"]
    checked = ok(tag_environments(check=True, namespace=namespace, name="app:v1", remove=["uat"]))
    assert checked["changed"] is True and checked["environments_after"] == ["default"]
    checked = ok(tag_environments(check=True, namespace=namespace, name="app:v1", add=["uat"]))
    assert checked["changed"] is False
    assert get_stream(streams, namespace, "app")["metadata"]["resourceVersion"] == version

    # Someone promotes the tag to test between the check run's read and its dry run: the server
    # refuses the stale dry run (422), the module reads again and previews the list with test in it.
    def promotion_meanwhile(method, path):
        if method == "PATCH" and path.endswith("/imagestreams/app") and not stream_writes(api_proxy, namespace, "app"):
            set_annotation_by_hand(streams, namespace, "app", "v1", "test,uat")

    del api_proxy.requests[:]
    api_proxy.before_write = promotion_meanwhile
    checked = ok(tag_environments(check=True, auth=proxied_auth, namespace=namespace, name="app:v1", add=["prod"]))
    assert checked["attempts"] == 2 and checked["environments_before"] == ["test", "uat"]
    assert checked["environments_after"] == ["prod", "test", "uat"]
    writes = stream_writes(api_proxy, namespace, "app")
    assert [(w["query"].get("dryRun"), w["status"]) for w in writes] == [(["All"], 422), (["All"], 200)]
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1") == {KEY: "test,uat"}


def test_diff_shows_the_list_before_and_after(lab, registry_api, streams, namespace, tag_environments):
    make_stream(streams, namespace, "app")
    record_push(registry_api, lab, namespace, "app", "v1", namespace)
    result = ok(tag_environments(diff=True, namespace=namespace, name="app:v1", add=["test", "uat"]))
    assert result["diff"]["before"] == {"environments": ["default"]}
    assert result["diff"]["after"] == {"environments": ["test", "uat"]}
    result = ok(tag_environments(diff=True, check=True, namespace=namespace, name="app:v1", approved=["prod"]))
    assert result["diff"]["before"] == {"environments": ["test", "uat"]}
    assert result["diff"]["after"] == {"environments": ["prod"]}
    assert "diff" not in ok(tag_environments(namespace=namespace, name="app:v1", add=["test"]))


def test_spec_tag_keeps_every_other_annotation_and_field(lab, registry_api, streams, namespace, tag_environments):
    spec = {
        "lookupPolicy": {"local": True},
        "tags": [
            {"name": "latest", "annotations": {"description": "tracks upstream", "openshift.io/display-name": "App",
                                               "environment": "hand-written"},
             "from": {"kind": "DockerImage", "name": "quay.example.com/team/app:latest"},
             "importPolicy": {"scheduled": True, "importMode": "Legacy"},
             "referencePolicy": {"type": "Local"}, "generation": 2},
            {"name": "stable", "from": {"kind": "ImageStreamTag", "name": "app:latest"},
             "referencePolicy": {"type": "Source"}},
        ],
    }
    make_stream(streams, namespace, "app", spec=spec, labels={"team": "a"}, annotations={"owner": "team-a"})
    digest = record_push(registry_api, lab, namespace, "app", "latest", namespace)
    record_push(registry_api, lab, namespace, "app", "v9", namespace + "v9")
    before = get_stream(streams, namespace, "app")

    result = ok(tag_environments(namespace=namespace, name="app:latest", add=["uat", "test"]))
    assert result["changed"] and result["digest"] == digest
    after = get_stream(streams, namespace, "app")
    expected = copy.deepcopy(before["spec"])
    expected["tags"][0]["annotations"][KEY] = "test,uat"
    assert after["spec"] == expected
    assert after["status"] == before["status"]
    for field in ("labels", "annotations", "uid", "name", "namespace"):
        assert after["metadata"].get(field) == before["metadata"].get(field)

    # The proposal's key is a separate annotation: setting it leaves ours alone.
    result = ok(tag_environments(namespace=namespace, name="app:latest", annotation_key="environment",
                                 approved=["prod"]))
    # the spec tag already carries environment: hand-written (a valid name): that is the list before
    assert result["environments_before"] == ["hand-written"] and result["changed"]
    annotations = spec_annotations(get_stream(streams, namespace, "app"), "latest")
    assert annotations == {"description": "tracks upstream", "openshift.io/display-name": "App",
                           "environment": "prod", KEY: "test,uat"}


def test_hand_written_values_are_read_tolerantly_and_written_canonically(streams, namespace, tag_environments):
    make_stream(streams, namespace, "app", spec={"tags": [{"name": "v1", "annotations": {KEY: " uat,\n test ,test"}}]})
    # Nothing to change: the hand-written value is left as it is.
    same = ok(tag_environments(namespace=namespace, name="app:v1", add=["test"]))
    assert same["changed"] is False and same["environments_after"] == ["test", "uat"]
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1")[KEY] == " uat,\n test ,test"
    # A change writes the canonical form.
    ok(tag_environments(namespace=namespace, name="app:v1", add=["prod"]))
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1")[KEY] == "prod,test,uat"
    set_annotation_by_hand(streams, namespace, "app", "v1", '["uat", "test"]')
    result = ok(tag_environments(namespace=namespace, name="app:v1", remove=["uat"]))
    assert result["environments_before"] == ["test", "uat"]
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1")[KEY] == "test"
    # An unreadable value stops add/remove, and the exact list repairs it, showing the old value.
    set_annotation_by_hand(streams, namespace, "app", "v1", "test; uat")
    refused = tag_environments(namespace=namespace, name="app:v1", add=["prod"])
    assert refused["failed"] and '"test; uat"' in refused["msg"]
    repaired = ok(tag_environments(namespace=namespace, name="app:v1", approved=["uat", "test"]))
    assert repaired["changed"] and repaired["environments_before"] is None
    assert any('"test; uat"' in warning for warning in repaired["warnings"])
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1")[KEY] == "test,uat"


def test_auth_from_k8s_auth_environment_variables(lab, registry_api, streams, namespace, make_token,
                                                  tag_environments, unique):
    """AWX's credential injects K8S_AUTH_HOST / _API_KEY / _SSL_CA_CERT; no auth option is given."""
    make_stream(streams, namespace, "app")
    record_push(registry_api, lab, namespace, "app", "v1", namespace)
    token = make_token("sa-" + unique, "promoter", roles={namespace: "registry-editor"}, cluster=cluster_of(lab))
    envvars = {"K8S_AUTH_HOST": f"https://127.0.0.1:{int(dict(lab.layout.clusters)[cluster_of(lab)])}",
               "K8S_AUTH_API_KEY": token, "K8S_AUTH_SSL_CA_CERT": lab.ca.cert_path}
    result = ok(tag_environments(auth={}, envvars=envvars, namespace=namespace, name="app:v1", add=["uat"]))
    assert result["changed"] and spec_annotations(get_stream(streams, namespace, "app"), "v1") == {KEY: "uat"}
    managers = [entry["manager"] for entry in get_stream(streams, namespace, "app")["metadata"]["managedFields"]]
    assert "segmented.registry" in managers


# ---------------------------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------------------------


def first_patch_of(proxy, namespace, stream, action):
    """A before_write hook: ``action()`` once, just before the first PATCH of the stream."""
    def hook(method, path):
        if method == "PATCH" and path.endswith(f"/namespaces/{namespace}/imagestreams/{stream}") \
                and not stream_writes(proxy, namespace, stream):
            action()
    return hook


def test_a_push_or_an_edit_of_another_tag_between_read_and_write_needs_no_retry(
        lab, registry_api, streams, namespace, tag_environments, api_proxy, proxied_auth):
    """Pushes (status writes, to this tag and another) and an edit of another tag's annotation
    land between the module's read and its write, for a spec tag and for a pushed-only tag: the
    patch applies at once (attempts 1, one PATCH), and nothing of theirs is lost."""
    make_stream(streams, namespace, "app", spec={"tags": [
        {"name": "base", "annotations": {"note": "keep"}},
        {"name": "other", "annotations": {KEY: "test"}}]})
    for tag in ("base", "v1", "sibling"):
        record_push(registry_api, lab, namespace, "app", tag, namespace + tag)
    pushed = []

    def meanwhile(tag, other):
        def act():
            before = get_stream(streams, namespace, "app")["metadata"]["resourceVersion"]
            for target in (tag, "sibling"):
                pushed.append((target, record_push(registry_api, lab, namespace, "app", target,
                                                   f"{namespace}-{target}-{len(pushed)}")))
            set_annotation_by_hand(streams, namespace, "app", "other", other)
            assert get_stream(streams, namespace, "app")["metadata"]["resourceVersion"] != before
        return act

    for tag, env, other in (("base", "uat", "prod"), ("v1", "prod", "prod,test")):  # a spec tag, a pushed-only tag
        del api_proxy.requests[:]
        api_proxy.before_write = first_patch_of(api_proxy, namespace, "app", meanwhile(tag, other))
        result = ok(tag_environments(auth=proxied_auth, namespace=namespace, name="app:" + tag, add=[env]))
        assert result["changed"] and result["attempts"] == 1, result
        writes = stream_writes(api_proxy, namespace, "app")
        assert [(w["method"], w["status"]) for w in writes] == [("PATCH", 200)], tag
        assert b"resourceVersion" not in writes[0]["body"]
        assert result["digest"] == pushed[-2][1]  # the answer shows the push that landed meanwhile
    final = get_stream(streams, namespace, "app")
    assert spec_annotations(final, "base") == {"note": "keep", KEY: "uat"}
    assert spec_annotations(final, "v1") == {KEY: "prod"}
    assert spec_annotations(final, "other") == {KEY: "prod,test"}
    for tag in ("base", "v1", "sibling"):
        images = [event["image"] for item in final["status"]["tags"] if item["tag"] == tag for event in item["items"]]
        assert images[0] == [d for t, d in pushed if t == tag][-1], tag  # every push stands
        assert {d for t, d in pushed if t == tag} <= set(images), tag


def test_an_edit_of_the_same_tag_between_read_and_write_is_retried_and_kept(
        lab, registry_api, streams, namespace, tag_environments, api_proxy, proxied_auth):
    """Another promotion of the same tag lands between the module's read and its write, on a
    spec tag and on a pushed-only tag (which it turns into a spec tag): the server refuses the
    module's patch (its test fails: 422), the module reads again, recomputes, and both edits
    stand (attempts 2)."""
    make_stream(streams, namespace, "app", spec={"tags": [{"name": "spec", "annotations": {KEY: "test"}}]})
    record_push(registry_api, lab, namespace, "app", "pushed", namespace)

    def spec_tag_promoted():
        set_annotation_by_hand(streams, namespace, "app", "spec", "test,uat")

    def pushed_tag_promoted():
        current = get_stream(streams, namespace, "app")
        current["spec"]["tags"].append({"name": "pushed", "annotations": {KEY: "uat"},
                                        "referencePolicy": {"type": "Source"}})
        streams.replace(body=current, namespace=namespace)

    for tag, action, expected in (("spec", spec_tag_promoted, "prod,test,uat"),
                                  ("pushed", pushed_tag_promoted, "prod,uat")):
        del api_proxy.requests[:]
        api_proxy.before_write = first_patch_of(api_proxy, namespace, "app", action)
        result = ok(tag_environments(auth=proxied_auth, namespace=namespace, name="app:" + tag, add=["prod"]))
        assert result["attempts"] == 2 and result["environments_after"] == expected.split(","), result
        assert [w["status"] for w in stream_writes(api_proxy, namespace, "app")] == [422, 200], tag
        entries = [t for t in get_stream(streams, namespace, "app")["spec"]["tags"] if t["name"] == tag]
        assert len(entries) == 1 and entries[0]["annotations"][KEY] == expected, entries


class Pusher(threading.Thread):
    """Records pushes to ``tag`` of a stream (status writes, as the integrated registry does),
    one every few milliseconds, until stopped; ``pushed`` lists the digests that landed."""

    def __init__(self, lab, namespace, stream, tag):
        super().__init__(daemon=True)
        self.resource = DynamicClient(lab.api_client(cluster_of(lab))).resources.get(
            api_version="image.openshift.io/v1", kind="ImageStream")
        self.lab, self.namespace, self.stream, self.tag = lab, namespace, stream, tag
        self.stop = threading.Event()
        self.pushed = []
        self.errors = []

    def run(self):
        while not self.stop.is_set():
            digest = fake_digest(f"{self.namespace}-{self.tag}-{len(self.pushed)}")
            current = self.resource.get(name=self.stream, namespace=self.namespace).to_dict()
            updated, _changed = image.apply_push(current, self.tag, digest, self.lab.layout.integrated_endpoint,
                                                 image.rfc3339_now())
            try:
                self.resource.status.replace(body=updated, namespace=self.namespace)
                self.pushed.append(digest)
            except ApiException as exc:
                if exc.status != 409:
                    self.errors.append(exc.status)
                    return
            time.sleep(0.002)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(30)

    def check(self, imagestream, at_least):
        """No push was lost, the last one stands, and at least ``at_least`` landed."""
        assert not self.errors, self.errors
        assert len(self.pushed) >= at_least, f"the pusher recorded only {len(self.pushed)} pushes"
        item = [item for item in imagestream["status"]["tags"] if item["tag"] == self.tag][0]
        assert item["items"][0]["image"] == self.pushed[-1]
        assert {event["image"] for event in item["items"]} == set(self.pushed)


STORM_HOSTS = 24
STORM_TAGS = ["pushed-a", "spec", "pushed-b"]


def storm_inventory(path, lab, namespace, stream, count=STORM_HOSTS, tags=lambda index: STORM_TAGS, old=True):
    """Hosts storm-01.. (``count``): host i adds env-i to ``tags(i)`` (and, with ``old``, the even
    ones remove old-i)."""
    hosts = {}
    for index in range(1, count + 1):
        host = {"storm_env": f"env-{int(index):02}", "storm_tags": tags(index)}
        if old and index % 2 == 0:
            host["storm_old"] = f"old-{int(index):02}"
        hosts[f"storm-{int(index):02}"] = host
    inventory = {"all": {"children": {"storm": {
        "hosts": hosts,
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "storm_namespace": namespace, "storm_stream": stream,
                 "storm_kubeconfig": lab.kubeconfig, "storm_context": cluster_of(lab)}}}}}
    with open(path, "w") as handle:
        yaml.safe_dump(inventory, handle)
    return hosts


def storm_stream(registry_api, lab, streams, namespace, name):
    old = ",".join(["keep"] + [f"old-{int(i):02}" for i in range(2, STORM_HOSTS + 1, 2)])
    make_stream(streams, namespace, name, spec={"tags": [
        {"name": "spec", "annotations": {KEY: old, "description": "spec tag"},
         "from": {"kind": "DockerImage", "name": "quay.example.com/app:spec"}, "referencePolicy": {"type": "Source"}}]})
    for tag in ("pushed-a", "pushed-b", "spec"):
        record_push(registry_api, lab, namespace, name, tag, f"{namespace}/{name}:{tag}")


def serial_result(hosts, initial):
    """The lists after applying every host's edits one after the other."""
    lists = {tag: set(values) for tag, values in initial.items()}
    for name in sorted(hosts):
        for tag in STORM_TAGS:
            lists[tag] |= {hosts[name]["storm_env"]}
            lists[tag] -= {hosts[name].get("storm_old")}
    return {tag: ",".join(sorted(values)) for tag, values in lists.items()}


def run_storm(run_playbook, tmp_path, lab, namespace, stream, forks, label, **inventory_options):
    """Run the storm playbook (default max_attempts); every edit must succeed."""
    inventory = tmp_path / (f"{label}-inventory.yml")
    hosts = storm_inventory(str(inventory), lab, namespace, stream, **inventory_options)
    started = time.monotonic()
    runner = run_playbook(STORM, inventory=str(inventory), envvars={"ANSIBLE_FORKS": str(forks)})
    seconds = time.monotonic() - started
    assert runner.status == "successful", runner.stdout_text[-5000:]
    by_host = host_results(runner, "Add this host's environment")
    assert set(by_host) == set(hosts), by_host.keys()
    results = [result for host in hosts for result in by_host[host]["results"]]
    assert len(results) == sum(len(host["storm_tags"]) for host in hosts.values())
    assert not [result.get("msg") for result in results if result.get("failed")]
    return hosts, results, seconds


def attempts_summary(results):
    """min / median / max attempts and the histogram {attempts: runs}."""
    attempts = [result["attempts"] for result in results]
    return {"min": min(attempts), "median": statistics.median(attempts), "max": max(attempts),
            "histogram": {n: attempts.count(n) for n in sorted(set(attempts))}}


def final_lists(streams, namespace, stream):
    current = get_stream(streams, namespace, stream)
    return {tag: (spec_annotations(current, tag) or {}).get(KEY) for tag in STORM_TAGS}, current


def test_storm_of_parallel_runs_equals_the_serial_result(lab, registry_api, streams, namespace, run_playbook,
                                                         tmp_path):
    """24 hosts, forks 24: each adds its environment to the 3 tags of one stream (and the even
    ones remove their old environment), all at once, with the default max_attempts; three
    rounds, each on a fresh stream, must end exactly where the same edits run one at a time
    (forks 1) end, and the writers must have met (retries)."""
    initial = {"pushed-a": set(), "pushed-b": set(),
               "spec": {"keep"} | {f"old-{int(i):02}" for i in range(2, STORM_HOSTS + 1, 2)}}

    storm_stream(registry_api, lab, streams, namespace, "serial")
    hosts, serial_results, serial_seconds = run_storm(run_playbook, tmp_path, lab, namespace, "serial", 1, "serial")
    assert all(result["attempts"] == 1 for result in serial_results)
    serial, _stream = final_lists(streams, namespace, "serial")
    expected = serial_result(hosts, initial)
    assert serial == expected
    assert expected["pushed-a"] == ",".join(f"env-{int(i):02}" for i in range(1, STORM_HOSTS + 1))
    assert expected["spec"] == ",".join([f"env-{int(i):02}" for i in range(1, STORM_HOSTS + 1)] + ["keep"])

    retries = []
    for round_ in range(1, 4):
        name = f"storm-{int(round_)}"
        storm_stream(registry_api, lab, streams, namespace, name)
        before = get_stream(streams, namespace, name)
        _hosts, results, seconds = run_storm(run_playbook, tmp_path, lab, namespace, name, STORM_HOSTS, name)
        lists, after = final_lists(streams, namespace, name)
        assert lists == serial, f"round {int(round_)}"
        # Everything else is as it was: the spec tag's other fields, every push.
        assert after["status"] == before["status"]
        spec_before = [t for t in before["spec"]["tags"] if t["name"] == "spec"][0]
        spec_after = [t for t in after["spec"]["tags"] if t["name"] == "spec"][0]
        assert spec_after["from"] == spec_before["from"]
        assert spec_after["annotations"]["description"] == "spec tag"
        summary = attempts_summary(results)
        retries.append(sum(result["attempts"] - 1 for result in results))
        print(f"\nstorm round {int(round_)}: {seconds:.1f}s, attempts {summary}")
    # The writers really raced: edits of the same tag met each other between read and write
    # (each retry is a write of the same tag that landed in that window; a serial run has none).
    assert sum(retries) >= 3, f"the storm's writers never met: retries per round {retries}"
    print("\nstorm: %d hosts x %d tags, default max_attempts; serial (forks 1) %.1fs; retries per round %s"
          % (STORM_HOSTS, len(STORM_TAGS), serial_seconds, retries))


SCALE_HOSTS = 16


def test_dozens_of_parallel_edits_on_one_stream_while_builds_push(lab, registry_api, streams, namespace, run_playbook,
                                                                  tmp_path):
    """16 hosts at once (forks 16) each promote one shared tag and a tag of their own (32 edits on
    one ImageStream; the shared tag and half of their own tags only pushed, so their first edit
    creates the spec tag) while a build keeps pushing to the stream every few milliseconds:
    with the default max_attempts no edit fails, every edit lands, no push is lost, and pushes
    cause no retry (only edits of the same tag, or new spec tags meeting, can)."""
    name = "scale"
    own = [f"own-{int(index):02}" for index in range(1, SCALE_HOSTS + 1)]
    make_stream(streams, namespace, name, spec={"tags": [
        {"name": tag, "annotations": {"description": "spec tag"}} for tag in own[1::2]]})
    for tag in ["shared"] + own[0::2]:
        record_push(registry_api, lab, namespace, name, tag, f"{namespace}/{name}:{tag}")

    with Pusher(lab, namespace, name, "build") as pusher:
        _hosts, results, seconds = run_storm(run_playbook, tmp_path, lab, namespace, name, SCALE_HOSTS, name,
                                             count=SCALE_HOSTS, tags=lambda index: ["shared", own[index - 1]],
                                             old=False)
    final = get_stream(streams, namespace, name)
    pusher.check(final, at_least=len(results))  # pushes all through the edits, as many as edits at the least
    assert spec_annotations(final, "shared")[KEY] == ",".join(f"env-{int(i):02}" for i in range(1, SCALE_HOSTS + 1))
    for index, tag in enumerate(own, 1):
        expected = {KEY: f"env-{int(index):02}"}
        if index % 2 == 0:
            expected["description"] = "spec tag"
        assert spec_annotations(final, tag) == expected, tag
    assert len(final["spec"]["tags"]) == len(own) + 1
    # A tag of its own that already had a spec tag has one writer: the pushes and the 31 other
    # edits landing all around it never made it retry.
    alone = [r["attempts"] for r in results if r["tag"] in own[1::2]]
    assert alone == [1] * len(own[1::2]), alone
    by_tag = {"shared": [r for r in results if r["tag"] == "shared"], "own": [r for r in results if r["tag"] != "shared"]}
    print("\nscale: %d edits on one stream (forks %d) in %.1fs while %d pushes landed; attempts: shared tag %s, "
          "own tags %s, all %s" % (len(results), SCALE_HOSTS, seconds, len(pusher.pushed),
                                   attempts_summary(by_tag["shared"]), attempts_summary(by_tag["own"]),
                                   attempts_summary(results)))


# ---------------------------------------------------------------------------------------------
# bad inputs: a clear error each, and nothing written
# ---------------------------------------------------------------------------------------------


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BAD_INPUTS = {
    # id: (module options, extra setup, words the message must contain)
    "unknown-environment": (dict(name="app:v1", add=["qa"], known_environments=KNOWN), None,
                            ['"qa" is not a known environment', "prod, test, uat"]),
    "invalid-name": (dict(name="app:v1", add=["Prod"]), None, ['"Prod" is not a valid environment name', "DNS-1123"]),
    "invalid-name-semicolon": (dict(name="app:v1", add=["test;uat"]), None, ['"test;uat"', "commas"]),
    "default-given": (dict(name="app:v1", remove=["default"]), None, ["not an environment you can give",
                                                                      "approved: []"]),
    "malformed-annotation": (dict(name="app:spec", add=["prod"]), "malformed",
                             ['"test;uat"', KEY, "cannot be read", "Fix the annotation by hand"]),
    "missing-stream": (dict(name="nosuch:v1", add=["test"]), None, ["nosuch", "not found"]),
    "missing-tag": (dict(name="app:v9", add=["test"]), None, ['no tag "v9"', "spec, v1"]),
    "no-permission": (dict(name="app:v1", add=["test"]), "no-rights", ["no permission", "403", "registry-editor"]),
    "read-only": (dict(name="app:v1", add=["test"]), "read-only", ["no permission to update", "403"]),
    "unreachable": (dict(name="app:v1", add=["test"]), "unreachable", ["cannot reach the API server", "127.0.0.1"]),
    "add-and-approved": (dict(name="app:v1", add=["test"], approved=["uat"]), None, ["approved", "cannot be combined"]),
    "bad-name-format": (dict(name="app/v1", add=["test"]), None, ['"app/v1" is not an image stream tag', "<stream>:<tag>"]),
    "name-and-stream": (dict(name="app:v1", stream="app", tag="v1", add=["test"]), None, ["mutually exclusive"]),
    "nothing-to-do": (dict(name="app:v1"), None, ["nothing to do"]),
    "add-and-remove-same": (dict(name="app:v1", add=["uat"], remove=["uat"]), None, ["both add and remove"]),
    "bad-annotation-key": (dict(name="app:v1", add=["test"], annotation_key="Not A Key"), None, ["annotation_key"]),
    "bad-namespace": (dict(name="app:v1", add=["test"], namespace="My_Project"), None, ["not a namespace name"]),
}


#: The cases that need the cluster to tell (the others are rejected before any request).
BAD_INPUTS_THAT_ASK_THE_CLUSTER = {"malformed-annotation", "missing-stream", "missing-tag", "no-permission",
                                   "read-only"}


def resource_version(streams, namespace, name):
    """The ImageStream's resourceVersion, or None when there is none (404, or a namespace name
    the API server refuses)."""
    try:
        return get_stream(streams, namespace, name)["metadata"]["resourceVersion"]
    except ApiException as exc:
        if exc.status not in (400, 404):
            raise
        return None


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_clear_error_and_writes_nothing(case, lab, registry_api, streams, namespace, make_token,
                                                       tag_environments, unique, api_proxy, proxied_auth):
    """Each bad input fails with a message naming the problem, and writes nothing: the ImageStream
    it names keeps its resourceVersion (the one it names stays missing), no write that reached
    the API server (through a recording proxy) succeeded, and the inputs that are wrong in
    themselves never reach the API server at all."""
    options, setup, words = BAD_INPUTS[case]
    make_stream(streams, namespace, "app", spec={"tags": [
        {"name": "spec", "annotations": {KEY: "test", "description": "x"}}]})
    record_push(registry_api, lab, namespace, "app", "v1", namespace)
    auth = proxied_auth
    if setup == "malformed":
        set_annotation_by_hand(streams, namespace, "app", "spec", "test;uat")
    elif setup == "no-rights":
        auth = Auth(proxied_auth, api_key=make_token("sa2-" + unique, "nobody", cluster=cluster_of(lab)))
    elif setup == "read-only":
        auth = Auth(proxied_auth, api_key=make_token("sa2-" + unique, "viewer", roles={namespace: "registry-viewer"},
                                                     cluster=cluster_of(lab)))
    elif setup == "unreachable":
        auth = Auth(host=f"https://127.0.0.1:{int(closed_port())}", api_key="not-a-real-token")
    options = dict({"namespace": namespace}, **options)
    target = (options["namespace"], (options.get("name") or "").partition(":")[0].partition("/")[0] or options["stream"])
    before = resource_version(streams, *target)
    assert (before is None) == (case in ("missing-stream", "bad-namespace")), (case, target)

    result = tag_environments(auth=auth, **options)

    assert result.get("failed") is True, f"{case}: no error: {result}"
    for word in words:
        assert word in result["msg"], f"{case}: {word!r} not in {result['msg']!r}"
    assert resource_version(streams, *target) == before, case
    assert [w for w in api_proxy.writes() if w["status"] < 300] == [], case
    if case not in BAD_INPUTS_THAT_ASK_THE_CLUSTER:
        assert api_proxy.requests == [], f"{case} reached the API server: {[(r['method'], r['path']) for r in api_proxy.requests]}"
    elif setup == "read-only":
        assert [(w["method"], w["status"]) for w in stream_writes(api_proxy, namespace, "app")] == [("PATCH", 403)]


# ---------------------------------------------------------------------------------------------
# the info module
# ---------------------------------------------------------------------------------------------


def test_info_lists_namespaces_cluster_and_filters(lab, registry_api, streams, make_token, unique,
                                                   tag_environments, tag_environments_info):
    core = kclient.CoreV1Api(registry_api)
    first, second = "tei-a-" + unique, "tei-b-" + unique
    for name in (first, second):
        core.create_namespace({"metadata": {"name": name}})
    try:
        make_stream(streams, first, "app", spec={"tags": [
            {"name": "spec", "annotations": {KEY: "prod,test"}, "from": {"kind": "DockerImage", "name": "x.example.com/a:1"}},
            {"name": "bad", "annotations": {KEY: "uat prod"}}]})
        d1 = record_push(registry_api, lab, first, "app", "v1", first + "v1")
        record_push(registry_api, lab, second, "db", "v1", second + "v1")
        ok(tag_environments(namespace=second, name="db:v1", add=["uat"]))

        both = ok(tag_environments_info(namespace=[first, second]))
        assert both["list_calls"] == 2 and both["namespaces"] == sorted([first, second])
        rows = [(t["namespace"], t["stream"], t["tag"], t["environments"]) for t in both["tags"]]
        assert rows == [(first, "app", "bad", None), (first, "app", "spec", ["prod", "test"]),
                        (first, "app", "v1", ["default"]), (second, "db", "v1", ["uat"])]
        assert [t["digest"] for t in both["tags"]][2] == d1
        assert both["tags"][1]["digest"] is None
        assert '"uat prod"' in both["tags"][0]["error"] and KEY in both["tags"][0]["error"]
        assert [(e["namespace"], e["tag"]) for e in both["errors"]] == [(first, "bad")]

        one = ok(tag_environments_info(namespace=second))
        assert one["list_calls"] == 1 and [t["tag"] for t in one["tags"]] == ["v1"]

        # the query option: JMESPath over the module's own result
        queried = ok(tag_environments_info(namespace=[first, second], query={
            "prod_ready": "tags[?contains(environments || `[]`, 'prod')].join(':', [stream, tag])",
            "unreadable": "length(errors)"}))
        assert queried["query_results"] == {"prod_ready": ["app:spec"], "unreadable": 1}
        assert queried["tags"] == both["tags"]

        prod = ok(tag_environments_info(namespace=[first, second], environment="prod"))
        assert [(t["namespace"], t["tag"]) for t in prod["tags"]] == [(first, "spec")]
        assert len(prod["errors"]) == 1  # left out of the filtered tags, still reported
        default = ok(tag_environments_info(namespace=[first, second], environment="default"))
        assert [(t["namespace"], t["tag"]) for t in default["tags"]] == [(first, "v1")]

        everything = ok(tag_environments_info())
        assert everything["list_calls"] == 1 and everything["namespaces"] == ["*"]
        mine = [(t["namespace"], t["tag"]) for t in everything["tags"] if t["namespace"] in (first, second)]
        assert mine == [(first, "bad"), (first, "spec"), (first, "v1"), (second, "v1")]
    finally:  # its deliberately unreadable tag goes at once
        for name in (first, second):
            promotion_lab.remove_namespace(registry_api, name)
