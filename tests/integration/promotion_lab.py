"""What the promotion tests (test_reconcile.py) and the benchmark need on top of the lab.

- ``promoter_token``: a TokenRequest token of the promoter service account (made by
  ``roles/registry_cluster``, which the suite's session fixture deploys).
- ``ExtraRegistry``: our OWN CNCF distribution process on a free loopback port 15000-15999, with
  the lab's token server (service ``env-test``: access is decided in namespace ``test``), the lab
  registry certificate and its own storage: a registry the tests may kill and restart. The lab's
  registries are never touched.
- ``FaultProxy``: a fault injector, not an imitation registry: a loopback TLS proxy in front of
  a real registry that forwards every request unchanged unless a rule says to answer 503, to hang,
  or to run a hook (for instance kill the registry) first. It counts what it saw.
- ``Sampler``, ``manifest_puts_out_of_order``, ``RegistryLog``: a watcher thread whose death
  fails the test, the order of requests a FaultProxy saw (a manifest PUT after its blobs and
  children were in place), and the requests a lab registry itself logged.
- Image builders: a two-platform OCI index and a cosign-style signature artifact, pushed to the
  integrated registry with the collection's own client (plugins/module_utils/oci/), and
  recorded in the ImageStream the way OpenShift's registry does.
"""
import base64
import hashlib
import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
import yaml
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import TOKEN_SERVER_AUDIENCE, mint_token
from ansible_collections.segmented.registry.plugins.module_utils.oci import client as oci
from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError
from ansible_collections.segmented.registry.plugins.module_utils.oci import manifests
from lab import image, netns

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROMOTER = "segmented-registry-promotion/promoter"
# the ClusterRole roles/registry_cluster binds to the promoter in each environment namespace
PROMOTER_ROLE = "segmented-registry:environment-promoter"


# ---------------------------------------------------------------------------------------------
# The promoter service account
# ---------------------------------------------------------------------------------------------


def api_audiences(lab, service_account=PROMOTER):
    """The registry cluster API server's own audiences: those a TokenRequest without audiences is
    given (its answer's spec.audiences)."""
    namespace, name = service_account.split("/")
    answer = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 600}})
    return list(answer.spec.audiences)


def promoter_token(lab, seconds=3600, audiences=None):
    """A token of the promoter that the integrated registry (the API server's audiences) and the
    environment registries' token server (TOKEN_SERVER_AUDIENCE) both accept, as a promotion's
    registry_token must; ``audiences``: for those alone."""
    return mint_token(lab.api_client(lab.layout.registry_cluster), PROMOTER, seconds,
                      audiences=audiences or api_audiences(lab) + [TOKEN_SERVER_AUDIENCE])


def lab_environments(lab):
    """The lab inventory's environments, as the module takes them."""
    with open(os.path.join(REPO, "inventories", "lab", "group_vars", "all.yml")) as handle:
        raw = yaml.safe_load(handle)["segmented_registry_environments"]
    result = []
    for env in raw:
        item = dict(env)
        item["ca_cert"] = lab.ca.cert_path
        result.append(item)
    return result


