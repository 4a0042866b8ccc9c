"""The environment registries' token server over TLS end to end (roles/registry_cluster): the pod
serves HTTPS with the certificate the service CA (lab/service_ca.py, OpenShift's on a real cluster)
issues for its Service, the Route re-encrypts, nothing speaks plain HTTP behind the router, and a
renewed certificate is served without a restart."""
import base64
import os
import socket
import ssl
import time

import pytest
import requests
from cryptography import x509
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

from lab import service_ca
from tests.integration import promotion_lab as pl

NAMESPACE = "segmented-registry"
SECRET = "token-server-tls"


@pytest.fixture(scope="module")
def core(lab):
    return kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))


def service_ca_cert(lab):
    with open(os.path.join(lab.service_ca_dir, "ca.crt"), "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def secret_cert(core):
    secret = core.read_namespaced_secret(SECRET, NAMESPACE)
    assert secret.type == "kubernetes.io/tls"
    return x509.load_pem_x509_certificate(base64.b64decode(secret.data["tls.crt"]))


def the_pod(core):
    pods = [p for p in core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/name=token-server").items
            if p.metadata.deletion_timestamp is None and p.status.pod_ip]
    assert len(pods) == 1, [p.metadata.name for p in pods]  # the lab inventory runs one replica
    return pods[0]


def served_cert(address, port):
    """The certificate the pod presents (read unverified: the assertions check it)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((address, port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=f"token-server.{NAMESPACE}.svc") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_the_pod_serves_the_service_ca_certificate_over_https_only(lab, core):
    service = core.read_namespaced_service("token-server", NAMESPACE)
    assert service.metadata.annotations[service_ca.SECRET_NAME_ANNOTATION] == SECRET
    assert [(p.name, p.port) for p in service.spec.ports] == [("https", 8443)]
    cert = secret_cert(core)
    cert.verify_directly_issued_by(service_ca_cert(lab))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert f"token-server.{NAMESPACE}.svc" in names

    pod = the_pod(core)
    container = pod.spec.containers[0]
    assert [p.container_port for p in container.ports] == [8443]
    assert container.readiness_probe.http_get.scheme == "HTTPS" and container.liveness_probe.http_get.scheme == "HTTPS"
    assert served_cert(pod.status.pod_ip, 8443) == cert
    # plain HTTP: Go's TLS server answers a bare 400 and serves nothing; the old port is closed
    plain = requests.get(f"http://{pod.status.pod_ip}:8443/healthz", timeout=5)
    assert plain.status_code == 400 and "status" not in plain.text
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{pod.status.pod_ip}:8080/healthz", timeout=5)


def test_the_route_reencrypts_and_a_token_comes_through_it(lab):
    route = kclient.CustomObjectsApi(lab.api_client(lab.layout.registry_cluster)).get_namespaced_custom_object(
        "route.openshift.io", "v1", NAMESPACE, "routes", "token-server")
    assert route["spec"]["tls"] == {"termination": "reencrypt", "insecureEdgeTerminationPolicy": "None"}
    assert route["spec"]["port"] == {"targetPort": "https"}
    answer = requests.get(f"https://{lab.layout.token_server_host}/token", auth=("u", lab.auditor_token()),
                          params={"service": "env-test", "scope": "repository:tls-check/app:pull"},
                          verify=lab.ca.cert_path, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["token"].count(".") == 2
    # no plain HTTP in front either (insecureEdgeTerminationPolicy None): the router's default backend
    plain = requests.get(f"http://{lab.layout.token_server_host}/healthz", timeout=5, allow_redirects=False)
    assert plain.status_code == 503


def test_a_reissued_certificate_is_served_without_a_restart(lab, core):
    pod = the_pod(core)
    before = secret_cert(core)
    assert served_cert(pod.status.pod_ip, 8443) == before
    core.delete_namespaced_secret(SECRET, NAMESPACE)

    def reissued():
        try:
            cert = secret_cert(core)
        except ApiException:
            return None
        return cert if cert.serial_number != before.serial_number else None

    after = pl.wait_until(reissued, 30, "the service CA issuing the deleted Secret again")
    # the kubelet refreshes a Secret volume when it syncs the pod: an update of the pod makes it sync now
    core.patch_namespaced_pod(pod.metadata.name, NAMESPACE,
                              {"metadata": {"annotations": {"segmented.registry/test-sync": str(time.time())}}})
    pl.wait_until(lambda: served_cert(pod.status.pod_ip, 8443) == after, 90,
                  "the token server serving the new certificate")
    now = core.read_namespaced_pod(pod.metadata.name, NAMESPACE)
    assert now.metadata.uid == pod.metadata.uid
    assert now.status.container_statuses[0].restart_count == pod.status.container_statuses[0].restart_count
    answer = requests.get(f"https://{lab.layout.token_server_host}/healthz", verify=lab.ca.cert_path, timeout=10)
    assert answer.status_code == 200, "the router verifies the new certificate against the service CA"
