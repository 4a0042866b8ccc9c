"""The OCI client (oci.RegistryClient) against real loopback HTTP servers, no lab:

- the token request goes through the client's one retry path (retries on 5xx, back-off,
  counted), and a TLS failure at the token server is reported at once with the ca_cert hint;
- head_manifests pipelines its HEADs on one connection, and whatever the pipeline does not
  answer (an error status, a connection that closes) is asked again one by one;
- read_state sends each HEAD under a token of its repository's group (oci.tokens.token_groups);
- a Retry-After (429, 503) is waited for, up to a cap, in the retry path and in the pipeline."""


import json
import ssl
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.oci import auth as auth_module
from ansible_collections.segmented.registry.plugins.module_utils.oci import client as oci
from ansible_collections.segmented.registry.plugins.module_utils.oci import transport
from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import OCI_MANIFEST
from ansible_collections.segmented.registry.plugins.module_utils.promotion.state import read_state
from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff

DIGEST = "sha256:" + "ab" * 32
PASSWORD = "not-a-real-token-5f1c"


class Server:
    """A loopback HTTP(S) server that answers by ``routes[(method, path)](handler)`` and
    records every request it got (TLS handshakes that fail record nothing)."""

    def __init__(self, routes, context=None, requests_per_connection=None):
        self.routes = routes
        self.seen = []
        self.connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status, headers=None, body=b""):
                self.send_response(status)
                if self.close_connection:
                    self.send_header("Connection", "close")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if "Content-Length" not in (headers or {}):  # a HEAD says the size of what a GET sends
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def setup(self):
                BaseHTTPRequestHandler.setup(self)
                server.connections += 1
                self.served = 0

            def _handle(self):
                path = self.path.split("?")[0]
                server.seen.append((self.command, path, self.headers.get("Authorization")))
                self.served += 1
                if requests_per_connection and self.served >= requests_per_connection:
                    self.close_connection = True
                route = server.routes.get((self.command, path))
                if route is None:
                    route = server.routes.get((self.command, path.rsplit("/", 1)[0] + "/*"))
                if route is None:
                    self.answer(404)
                else:
                    route(self)

            do_GET = do_HEAD = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.endpoint = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self, method, path):
        return sum(1 for m, p, _auth in self.seen if m == method and p == path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def registry_routes(realm):
    """A registry that sends clients to ``realm`` and serves one manifest to token ``t1``."""
    def challenge(handler):
        handler.answer(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="svc"'})

    def manifest(handler):
        if handler.headers.get("Authorization") != "Bearer t1":
            return challenge(handler)
        handler.answer(200, {"Docker-Content-Digest": DIGEST, "Content-Type": OCI_MANIFEST,
                             "Content-Length": "2"})
    return {("GET", "/v2/"): challenge, ("HEAD", "/v2/ns/app/manifests/v1"): manifest}


@pytest.fixture
def servers():
    started = []

    def start(routes, context=None, **options):
        server = Server(routes, context, **options)
        started.append(server)
        return server
    yield start
    for server in started:
        server.close()


def test_token_request_is_retried_on_5xx_through_the_clients_retry_path(servers):
    answers = [503, 502, 200]

    def token(handler):
        status = answers.pop(0)
        body = json.dumps({"token": "t1", "expires_in": 300}).encode() if status == 200 else b"{}"
        handler.answer(status, {"Content-Type": "application/json"}, body)

    auth = servers({("GET", "/token"): token})
    registry = servers(registry_routes(f"http://{auth.endpoint}/token"))
    slept = []
    client = oci.RegistryClient(registry.endpoint, password=PASSWORD, scheme="http", retries=3, backoff=0.5,
                                sleep=slept.append)
    try:
        assert client.head_manifest("ns/app", "v1")["digest"] == DIGEST
    finally:
        client.close()
    assert auth.count("GET", "/token") == 3
    assert slept == [backoff(1, 0.5, oci.BACKOFF_CAP), backoff(2, 0.5, oci.BACKOFF_CAP)]
    stats = client.stats.to_dict()
    assert stats["token_requests"] == 1 and stats["retries"] == 2
    # the basic credentials went to the token server only
    assert all(a and a.startswith("Basic ") for m, p, a in auth.seen)
    assert not any(a and a.startswith("Basic ") for m, p, a in registry.seen)


def head_error(registry, retries):
    """(client, message) of a manifest HEAD at ``registry`` that must fail with a RegistryError."""
    # localhost: the TLS test's token server (a realm host apart from the registry's 127.0.0.1)
    client = oci.RegistryClient(registry.endpoint, password=PASSWORD, scheme="http", retries=retries,
                                sleep=lambda seconds: None, token_realm_hosts=["localhost"])
    try:
        with pytest.raises(RegistryError) as raised:
            client.head_manifest("ns/app", "v1")
    finally:
        client.close()
    return client, str(raised.value)


def test_token_server_that_keeps_failing_is_reported_with_the_attempts(servers):
    auth = servers({("GET", "/token"): lambda handler: handler.answer(503, {"Content-Type": "application/json"},
                                                                      b'{"errors": []}')})
    registry = servers(registry_routes(f"http://{auth.endpoint}/token"))
    message = head_error(registry, retries=2)[1]
    assert auth.count("GET", "/token") == 3
    assert "answered HTTP 503 after 3 attempts" in message and PASSWORD not in message


@pytest.fixture
def untrusted_tls(tmp_path):
    """A server-side TLS context with a self-signed certificate that no trust store holds."""
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_tls_failure_at_the_token_server_names_it_and_gives_the_ca_cert_hint_at_once(servers, untrusted_tls):
    context = untrusted_tls
    handshakes = []
    context.set_servername_callback(lambda *args: handshakes.append(1))  # called on each ClientHello with SNI
    auth = servers({("GET", "/token"): lambda handler: handler.answer(200, {}, b'{"token": "t1"}')}, context)
    realm = f"https://localhost:{auth.endpoint.split(':')[1]}/token"
    registry = servers(registry_routes(realm))
    client, message = head_error(registry, retries=3)
    assert f"token request to {realm} failed: TLS:" in message, message
    assert f"Give the CA bundle that signs the certificate of localhost:{auth.endpoint.split(':')[1]} (ca_cert)" in message, message
    assert PASSWORD not in message
    assert len(handshakes) == 1, "a certificate problem is not retried"
    assert client.stats.to_dict()["retries"] == 0


def pipelined_registry(servers, failures=(), **options):
    """A registry with a token realm whose repository ns/app has tags t000..t099: odd ones are
    missing (404), even ones serve a digest of their own; ``failures`` answer 503 once each."""
    auth = servers({("GET", "/token"): lambda handler: handler.answer(
        200, {"Content-Type": "application/json"}, b'{"token": "t1", "expires_in": 300}')})
    routes = registry_routes(f"http://{auth.endpoint}/token")
    once = set(failures)

    def manifest(handler):
        tag = handler.path.rsplit("/", 1)[1]
        if handler.headers.get("Authorization") != "Bearer t1":
            return routes[("GET", "/v2/")](handler)
        if tag in once:
            once.discard(tag)
            return handler.answer(503)
        if int(tag[1:]) % 2:
            return handler.answer(404)
        handler.answer(200, {"Docker-Content-Digest": "sha256:" + tag[1:].rjust(64, "0"),
                             "Content-Type": OCI_MANIFEST + "; charset=utf-8", "Content-Length": "321"})
    routes[("HEAD", "/v2/ns/app/manifests/*")] = manifest
    return servers(routes, **options)


TAGS = [f"t{i:03d}" for i in range(100)]


def expected(tag):
    if int(tag[1:]) % 2:
        return None
    return {"digest": "sha256:" + tag[1:].rjust(64, "0"), "media_type": OCI_MANIFEST, "size": 321}


def test_head_manifests_pipelines_every_head_on_one_connection(servers):
    registry = pipelined_registry(servers)
    client = oci.RegistryClient(registry.endpoint, password=PASSWORD, scheme="http", sleep=lambda seconds: None)
    try:
        found = client.head_manifests("ns/app", TAGS)
    finally:
        client.close()
    assert found == [(tag, expected(tag)) for tag in TAGS]
    heads = [(m, p) for m, p, _a in registry.seen if m == "HEAD"]
    assert len(heads) == len(TAGS) and len(set(heads)) == len(TAGS)
    assert registry.connections == 2  # GET /v2/ (requests) and the pipeline, reused by every batch
    assert all(a == "Bearer t1" for m, p, a in registry.seen if m == "HEAD")
    assert client.stats.to_dict()["by_method"]["HEAD"] == len(TAGS)


@pytest.mark.parametrize("case", [dict(failures=("t040",)), dict(requests_per_connection=20)],
                         ids=["an error answer", "a connection that closes"])
def test_head_manifests_asks_one_by_one_what_the_pipeline_did_not_answer(servers, case):
    registry = pipelined_registry(servers, **case)
    client = oci.RegistryClient(registry.endpoint, password=PASSWORD, scheme="http", sleep=lambda seconds: None)
    try:
        found = client.head_manifests("ns/app", TAGS)
    finally:
        client.close()
    assert found == [(tag, expected(tag)) for tag in TAGS]
    heads = [p for m, p, _a in registry.seen if m == "HEAD"]
    assert set(heads) == {"/v2/ns/app/manifests/" + tag for tag in TAGS}
    for tag in case.get("failures", ()):
        assert heads.count("/v2/ns/app/manifests/" + tag) == 2  # the 503 in the pipeline, then one by one


def test_read_state_sends_each_head_under_a_token_of_its_group_only(servers):
    """read_state lists tags under one token for every repository, then HEADs each group of
    repositories (token_groups: up to REQUESTS_PER_TOKEN HEADs a token) under a token of that
    group alone: 5 repositories, 540 HEADs, 1 + 3 token requests."""
    counts = {"ns/r0": 150, "ns/r1": 30, "ns/r2": 30, "ns/r3": 30, "ns/r4": 300}
    groups = [["ns/r0", "ns/r1"], ["ns/r2", "ns/r3"], ["ns/r4"]]
    assert auth_module.REQUESTS_PER_TOKEN == 200

    def token(handler):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
        names = sorted(item.split(":")[1] for item in query["scope"])
        handler.answer(200, {"Content-Type": "application/json"},
                       json.dumps({"token": "tok:" + "+".join(names), "expires_in": 300}).encode())
    auth = servers({("GET", "/token"): token})
    routes = registry_routes(f"http://{auth.endpoint}/token")

    def covered(handler, repo):
        granted = (handler.headers.get("Authorization") or "").partition("Bearer tok:")[2].split("+")
        return repo in granted

    def tags(handler):
        repo = handler.path.split("?")[0][len("/v2/"):-len("/tags/list")]
        if not covered(handler, repo):
            return routes[("GET", "/v2/")](handler)
        body = json.dumps({"name": repo, "tags": [f"t{i:03d}" for i in range(counts[repo])]}).encode()
        handler.answer(200, {"Content-Type": "application/json"}, body)

    def manifest(handler):
        repo = handler.path[len("/v2/"):].split("/manifests/")[0]
        if not covered(handler, repo):
            return routes[("GET", "/v2/")](handler)
        handler.answer(200, {"Docker-Content-Digest": DIGEST, "Content-Type": OCI_MANIFEST, "Content-Length": "2"})
    for repo in counts:
        routes[("GET", f"/v2/{repo}/tags/list")] = tags
        routes[("HEAD", f"/v2/{repo}/manifests/*")] = manifest
    registry = servers(routes)
    client = oci.RegistryClient(registry.endpoint, password=PASSWORD, scheme="http", sleep=lambda seconds: None)
    try:
        state, errors = read_state(client, sorted(counts))
    finally:
        client.close()
    assert errors == {}
    assert {repo: len(found) for repo, found in state.items()} == counts
    assert auth.count("GET", "/token") == 1 + len(groups)
    assert all(a == "Bearer tok:" + "+".join(sorted(counts)) for m, p, a in registry.seen if p.endswith("/tags/list"))
    heads = [(p, a) for m, p, a in registry.seen if m == "HEAD"]
    assert len(heads) == sum(counts.values())
    for path, authorization in heads:
        group = next(g for g in groups if path.split("/manifests/")[0][len("/v2/"):] in g)
        assert authorization == "Bearer tok:" + "+".join(group), (path, authorization)


# --- Retry-After (429, 503) ----------------------------------------------------------------------


def test_retry_after_reads_seconds_and_http_dates():
    def now():
        return 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT

    assert transport.retry_after("2", now) == 2
    assert transport.retry_after(" 120 ", now) == 120
    assert transport.retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now) == 30
    assert transport.retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now) == 0  # passed: no wait
    for value in (None, "", "-1", "1.5", "soon", "Wed, 21 Oct 2015 07:28:30"):
        assert transport.retry_after(value, now) is None, value