def wait_until(probe, timeout, what, fail=True):
    """The first true result of ``probe()``; at the deadline fails naming ``what`` and the last
    value, or (``fail=False``) returns that last value for the caller to explain."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            if not fail:
                return value
            pytest.fail(f"{what} within {int(timeout)}s (last: {value!r})")
        time.sleep(0.5)


def pods_story(lab, core, namespace, label_selector):
    """What a reader of a failed wait needs: the lab's processes that stopped (with their last log
    lines: a controller manager or scheduler gone leaves a ReplicaSet without pods), the namespace's
    ReplicaSets, each pod's phase, IP, conditions, container states and last log lines, the
    namespace's recent events and the node's pod count against its capacity (a kubelet that is full
    leaves new pods Pending)."""
    lines = []
    for component in lab.status()["components"]:
        if not component["running"]:
            lines.append(f"lab component {component['component']} is not running: "
                         + lab.procs.tail(component["component"], lines=5).replace("\n", " | "))
    for replicas in kclient.AppsV1Api(core.api_client).list_namespaced_replica_set(namespace).items:
        lines.append(f"replicaset {replicas.metadata.name}: desired {replicas.spec.replicas}, "
                     f"current {replicas.status.replicas}, ready {replicas.status.ready_replicas}")
    for pod in core.list_namespaced_pod(namespace, label_selector=label_selector).items:
        conditions = ", ".join(f"{c.type}={c.status}" for c in pod.status.conditions or [])
        states = "; ".join(f"{s.name}: {s.state.to_dict()}" for s in pod.status.container_statuses or [])
        lines.append(f"pod {pod.metadata.name} {pod.status.phase} {pod.status.pod_ip} [{conditions}] {states}")
        for status in pod.status.container_statuses or []:
            if status.state.running or status.state.terminated:
                try:
                    log = core.read_namespaced_pod_log(pod.metadata.name, namespace, container=status.name, tail_lines=5)
                except ApiException as exc:
                    log = f"(no log: {exc.status} {exc.reason})"
                lines.append(f"  log of {status.name}: " + (log.strip().replace("\n", " | ") or "(empty)"))
    events = core.list_namespaced_event(namespace).items
    events.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""))
    lines += [f"event {e.involved_object.name}: {e.reason}: {e.message}" for e in events[-10:]]
    for node in core.list_node().items:
        running = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node.metadata.name}").items
        active = [p for p in running if p.status.phase not in ("Succeeded", "Failed")]
        lines.append(f"node {node.metadata.name}: {len(active)} pods of {node.status.allocatable.get('pods')}, "
                     + ", ".join(f"{c.type}={c.status}" for c in node.status.conditions or []))
    return "\n".join(lines)


def remove_namespace(api, name):
    """Namespace ``name`` removed (``api``: an ApiClient of its cluster; one already gone is no
    error), its ImageStreams first, at once: a reconcile of the whole cluster must not meet a test's
    made-up or broken tags while the namespace controller is still at work."""
    try:
        kclient.CustomObjectsApi(api).delete_collection_namespaced_custom_object("image.openshift.io", "v1", name, "imagestreams")
        kclient.CoreV1Api(api).delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def wait_for_challenge(lab, address, timeout=120):
    """The 401 challenge of the registry at ``address`` over TLS the lab CA vouches for, once it
    answers (a new Route is admitted by the router, and its pod becomes ready, on their own)."""
    def challenge():
        try:
            answer = requests.get(f"https://{address}/v2/", verify=lab.ca.cert_path, timeout=5)
        except requests.RequestException:
            return None
        return [answer] if answer.status_code == 401 else None  # a 401 Response is falsy itself
    return wait_until(challenge, timeout, f"the registry at {address} answering with its challenge")[0]


def client(lab, endpoint, token, name=None, **options):
    """The collection's registry client of ``endpoint``, sending credentials to the lab's token server too."""
    options.setdefault("token_realm_hosts", [lab.layout.token_server_host])
    return oci.RegistryClient(endpoint, password=token, ca_cert=lab.ca.cert_path, name=name or endpoint, **options)


# ---------------------------------------------------------------------------------------------
# Our own registry process
# ---------------------------------------------------------------------------------------------


def free_port(low=15000, high=15999):
    ports = list(range(low, high + 1))
    random.shuffle(ports)
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {int(low)}-{int(high)}")


def token_server(lab):
    """(realm, issuer, signing certificate PEM) of the token server roles/registry_cluster
    deployed on the lab's registry cluster (the environment registries' token server)."""
    secret = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).read_namespaced_secret(
        "token-server-signing", "segmented-registry")
    return (f"https://{lab.layout.token_server_host}/token", "segmented-registry",
            base64.b64decode(secret.data["tls.crt"]).decode())


class ExtraRegistry:
    """A CNCF distribution registry of our own (``docker-registry serve``), token auth through the
    deployed token server as service ``env-test`` (``realm``: where clients are sent for tokens,
    for instance a FaultProxy in front of the token server; default the token server's Route).
    ``kill()`` is SIGKILL; ``start()`` again reuses the same port and storage. ``tls``:
    (certificate, key) paths (default: a lab certificate for 127.0.0.1, localhost and the
    endpoint namespace's address), or False for plain HTTP. ``service_endpoint``: run inside the
    lab's endpoint network namespace (lab/netns.py) on its address, as a registry that backs a
    Service must (EndpointSlices refuse loopback addresses); else on 127.0.0.1."""

    def __init__(self, lab, workdir, service="env-test", tls=None, service_endpoint=False, realm=None):
        self.lab = lab
        self.port = free_port()
        self.service_endpoint = service_endpoint
        address = netns.ADDRESS if service_endpoint else "127.0.0.1"
        self.endpoint = f"{netns.ADDRESS if service_endpoint else 'localhost'}:{int(self.port)}"
        self.scheme = "http" if tls is False else "https"
        self.storage = os.path.join(workdir, "storage")
        self.config = os.path.join(workdir, "config.yml")
        self.log = os.path.join(workdir, "registry.log")
        os.makedirs(self.storage, exist_ok=True)
        default_realm, issuer, signing_cert = token_server(lab)
        bundle = os.path.join(workdir, "token-signing.crt")
        with open(bundle, "w") as handle:
            handle.write(signing_cert)
        config = {
            "version": 0.1,
            "log": {"level": "info", "fields": {"service": "registry", "environment": "extra"}},
            "storage": {"filesystem": {"rootdirectory": self.storage}, "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": f"{address}:{int(self.port)}"},
            "auth": {"token": {"realm": realm or default_realm, "service": service, "issuer": issuer,
                               "rootcertbundle": bundle}},
        }
        if tls is not False:
            cert, key = tls or lab.ca.issue("extra-registry", "localhost", server=True,
                                            hosts=("127.0.0.1", "localhost", netns.ADDRESS))
            config["http"]["tls"] = {"certificate": cert, "key": key}
        with open(self.config, "w") as handle:
            yaml.safe_dump(config, handle)
        self.proc = None

    def start(self, timeout=30):
        log = open(self.log, "ab")
        argv = ["docker-registry", "serve", self.config]
        self.proc = subprocess.Popen(netns.command(argv) if self.service_endpoint else argv, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=dict(os.environ, REGISTRY_HTTP_SECRET="extra-registry-test-secret"))
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.scheme}://{self.endpoint}/v2/", verify=self.lab.ca.cert_path,
                                timeout=2).status_code == 401:
                    return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {open(self.log).read()[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"docker-registry on {self.endpoint} did not answer")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


# ---------------------------------------------------------------------------------------------
# The fault injector
# ---------------------------------------------------------------------------------------------


class FaultProxy:
    """A TLS proxy on a free loopback port in front of ``upstream`` (host:port).

    ``rule(method, path) -> None | ("status", code[, headers]) | ("hang", seconds) | ("hook", callable) |
    ("delay", seconds) | ("after_bytes", count, callable)`` decides per request: forward
    unchanged, answer ``code`` with a distribution error body (and ``headers``), wait then drop the connection
    without an answer, call the hook and then forward, wait and then forward, or forward the
    body and call the hook once ``count`` bytes of it have gone upstream (the registry is then
    receiving the body). Request bodies of known length are streamed upstream as they arrive.

    ``seen`` lists ``(method, path, what happened)``; ``events`` the same requests in order, each
    a dict with ``start`` and ``end`` (one sequence shared by both, so "answered before that one
    was received" is ``a["end"] < b["start"]``), ``method``, ``path``, ``what`` and ``status``.
    ``credentials``: the basic-auth ``(user, password)`` pairs clients sent (kept in memory,
    never printed). ``t_start`` / ``t_end`` of an event are ``time.monotonic()``. The
    Host header is passed on, so the registry's upload URLs point back at the proxy; with
    ``pass_host=False`` the upstream's own host is sent instead (an upstream behind the router,
    which routes by host)."""

    def __init__(self, lab, upstream, rule=None, pass_host=True):
        self.lab = lab
        self.upstream = upstream
        self.pass_host = pass_host
        self.rule = rule or (lambda method, path: None)
        self.seen = []
        self.events = []
        self.credentials = set()
        self.forwarded_bytes = 0
        self._sequence = 0
        self._lock = threading.Lock()
        self.port = free_port()
        self.endpoint = f"localhost:{int(self.port)}"
        self.session = requests.Session()
        self.session.trust_env = False
        proxy = self

        class Body:
            """The request body, read from the client as the upstream request sends it."""

            def __init__(self, rfile, length, after=None):
                self.rfile, self.length, self.sent, self.after = rfile, length, 0, after

            def __len__(self):
                return self.length

            def read(self, amount=-1):
                if amount is None or amount < 0:
                    amount = self.length - self.sent
                data = self.rfile.read(min(amount, self.length - self.sent, 64 * 1024))
                self.sent += len(data)
                with proxy._lock:
                    proxy.forwarded_bytes += len(data)
                if self.after and self.sent >= self.after[0]:
                    hook, self.after = self.after[1], None
                    hook()
                return data

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self, after):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return Body(self.rfile, length, after) if length else None

            def _handle(self):
                event = proxy._begin(self.command, self.path)
                proxy._credentials(self.headers.get("Authorization"))
                decision = proxy.rule(self.command, self.path)
                kind = decision[0] if decision else "forward"
                event["what"] = kind
                proxy._note(self.command, self.path, kind)
                body = self._body(decision[1:] if kind == "after_bytes" else None)
                if kind not in ("forward", "hook", "delay", "after_bytes") and isinstance(body, Body):
                    while body.read():  # drained, not forwarded
                        pass
                if kind == "status":
                    payload = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "injected fault"}]}).encode()
                    self.send_response(decision[1])
                    self.send_header("Content-Type", "application/json")
                    for key, value in (decision[2] if len(decision) > 2 else {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    proxy._end(event, decision[1])
                    return
                if kind == "hang":
                    time.sleep(decision[1])
                    self.close_connection = True
                    proxy._end(event, None)
                    return
                if kind == "hook":
                    decision[1]()
                if kind == "delay":
                    time.sleep(decision[1])
                dropped = ("connection", "transfer-encoding", "content-length", "keep-alive") + (
                    () if proxy.pass_host else ("host",))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                try:
                    answer = proxy.session.request(self.command, f"https://{proxy.upstream}{self.path}",
                                                   headers=headers, data=body,
                                                   verify=proxy.lab.ca.cert_path, allow_redirects=False, timeout=60)
                except requests.RequestException:
                    proxy._note(self.command, self.path, "upstream down")
                    event["what"] = "upstream down"
                    self.close_connection = True  # like a registry that died: no answer at all
                    proxy._end(event, None)
                    return
                content = answer.content
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() in ("connection", "transfer-encoding", "content-length", "keep-alive",
                                       "content-encoding"):
                        continue
                    self.send_header(key, value)
                if self.command == "HEAD":
                    self.send_header("Content-Length", answer.headers.get("Content-Length", "0"))
                else:
                    self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)
                proxy._end(event, answer.status_code)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*lab.ca.issue("extra-registry", "localhost", server=True,
                                              hosts=("127.0.0.1", "localhost", netns.ADDRESS)))
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _note(self, method, path, what):
        with self._lock:
            self.seen.append((method, path, what))

    def _begin(self, method, path):
        with self._lock:
            self._sequence += 1
            event = {"start": self._sequence, "end": None, "method": method, "path": path, "what": None,
                     "status": None, "t_start": time.monotonic(), "t_end": None}
            self.events.append(event)
            return event

    def _end(self, event, status):
        with self._lock:
            self._sequence += 1
            event["end"], event["status"], event["t_end"] = self._sequence, status, time.monotonic()

    def _credentials(self, header):
        if header and header.startswith("Basic "):
            user, _sep, password = base64.b64decode(header[6:]).decode("utf-8", "replace").partition(":")
            with self._lock:
                self.credentials.add((user, password))

    def count(self, method, fragment, what=None):
        with self._lock:
            return sum(1 for m, p, w in self.seen if m == method and fragment in p and (what is None or w == what))

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def _put_blob(registry, repository, data):
    digest = manifests.sha256_digest(data)
    if registry.head_blob(repository, digest) is None:
        registry.upload_bytes(repository, digest, data)
    return {"digest": digest, "size": len(data)}


def push_index(lab, namespace, stream, tag, layer_size=64 * 1024):
    """A two-platform OCI index at ``namespace/stream:tag`` in the integrated registry (linux/amd64
    and linux/arm64, each a real image with its own layers), recorded in the ImageStream. Returns
    ``{"index": digest, "children": [digest, digest]}``."""
    amd64 = lab.push(namespace, stream, tag + "-amd64", 2, layer_size, seed=f"{namespace}/{stream}:{tag} amd64")
    arm_base = lab.push(namespace, stream, tag + "-arm64-base", 2, layer_size,
                        seed=f"{namespace}/{stream}:{tag} arm64")
    builder = client(lab, lab.layout.integrated_endpoint, lab.builder_token(namespace), name="integrated")
    repository = f"{namespace}/{stream}"
    try:
        base = builder.get_manifest(repository, arm_base["digest"])
        manifest = json.loads(base["data"])
        config_response = builder.open_blob(repository, manifest["config"]["digest"])
        config = json.loads(config_response.content)
        config_response.close()
        config["architecture"] = "arm64"
        config["variant"] = "v8"
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        descriptor = _put_blob(builder, repository, config_bytes)
        manifest["config"] = dict(manifest["config"], digest=descriptor["digest"], size=descriptor["size"])
        arm_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        arm64 = builder.put_manifest(repository, manifests.sha256_digest(arm_bytes), arm_bytes, manifests.OCI_MANIFEST)
        amd_size = len(builder.get_manifest(repository, amd64["digest"])["data"])
        index = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": [
            {"mediaType": manifests.OCI_MANIFEST, "digest": amd64["digest"], "size": amd_size,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": manifests.OCI_MANIFEST, "digest": arm64, "size": len(arm_bytes),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}]}
        index_bytes = json.dumps(index, indent=2).encode()
        digest = builder.put_manifest(repository, tag, index_bytes, manifests.OCI_INDEX)
    finally:
        builder.close()
    image.record_push(lab.api_client(lab.layout.registry_cluster), namespace, stream, tag, digest,
                      lab.layout.integrated_endpoint)
    return {"index": digest, "children": [amd64["digest"], arm64]}


def push_signature(lab, namespace, stream, digest, kind="sig"):
    """A cosign-style artifact of ``digest`` as tag ``sha256-<hex>.<kind>`` in the integrated
    registry: a simple-signing payload layer with a signature annotation (not a valid signature:
    the tests check that it travels, not that it verifies). Returns its digest."""
    builder = client(lab, lab.layout.integrated_endpoint, lab.builder_token(namespace), name="integrated")
    repository = f"{namespace}/{stream}"
    try:
        payload = json.dumps({"critical": {"identity": {"docker-reference": "{}/{}".format(
            lab.layout.integrated_endpoint, repository)}, "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"}, "optional": None}).encode()
        layer = _put_blob(builder, repository, payload)
        config = _put_blob(builder, repository, json.dumps({"architecture": "", "os": "", "config": {},
                                                            "rootfs": {"type": "layers", "diff_ids": [
                                                                layer["digest"]]}}).encode())
        manifest = {"schemaVersion": 2, "mediaType": manifests.OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                    "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", **layer,
                                "annotations": {"dev.cosignproject.cosign/signature": hashlib.sha256(
                                    payload).hexdigest()}}]}
        data = json.dumps(manifest).encode()
        return builder.put_manifest(repository, f"sha256-{digest.split(':')[1]}.{kind}", data, manifests.OCI_MANIFEST)
    finally:
        builder.close()


def tag_in_source(lab, namespace, stream, tag, digest, record=True, from_stream=None):
    """Give ``digest`` another tag in the integrated registry (a PUT of the same manifest bytes;
    ``from_stream``: the image is in that stream, its blobs are mounted first) and, with
    ``record``, in the ImageStream."""
    builder = client(lab, lab.layout.integrated_endpoint, lab.builder_token(namespace), name="integrated")
    repository = f"{namespace}/{stream}"
    origin = f"{namespace}/{from_stream or stream}"
    try:
        manifest = builder.get_manifest(origin, digest)
        if origin != repository:
            for blob in manifests.parse_manifest(manifest["data"], manifest["media_type"])["blobs"]:
                mounted = builder.mount_blob(repository, blob["digest"], origin)[0]
                assert mounted, f"the integrated registry refused to mount {blob['digest']}"
        builder.put_manifest(repository, tag, manifest["data"], manifest["media_type"])
    finally:
        builder.close()
    if record:
        image.record_push(lab.api_client(lab.layout.registry_cluster), namespace, stream, tag, digest,
                          lab.layout.integrated_endpoint)


def push_unrecorded(lab, namespace, stream, tag, seed, layers=2, layer_size=64 * 1024):
    """Push an image to the integrated registry WITHOUT recording it in the ImageStream (the
    registry tag moves, the ImageStream still says the old digest). Returns its digest."""
    with tempfile.TemporaryDirectory(prefix="unrecorded-") as tmp:
        layout = os.path.join(tmp, "oci")
        image.build_oci_layout(layout, layers=layers, layer_size=layer_size, seed=seed)
        return image.push(layout, f"{lab.layout.integrated_endpoint}/{namespace}/{stream}:{tag}",
                          username="builder", password=lab.builder_token(namespace), ca_dir=lab.trust_dir)


def registry_consistency(registry, repository):
    """Problems found: a tag whose manifest (or a child, or a blob) the registry cannot serve."""
    problems = []
    try:
        tags = registry.list_tags(repository)
    except RegistryError as exc:
        return [], f"unreadable: {exc}"
    for tag in tags:
        problems.extend(tree_problems(registry, repository, tag))
    return problems, None


def tree_problems(registry, repository, reference):
    """Problems of one tag or digest: its manifest's children and blobs the registry cannot serve."""
    manifest = registry.get_manifest(repository, reference)
    if manifest is None:
        return []  # removed between the listing and now
    refs = manifests.parse_manifest(manifest["data"], manifest["media_type"])
    problems = []
    for child in refs["children"]:
        if registry.head_manifest(repository, child["digest"]) is None:
            problems.append(f"{repository}:{reference}: child manifest {child['digest']} missing")
        else:
            problems.extend(tree_problems(registry, repository, child["digest"]))
    for blob in refs["blobs"]:
        if registry.head_blob(repository, blob["digest"]) is None:
            problems.append(f"{repository}:{reference}: blob {blob['digest']} missing")
    return problems


# ---------------------------------------------------------------------------------------------
# Observing a registry while the engine works on it
# ---------------------------------------------------------------------------------------------


class Sampler:
    """Calls ``probe()`` back to back (``pause`` seconds apart) in a thread until ``stop()``, from
    ``start()`` on or, given ``trigger`` (a threading.Event), from when it is set.

    ``samples``: ``(started, ended, value)`` with ``time.monotonic()`` times, so a sample lies in
    a window when ``start <= started and ended <= end``. An exception in the probe ends the thread
    and ``stop()`` raises it again: a watcher that died fails the test instead of checking nothing."""

    def __init__(self, probe, pause=0.0):
        self.probe = probe
        self.pause = pause
        self.samples = []
        self.error = None
        self._stop = threading.Event()
        self._trigger = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            while self._trigger is not None and not self._trigger.wait(0.05):
                if self._stop.is_set():
                    return
            while not self._stop.is_set():
                started = time.monotonic()
                value = self.probe()
                self.samples.append((started, time.monotonic(), value))
                if self.pause:
                    self._stop.wait(self.pause)
        except BaseException as exc:  # handed to the test by stop()
            self.error = exc

    def start(self, trigger=None):
        self._trigger = trigger
        self._thread.start()
        return self

    def wait_for(self, condition, timeout=30):
        """Until ``condition(samples)`` holds; False at the deadline or when the probe died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._thread.is_alive():
            if condition(list(self.samples)):
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout=30):
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the watcher thread did not stop within {timeout}s")
        if self.error is not None:
            raise AssertionError(f"the watcher thread died: {self.error!r}") from self.error

    def within(self, start, end):
        return [value for started, ended, value in self.samples if start <= started and ended <= end]


def _confirms(event, repository, kind, digest):
    """Whether a proxied request answered that ``digest`` is in ``repository`` (a blob, or a
    manifest): a HEAD 200, a committed upload (PUT ...?digest= 201), a mount 201, a manifest PUT 201."""
    path = unquote(event["path"])
    base = f"/v2/{repository}/"
    if not path.startswith(base) or event["status"] not in (200, 201):
        return False
    rest = path[len(base):]
    if kind == "manifest":
        return event["method"] in ("HEAD", "PUT") and rest == "manifests/" + digest
    if event["method"] == "HEAD":
        return rest == "blobs/" + digest
    if event["method"] == "PUT" and rest.startswith("blobs/uploads/"):
        return parse_qs(urlsplit(path).query).get("digest") == [digest]
    if event["method"] == "POST" and rest.startswith("blobs/uploads/"):
        return event["status"] == 201 and parse_qs(urlsplit(path).query).get("mount") == [digest]
    return False


def manifest_puts_out_of_order(events, repository, reference, manifest):
    """``(puts, problems)``: every PUT of ``repository``'s manifest ``reference`` the proxy saw
    and, for each, the blobs and child manifests of ``manifest`` (``manifests.parse_manifest``'s
    answer) that no earlier answered request had confirmed in that repository when the PUT
    arrived. The registry refuses some of these PUTs itself; this check does not rely on it."""
    target = f"/v2/{repository}/manifests/{reference}"
    puts = [e for e in events if e["method"] == "PUT" and unquote(urlsplit(e["path"]).path) == target]
    wanted = [("blob", b["digest"]) for b in manifest["blobs"]] + [("manifest", c["digest"])
                                                                   for c in manifest["children"]]
    problems = []
    for put in puts:
        for kind, digest in wanted:
            if not any(e["end"] is not None and e["end"] < put["start"] and _confirms(e, repository, kind, digest)
                       for e in events):
                problems.append(f"PUT {target} (request {int(put['start'])}) before {kind} {digest} was in place")
    return puts, problems


class RegistryLog:
    """The requests one lab registry logged from now on (its own access log, not the engine's
    counters: the integrated registry's process log, or the container logs of an environment
    registry's pods). ``requests(fragment)`` -> ``[(method, uri, status)]`` of the new lines
    whose URI contains ``fragment``."""

    LINE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[0-9.]+" (\d{3})')

    def __init__(self, lab, env):
        self.lab, self.env = lab, env
        self.offsets = {path: os.path.getsize(path) for path in lab.registry_logs(env)}

    def requests(self, fragment):
        text = ""
        for path in self.lab.registry_logs(self.env):  # a pod started since: its log from the start
            with open(path, "rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                chunk = handle.read()
            self.offsets[path] = self.offsets.get(path, 0) + len(chunk)
            text += chunk.decode("utf-8", "replace")
        return [(m.group(1), m.group(2), int(m.group(3))) for m in self.LINE.finditer(text)
                if fragment in unquote(m.group(2))]
