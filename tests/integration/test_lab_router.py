"""The lab's router (lab/router.py, started by labctl up): Routes of the registry cluster answer on
their hosts through HAProxy on 127.0.0.1:443, with edge, reencrypt and passthrough TLS, as on
OpenShift. Backends are real registries (CNCF distribution with the lab's token server) behind
selector-less Services and EndpointSlices; images are pushed and pulled through the route hosts
with skopeo over verified TLS."""
import datetime
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kubernetes import client as kclient
from kubernetes.dynamic import DynamicClient

from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import TOKEN_SERVER_AUDIENCE
from lab import image
from lab import labctl
from tests.integration.promotion_lab import PROMOTER_ROLE, ExtraRegistry


@pytest.fixture
def cluster(lab, unique):
    """A namespace on the registry cluster, and a service account token that may push and pull in
    the test registry's namespace (the environment-promoter ClusterRole cluster-wide, a token for the
    token server's audience; removed afterwards)."""
    namespace = "router-" + unique
    api = lab.api_client(lab.layout.registry_cluster)
    token = lab.service_account_token(namespace, "pusher", [PROMOTER_ROLE], audiences=[TOKEN_SERVER_AUDIENCE])
    try:
        yield {"namespace": namespace, "api": api, "dyn": DynamicClient(api), "token": token}
    finally:
        kclient.RbacAuthorizationV1Api(api).delete_cluster_role_binding(
            f"{PROMOTER_ROLE}:{namespace}:pusher")
        kclient.CoreV1Api(api).delete_namespace(namespace)


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="router-test-") as path:
        yield path


@pytest.fixture
def certificate(lab, cluster):
    """A serving certificate from the lab CA for ``hosts`` (removed afterwards)."""
    issued = []

    def issue(*hosts):
        issued.extend(lab.ca.issue(f"router-test-{cluster['namespace']}-{len(issued)}", hosts[0],
                                   hosts=hosts, server=True))
        return issued[-2:]

    yield issue
    for path in issued:
        os.unlink(path)


@pytest.fixture
def registries(lab, workdir):
    """Registries of our own in the lab's endpoint network namespace, on its address (EndpointSlices
    refuse loopback addresses), as pods would be on their pod IPs."""
    started = []

    def start(name, tls):
        folder = os.path.join(workdir, name)
        os.makedirs(folder)
        started.append(ExtraRegistry(lab, folder, tls=tls, service_endpoint=True).start())
        return started[-1]

    yield start
    for registry in started:
        registry.stop()


def backend(cluster, service, ip, port, port_name="registry"):
    """A selector-less Service and its EndpointSlice: ``service`` is served at ``ip:port``."""
    core = kclient.CoreV1Api(cluster["api"])
    core.create_namespaced_service(cluster["namespace"], {
        "metadata": {"name": service},
        "spec": {"ports": [{"name": port_name, "port": 5000, "targetPort": port, "protocol": "TCP"}]}})
    kclient.DiscoveryV1Api(cluster["api"]).create_namespaced_endpoint_slice(cluster["namespace"], {
        "metadata": {"name": service + "-1", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}]})


def create_route(cluster, name, service, tls=None, host=None, target_port="registry"):
    spec = {"to": {"kind": "Service", "name": service, "weight": 100}, "port": {"targetPort": target_port}}
    if tls:
        spec["tls"] = tls
    if host:
        spec["host"] = host
    routes = cluster["dyn"].resources.get(api_version="route.openshift.io/v1", kind="Route")
    routes.create(body={"apiVersion": "route.openshift.io/v1", "kind": "Route",
                        "metadata": {"name": name}, "spec": spec}, namespace=cluster["namespace"])


def ingress(cluster, name, timeout=30):
    """The router's status.ingress entry of a Route, once written."""
    routes = cluster["dyn"].resources.get(api_version="route.openshift.io/v1", kind="Route")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = routes.get(name=name, namespace=cluster["namespace"]).to_dict().get("status") or {}
        for entry in status.get("ingress") or []:
            if entry.get("routerName") == "default" and entry.get("conditions"):
                return entry
        time.sleep(0.3)
    raise AssertionError(f"route {name} got no status.ingress from the router in {int(timeout)}s")