def limited_registry(servers, answers):
    """A registry without auth whose ``GET /v2/ns/app/tags/list`` answers ``answers`` in turn
    (``(status, Retry-After or None)``), then the tags."""
    def tags(handler):
        if answers:
            status, pause = answers.pop(0)
            return handler.answer(status, {"Retry-After": pause} if pause else {}, b'{"errors": []}')
        handler.answer(200, {"Content-Type": "application/json"}, b'{"name": "ns/app", "tags": ["v1"]}')
    return servers({("GET", "/v2/"): lambda handler: handler.answer(200, {}, b"{}"),
                    ("GET", "/v2/ns/app/tags/list"): tags})


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_is_waited_for_never_less_than_the_back_off(servers, status):
    registry = limited_registry(servers, [(status, "2"), (status, "0"), (status, None)])
    slept = []
    client = oci.RegistryClient(registry.endpoint, scheme="http", retries=3, backoff=0.5, sleep=slept.append)
    try:
        assert client.list_tags("ns/app") == ["v1"]
    finally:
        client.close()
    assert registry.count("GET", "/v2/ns/app/tags/list") == 4
    # what the registry asked for; then the back-off where it asked for less, or nothing
    assert slept == [2, backoff(2, 0.5, oci.BACKOFF_CAP), backoff(3, 0.5, oci.BACKOFF_CAP)]


