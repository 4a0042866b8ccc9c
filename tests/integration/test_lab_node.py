"""The registry cluster's node runs what a role creates (lab/node.py, lab/images.py; labctl up).

Real kubelet, containerd, runc, CNI bridge, kube-proxy and kube-scheduler; images built by the lab
and pulled by the node from the lab's mirror registry; volumes from kube-controller-manager's
host-path provisioner.
"""
import hashlib
import json
import os
import time

import jinja2
import pytest
import requests
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from lab import image, images, labctl, node
from tests.integration import promotion_lab as pl

TEMPLATE = os.path.join(labctl.REPO, "roles", "registry_cluster", "templates", "registry-config.yml.j2")
TOKEN_SERVICE = labctl.INTEGRATED_SERVICE  # the repository names the namespace to authorize in


@pytest.fixture(scope="module")
def core(lab, lab_node):
    return kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))


@pytest.fixture(scope="module")
def refs(lab):
    return lab.image_references()


@pytest.fixture
def namespace(core, unique):
    name = "node-" + unique
    core.create_namespace({"metadata": {"name": name}})
    # the service account admission plugin needs the default account before a pod is admitted
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except ApiException:
            assert time.monotonic() < deadline, "no default service account in " + name
            time.sleep(0.2)
    yield name
    core.delete_namespace(name)


def _pods(core, namespace, selector):
    return core.list_namespaced_pod(namespace, label_selector=selector).items


def _ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def _registry_objects(lab, namespace, service_ip, refs, tls=True):
    """What a registry Deployment needs; ``tls=False``: the pod serves plain HTTP (behind an edge
    Route, which terminates TLS at the router)."""
    cert, key = lab.ca.issue("node-test-registry-" + namespace, "registry." + namespace,
                             hosts=(service_ip, f"registry.{namespace}.svc"), server=True)
    with open(TEMPLATE) as handle:
        config = jinja2.Template(handle.read(), undefined=jinja2.StrictUndefined).render(
            registry_cluster_config_environment="node-test",
            registry_cluster_config_storage_root="/var/lib/registry",
            registry_cluster_config_listen=":5000",
            registry_cluster_config_tls_cert="/etc/registry-tls/tls.crt" if tls else "",
            registry_cluster_config_tls_key="/etc/registry-tls/tls.key",
            registry_cluster_config_token_realm=f"https://localhost:{int(labctl.TOKEN_SERVER_PORT)}/token",
            registry_cluster_config_token_service=TOKEN_SERVICE,
            registry_cluster_config_token_issuer="segmented-registry-lab",
            registry_cluster_config_token_rootcertbundle="/etc/registry-token/signing.crt")
    with open(cert) as c, open(key) as k, open(os.path.join(lab.state, "pki", "token-signing.crt")) as s:
        tls, tls_key, signing = c.read(), k.read(), s.read()
    for path in (cert, key):
        os.unlink(path)
    labels = {"app": "registry"}
    deployment = {
        "metadata": {"name": "registry", "labels": labels},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{
                    "name": "registry", "image": refs["registry"],
                    "ports": [{"containerPort": 5000}],
                    "env": [{"name": "REGISTRY_HTTP_SECRET",
                             "valueFrom": {"secretKeyRef": {"name": "registry-http", "key": "secret"}}}],
                    "readinessProbe": {"tcpSocket": {"port": 5000}, "periodSeconds": 1},
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/distribution"},
                        {"name": "tls", "mountPath": "/etc/registry-tls"},
                        {"name": "token", "mountPath": "/etc/registry-token"},
                        {"name": "storage", "mountPath": "/var/lib/registry"}]}],
                "terminationGracePeriodSeconds": 5,
                "volumes": [
                    {"name": "config", "configMap": {"name": "registry-config"}},
                    {"name": "tls", "secret": {"secretName": "registry-tls"}},
                    {"name": "token", "configMap": {"name": "registry-token"}},
                    {"name": "storage", "persistentVolumeClaim": {"claimName": "registry-storage"}}]}}}}
    return {
        "config": {"metadata": {"name": "registry-config"}, "data": {"config.yml": config}},
        "token": {"metadata": {"name": "registry-token"}, "data": {"signing.crt": signing}},
        "tls": {"metadata": {"name": "registry-tls"}, "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": tls, "tls.key": tls_key}},
        "http": {"metadata": {"name": "registry-http"}, "stringData": {"secret": os.urandom(16).hex()}},
        "claim": {"metadata": {"name": "registry-storage"},
                  "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        "deployment": deployment,
    }