def answers(lab, host, timeout=30):
    """GET https://<host>/v2/ through the router (the host resolves through the router's
    /etc/hosts entries) until it answers; returns the response."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = requests.get(f"https://{host}/v2/", verify=lab.ca.cert_path, timeout=5)
            if last.status_code != 503:
                return last
        except requests.RequestException as exc:  # not yet in /etc/hosts, or haproxy reloading
            last = exc
        time.sleep(0.3)
    if isinstance(last, Exception):
        raise AssertionError(f"https://{host}/ did not answer through the router: {last}")
    return last


def served_certificate(host):
    """The certificate the client sees on 127.0.0.1:443 when it asks for ``host`` (SNI)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", labctl.ROUTER_HTTPS_PORT), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def push_and_pull(lab, cluster, workdir, reference):
    """Push a built image to ``reference`` with skopeo, then inspect and pull it back with skopeo;
    both must see the pushed digest."""
    layout = os.path.join(workdir, "layout-" + reference.split("/")[0].split(".")[0])
    image.build_oci_layout(layout, layers=2, layer_size=256 * 1024, seed=reference)
    digest = image.push(layout, reference, username="pusher", password=cluster["token"], ca_dir=lab.trust_dir)
    auth = os.path.join(workdir, "auth.json")
    fd = os.open(auth, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(image.auth_config(reference.split("/")[0], "pusher", cluster["token"]), handle)
    common = ["--authfile", auth, "--cert-dir", lab.trust_dir]
    inspect = subprocess.run(["skopeo", "inspect", *common, "docker://" + reference],
                             capture_output=True, text=True, timeout=120, check=False)
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Digest"] == digest
    pulled = os.path.join(workdir, "pulled")
    copy = subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--src-authfile", auth,
                           "--src-cert-dir", lab.trust_dir, "--digestfile", pulled + ".digest",
                           "docker://" + reference, "dir:" + pulled], capture_output=True, text=True, timeout=120,
                          check=False)
    assert copy.returncode == 0, copy.stderr
    with open(pulled + ".digest") as handle:
        assert handle.read().strip() == digest
    return digest


def test_edge_route_terminates_tls_with_the_default_certificate_and_reaches_a_plain_http_registry(
        lab, cluster, registries, workdir):
    registry = registries("plain", tls=False)
    backend(cluster, "registry", labctl.ENDPOINT_ADDRESS, registry.port)
    create_route(cluster, "edge", "registry", tls={"termination": "edge"})
    entry = ingress(cluster, "edge")
    host = f"edge-{cluster['namespace']}.{labctl.ROUTER_DOMAIN}"
    assert entry["host"] == host
    assert entry["conditions"][0]["type"] == "Admitted" and entry["conditions"][0]["status"] == "True"
    assert entry["routerCanonicalHostname"] == "router-default." + labctl.ROUTER_DOMAIN
    assert answers(lab, host).status_code == 401  # the registry's own answer: it wants a token
    names = served_certificate(host).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["*." + labctl.ROUTER_DOMAIN]
    push_and_pull(lab, cluster, workdir, f"{host}/test/app:v1")


def test_plain_http_port_follows_the_insecure_edge_termination_policy(lab, cluster, registries):
    registry = registries("plain", tls=False)
    backend(cluster, "registry", labctl.ENDPOINT_ADDRESS, registry.port)
    create_route(cluster, "allow", "registry", tls={"termination": "edge", "insecureEdgeTerminationPolicy": "Allow"})
    create_route(cluster, "redirect", "registry",
                 tls={"termination": "edge", "insecureEdgeTerminationPolicy": "Redirect"})
    create_route(cluster, "none", "registry", tls={"termination": "edge"})
    hosts = {name: ingress(cluster, name)["host"] for name in ("allow", "redirect", "none")}
    for host in hosts.values():
        answers(lab, host)  # admitted and served over TLS

    def plain(host):
        return requests.get(f"http://{host}/v2/", allow_redirects=False, timeout=5)

    assert plain(hosts["allow"]).status_code == 401
    redirected = plain(hosts["redirect"])
    assert redirected.status_code == 302 and redirected.headers["Location"] == f"https://{hosts['redirect']}/v2/"
    assert plain(hosts["none"]).status_code == 503


def test_edge_route_with_its_own_certificate_serves_it(lab, cluster, registries, certificate):
    registry = registries("plain", tls=False)
    backend(cluster, "registry", labctl.ENDPOINT_ADDRESS, registry.port)
    host = f"own-cert-{cluster['namespace']}.{labctl.ROUTER_DOMAIN}"
    cert, key = certificate(host)
    with open(cert) as c, open(key) as k:
        create_route(cluster, "edge", "registry", host=host,
                     tls={"termination": "edge", "certificate": c.read(), "key": k.read()})
    assert ingress(cluster, "edge")["conditions"][0]["status"] == "True"
    assert answers(lab, host).status_code == 401
    with open(cert, "rb") as c:
        assert served_certificate(host).serial_number == x509.load_pem_x509_certificate(c.read()).serial_number