def test_a_retry_after_beyond_the_cap_fails_at_once_and_says_so(servers):
    registry = limited_registry(servers, [(429, str(transport.RETRY_AFTER_CAP + 1))])
    slept = []
    client = oci.RegistryClient(registry.endpoint, scheme="http", retries=3, sleep=slept.append)
    try:
        with pytest.raises(RegistryError) as raised:
            client.list_tags("ns/app")
    finally:
        client.close()
    assert registry.count("GET", "/v2/ns/app/tags/list") == 1 and slept == []
    message = str(raised.value)
    assert "list tags of ns/app failed: HTTP 429" in message
    assert f"it asked to wait {transport.RETRY_AFTER_CAP + 1} s (Retry-After), longer than the " \
           f"{transport.RETRY_AFTER_CAP} s a promotion job waits" in message, message


def test_the_pipeline_waits_as_a_retry_after_asks_before_going_one_by_one(servers):
    registry = pipelined_registry(servers)
    limited = {"t040"}
    manifest = registry.routes[("HEAD", "/v2/ns/app/manifests/*")]

    def once_limited(handler):
        tag = handler.path.rsplit("/", 1)[1]
        if tag in limited and handler.headers.get("Authorization") == "Bearer t1":
            limited.discard(tag)
            return handler.answer(429, {"Retry-After": "3"})
        return manifest(handler)
    registry.routes[("HEAD", "/v2/ns/app/manifests/*")] = once_limited
    slept = []
    client = oci.RegistryClient(registry.endpoint, password=PASSWORD, scheme="http", sleep=slept.append)
    try:
        found = client.head_manifests("ns/app", TAGS)
    finally:
        client.close()
    assert found == [(tag, expected(tag)) for tag in TAGS]
    assert slept == [3]