def _create(core, apps, namespace, objects):
    """The objects of ``_registry_objects``, the Deployment last."""
    core.create_namespaced_config_map(namespace, objects["config"])
    core.create_namespaced_config_map(namespace, objects["token"])
    core.create_namespaced_secret(namespace, objects["tls"])
    core.create_namespaced_secret(namespace, objects["http"])
    core.create_namespaced_persistent_volume_claim(namespace, objects["claim"])
    apps.create_namespaced_deployment(namespace, objects["deployment"])


def _push(lab, skopeo, address, namespace, seed, tmp_path):
    """Push a small image to ``address`` as the namespace's builder: (token, reference, digest)."""
    builder = lab.builder_token(namespace)
    layout = str(tmp_path / "oci")
    digest = image.build_oci_layout(layout, layers=2, layer_size=64 * 1024, seed=seed)
    reference = f"docker://{address}/{namespace}/app:v1"
    pushed = skopeo("copy", "oci:" + layout, reference, token=builder, registry=address)
    assert pushed.returncode == 0, pushed.stderr
    return builder, reference, digest


def test_registry_deployment_runs_serves_push_and_pull_and_stops(lab, core, refs, namespace, skopeo, unique,
                                                                 tmp_path):
    apps = kclient.AppsV1Api(lab.api_client(lab.layout.registry_cluster))
    service = core.create_namespaced_service(namespace, {
        "metadata": {"name": "registry"},
        "spec": {"selector": {"app": "registry"}, "ports": [{"port": 5000, "targetPort": 5000}]}})
    address = f"{service.spec.cluster_ip}:5000"
    objects = _registry_objects(lab, namespace, service.spec.cluster_ip, refs)
    _create(core, apps, namespace, objects)

    pod = pl.wait_until(lambda: next((p for p in _pods(core, namespace, "app=registry") if _ready(p)), None),
                        120, "a Ready registry pod")
    assert pod.spec.node_name == node.NODE_NAME  # placed by kube-scheduler
    assert pod.status.pod_ip.startswith("10.244.0.")
    claim = core.read_namespaced_persistent_volume_claim("registry-storage", namespace)
    assert claim.status.phase == "Bound"
    volume_path = core.read_persistent_volume(claim.spec.volume_name).spec.host_path.path

    # kube-proxy programs the Service once the EndpointSlice lists the Ready pod
    pl.wait_for_challenge(lab, address, 30)
    # push through the Service (kube-proxy) with a token the lab's token server turns into a JWT
    builder, reference, digest = _push(lab, skopeo, address, namespace, "node-" + unique, tmp_path)
    raw = skopeo("inspect", "--raw", reference, token=builder, registry=address)
    assert raw.returncode == 0, raw.stderr
    assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == digest
    pulled = skopeo("inspect", reference, token=builder, registry=address)
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["Digest"] == digest
    anonymous = skopeo("inspect", "--no-creds", reference)
    assert anonymous.returncode != 0 and "unauthorized" in anonymous.stderr.lower()
    # what the registry wrote is on the claim's volume on this machine
    assert os.path.isdir(os.path.join(volume_path, "docker", "registry", "v2", "repositories", namespace, "app"))

    apps.delete_namespaced_deployment("registry", namespace, propagation_policy="Foreground")
    pl.wait_until(lambda: not _pods(core, namespace, "app=registry"), 60, "the registry pod gone")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"https://{address}/v2/", verify=lab.ca.cert_path, timeout=5)