def _other_ca_pem():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the lab CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_reencrypt_route_verifies_the_backend_against_the_destination_ca(
        lab, cluster, registries, workdir, certificate):
    # the registry's serving certificate, from the lab CA, names the Service as the service CA would
    service_name = f"registry.{cluster['namespace']}.svc"
    registry = registries("tls", tls=certificate(service_name, labctl.ENDPOINT_ADDRESS))
    backend(cluster, "registry", labctl.ENDPOINT_ADDRESS, registry.port)
    with open(lab.ca.cert_path) as handle:
        lab_ca = handle.read()
    create_route(cluster, "reencrypt", "registry",
                 tls={"termination": "reencrypt", "destinationCACertificate": lab_ca})
    create_route(cluster, "service-ca", "registry", tls={"termination": "reencrypt"})
    create_route(cluster, "wrong-ca", "registry",
                 tls={"termination": "reencrypt", "destinationCACertificate": _other_ca_pem()})
    host = ingress(cluster, "reencrypt")["host"]
    assert answers(lab, host).status_code == 401
    push_and_pull(lab, cluster, workdir, f"{host}/test/app:v1")
    # no destinationCACertificate: the default destination CA and the name <service>.<namespace>.svc
    assert answers(lab, ingress(cluster, "service-ca")["host"]).status_code == 401
    # the backend's certificate is not signed by that route's destinationCACertificate: no backend
    assert answers(lab, ingress(cluster, "wrong-ca")["host"], timeout=3).status_code == 503


def test_reencrypt_without_destination_ca_checks_the_service_name(lab, cluster, registries, certificate):
    registry = registries("tls", tls=certificate(f"another.{cluster['namespace']}.svc", labctl.ENDPOINT_ADDRESS))
    backend(cluster, "registry", labctl.ENDPOINT_ADDRESS, registry.port)
    create_route(cluster, "service-ca", "registry", tls={"termination": "reencrypt"})
    assert answers(lab, ingress(cluster, "service-ca")["host"], timeout=3).status_code == 503


def test_passthrough_route_hands_the_tls_connection_to_the_registry(
        lab, cluster, registries, workdir, certificate):
    host = f"passthrough-{cluster['namespace']}.{labctl.ROUTER_DOMAIN}"
    cert, key = certificate(host, labctl.ENDPOINT_ADDRESS)
    registry = registries("passthrough", tls=(cert, key))
    backend(cluster, "registry", labctl.ENDPOINT_ADDRESS, registry.port)
    create_route(cluster, "passthrough", "registry", tls={"termination": "passthrough"})
    assert ingress(cluster, "passthrough")["host"] == host
    assert answers(lab, host).status_code == 401
    with open(cert, "rb") as c:  # the registry's own certificate, not the router's
        assert served_certificate(host).serial_number == x509.load_pem_x509_certificate(c.read()).serial_number
    push_and_pull(lab, cluster, workdir, f"{host}/test/app:v1")


def test_route_without_endpoints_answers_503_and_a_claimed_host_is_rejected(lab, cluster):
    kclient.CoreV1Api(cluster["api"]).create_namespaced_service(cluster["namespace"], {
        "metadata": {"name": "nothing"}, "spec": {"ports": [{"name": "registry", "port": 5000}]}})
    create_route(cluster, "empty", "nothing", tls={"termination": "edge"})
    entry = ingress(cluster, "empty")
    assert entry["conditions"][0]["status"] == "True"
    assert answers(lab, entry["host"], timeout=5).status_code == 503
    time.sleep(1.1)  # a later creationTimestamp: the first route is the older one
    create_route(cluster, "second", "nothing", tls={"termination": "edge"}, host=entry["host"])
    condition = ingress(cluster, "second")["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "HostAlreadyClaimed")
    # deleting the route takes its host away
    routes = cluster["dyn"].resources.get(api_version="route.openshift.io/v1", kind="Route")
    routes.delete(name="empty", namespace=cluster["namespace"])
    routes.delete(name="second", namespace=cluster["namespace"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open("/etc/hosts") as handle:
            if entry["host"] not in handle.read():
                break
        time.sleep(0.3)
    else:
        raise AssertionError(f"{entry['host']} still in /etc/hosts after its route was deleted")


def test_route_with_unusable_tls_material_is_not_admitted(cluster):
    kclient.CoreV1Api(cluster["api"]).create_namespaced_service(cluster["namespace"], {
        "metadata": {"name": "nothing"}, "spec": {"ports": [{"name": "registry", "port": 5000}]}})
    create_route(cluster, "bad", "nothing", tls={"termination": "edge", "certificate": "not a certificate",
                                                 "key": "not a key"})
    condition = ingress(cluster, "bad")["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "ExtendedValidationFailed")


def test_labctl_status_reports_the_router(lab):
    status = lab.status()
    assert [c["running"] for c in status["components"] if c["component"] == "router"] == [True]
    assert status["router"]["https"] == "127.0.0.1:443" and status["router"]["domain"] == labctl.ROUTER_DOMAIN