def test_registry_deployment_behind_an_edge_route_answers_on_the_route_host(lab, core, refs, namespace, skopeo,
                                                                            unique, tmp_path):
    """What the registry-cluster role creates, end to end: a Deployment of the registry image with
    its configuration mounted from a ConfigMap, a Service, and an edge Route that the lab's router
    serves on the route host over TLS (the router's certificate, from the lab CA)."""
    apps = kclient.AppsV1Api(lab.api_client(lab.layout.registry_cluster))
    routes = DynamicClient(lab.api_client(lab.layout.registry_cluster)).resources.get(
        api_version="route.openshift.io/v1", kind="Route")
    service = core.create_namespaced_service(namespace, {
        "metadata": {"name": "registry"},
        "spec": {"selector": {"app": "registry"}, "ports": [{"name": "http", "port": 5000, "targetPort": 5000}]}})
    objects = _registry_objects(lab, namespace, service.spec.cluster_ip, refs, tls=False)
    _create(core, apps, namespace, objects)
    host = f"registry-{namespace}.{labctl.ROUTER_DOMAIN}"
    routes.create(namespace=namespace, body={
        "apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "registry"},
        "spec": {"host": host, "to": {"kind": "Service", "name": "registry"}, "port": {"targetPort": "http"},
                 "tls": {"termination": "edge"}}})
    pl.wait_until(lambda: next((p for p in _pods(core, namespace, "app=registry") if _ready(p)), None), 120,
                  "a Ready registry pod")

    def admitted():
        ingress = (routes.get(name="registry", namespace=namespace).to_dict().get("status") or {}).get("ingress")
        return any(c.get("type") == "Admitted" and c.get("status") == "True"
                   for item in ingress or [] for c in item.get("conditions") or [])

    pl.wait_until(admitted, 30, "the Route admitted by the lab's router")

    pl.wait_for_challenge(lab, host, 60)
    builder, reference, digest = _push(lab, skopeo, host, namespace, "route-" + unique, tmp_path)
    pulled = skopeo("inspect", reference, token=builder, registry=host)
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["Digest"] == digest

    apps.delete_namespaced_deployment("registry", namespace, propagation_policy="Foreground")
    pl.wait_until(lambda: not _pods(core, namespace, "app=registry"), 60, "the registry pod gone")
    pl.wait_until(lambda: requests.get(f"https://{host}/v2/", verify=lab.ca.cert_path, timeout=5).status_code == 503,
                  30, "the route answering 503 without endpoints")


def test_unpullable_image_reports_err_image_pull(core, namespace, unique):
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "missing"},
        "spec": {"containers": [{"name": "c", "image": f"{images.MIRROR_HOST}/lab/no-such-image:{unique}"}]}})

    def reason():
        statuses = core.read_namespaced_pod("missing", namespace).status.container_statuses or []
        waiting = statuses and statuses[0].state.waiting
        return waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff") and waiting

    waiting = pl.wait_until(reason, 60, "ErrImagePull or ImagePullBackOff")
    # the mirror was reached and trusted: it just has no such image
    assert f"lab/no-such-image:{unique}: not found" in waiting.message
    assert "x509" not in waiting.message


def test_pod_writes_its_claim_and_calls_the_api_server_through_the_kubernetes_service(core, refs, namespace):
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}}})
    # kubectl's in-cluster configuration: https://$KUBERNETES_SERVICE_HOST (10.96.0.1), the
    # service-account token, and the cluster CA that must vouch for the API server's certificate
    script = "kubectl auth whoami -o json > /data/review.json && cp /data/review.json /dev/termination-log"
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "client"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "client", "image": refs["kubectl"], "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}})

    def finished():
        pod = core.read_namespaced_pod("client", namespace)
        return pod.status.phase in ("Succeeded", "Failed") and pod

    pod = pl.wait_until(finished, 90, "the client pod finished")
    terminated = pod.status.container_statuses[0].state.terminated
    assert pod.status.phase == "Succeeded", terminated
    review = json.loads(terminated.message)
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:default"
    claim = core.read_namespaced_persistent_volume_claim("data", namespace)
    path = core.read_persistent_volume(claim.spec.volume_name).spec.host_path.path
    with open(os.path.join(path, "review.json")) as handle:
        assert json.load(handle) == review
