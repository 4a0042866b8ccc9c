"""The lab is real: what every other integration test stands on."""
import base64
import json
import os
import socket
import subprocess
import time

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import TOKEN_SERVER_AUDIENCE, mint_token
from lab import netns
from tests.integration.promotion_lab import ExtraRegistry
from tests.integration.test_reconcile import jwt_claims


def _clusters(lab):
    return [name for name, _port in lab.layout.clusters]


def test_kubernetes_core_creates_objects_on_every_cluster(lab, run_playbook, unique):
    namespace = "labtest-" + unique
    # an address of the lab's own endpoint namespace: kube-proxy on a node may program it, so it
    # must never lead off this machine
    variables = {"lab_test_namespace": namespace, "lab_endpoint_address": netns.ADDRESS}
    runner = run_playbook("tests/integration/playbooks/objects_on_every_cluster.yml", extravars=variables)
    assert runner.status == "successful", runner.stdout_text
    for cluster in _clusters(lab):
        api = lab.api_client(cluster)
        assert kclient.CoreV1Api(api).read_namespaced_service("docker-registry", namespace).spec.selector is None
        slice_ = kclient.DiscoveryV1Api(api).read_namespaced_endpoint_slice("docker-registry-1", namespace)
        assert slice_.endpoints[0].addresses == [netns.ADDRESS]
        stream = DynamicClient(api).resources.get(api_version="image.openshift.io/v1", kind="ImageStream").get(
            name="app", namespace=namespace)
        assert stream.spec.tags[0].annotations.description == "made by a test"
    rerun = run_playbook("tests/integration/playbooks/objects_on_every_cluster.yml", extravars=variables)
    assert rerun.status == "successful"
    assert not any(rerun.stats["changed"].values()), rerun.stdout_text
    assert sum(rerun.stats["ok"].values()) == 4 * len(_clusters(lab))


@pytest.mark.parametrize("cluster", ["registry", "test", "uat", "prod"])
def test_stale_resource_version_gets_409(lab, cluster, unique):
    api = lab.api_client(cluster)
    streams = DynamicClient(api).resources.get(api_version="image.openshift.io/v1", kind="ImageStream")
    kclient.CoreV1Api(api).create_namespace({"metadata": {"name": "rv-" + unique}})
    created = streams.create(namespace="rv-" + unique, body={
        "apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": {"name": "app"}, "spec": {}})
    stale = created.metadata.resourceVersion
    body = created.to_dict()
    body["spec"] = {"tags": [{"name": "a", "annotations": {"k": "1"}}]}
    fresh = streams.replace(namespace="rv-" + unique, body=body)
    assert fresh.metadata.resourceVersion != stale
    body["spec"] = {"tags": [{"name": "b"}]}
    body["metadata"]["resourceVersion"] = stale
    with pytest.raises(ApiException) as conflict:
        streams.replace(namespace="rv-" + unique, body=body)
    assert conflict.value.status == 409
    assert streams.get(name="app", namespace="rv-" + unique).spec.tags[0].name == "a"


@pytest.mark.parametrize("cluster", ["registry", "test", "uat", "prod"])
def test_token_request_authenticates_as_its_service_account(lab, cluster, make_token, unique, eventually):
    namespace = "sa-" + unique
    token = make_token(namespace, "robot", cluster=cluster)
    port = dict(lab.layout.clusters)[cluster]
    who = requests.post(
        f"https://127.0.0.1:{int(port)}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={"Authorization": "Bearer " + token}, verify=lab.ca.cert_path, timeout=10)
    assert who.status_code == 201, who.text
    user = who.json()["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:robot"
    assert "system:serviceaccounts:" + namespace in user["groups"]
    # kube-controller-manager runs: every namespace gets its default service account and CA bundle
    core = kclient.CoreV1Api(lab.api_client(cluster))
    assert eventually(lambda: core.read_namespaced_service_account("default", namespace))
    assert "ca.crt" in eventually(lambda: core.read_namespaced_config_map("kube-root-ca.crt", namespace)).data
    bad = requests.post(
        f"https://127.0.0.1:{int(port)}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={"Authorization": "Bearer " + token[:-4] + "AAAA"}, verify=lab.ca.cert_path, timeout=10)
    assert bad.status_code == 401


def test_every_cluster_serves_the_openshift_kinds(lab):
    for cluster in _clusters(lab):
        dyn = DynamicClient(lab.api_client(cluster))
        for api_version, kind in [("image.openshift.io/v1", "ImageStream"), ("route.openshift.io/v1", "Route"),
                                  ("config.openshift.io/v1", "Image"), ("config.openshift.io/v1", "ImageTagMirrorSet"),
                                  ("config.openshift.io/v1", "ImageDigestMirrorSet")]:
            assert dyn.resources.get(api_version=api_version, kind=kind)
        image_config = dyn.resources.get(api_version="config.openshift.io/v1", kind="Image").get(name="cluster")
        assert image_config.metadata.name == "cluster"


def _env_registries(lab):
    return [(env, endpoint) for env, endpoint in lab.layout.registries if env != "default"]


def _audience_token(lab, namespace, name):
    """A token of ``namespace/name`` on the registry cluster for the environment registries' token
    server, as the credentials and promotion roles mint them."""
    return mint_token(lab.api_client(lab.layout.registry_cluster), f"{namespace}/{name}", 3600,
                      audiences=[TOKEN_SERVER_AUDIENCE])


@pytest.fixture
def environment_roles(lab, unique):
    """ClusterRoles of this test (removed after it) granting the environment registries' verbs:
    ``{"pusher": name, "puller": name}``."""
    rbac = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster))
    names = {}
    for what, verbs in {"pusher": ["pull", "push"], "puller": ["pull"]}.items():
        names[what] = f"lab-environment-{what}-{unique}"
        rbac.create_cluster_role({"metadata": {"name": names[what]}, "rules": [{
            "apiGroups": ["segmented.registry"], "resources": ["environmentregistries"], "verbs": verbs}]})
    yield names
    for name in names.values():
        rbac.delete_cluster_role(name)


@pytest.mark.parametrize("env", ["test", "uat", "prod"])
def test_environment_registry_push_pull_with_right_credentials_only(
        lab, env, make_token, skopeo, oci_layout, unique, environment_roles):
    endpoint = dict(_env_registries(lab))[env]
    other_env, other_endpoint = [(e, ep) for e, ep in _env_registries(lab) if e != env][0]
    layout, digest = oci_layout
    ref = f"docker://{endpoint}/project-{unique}/app:v1"
    namespace = "lab-" + unique
    api_token = make_token(namespace, "pusher-" + env, roles={env: environment_roles["pusher"]})
    pusher = _audience_token(lab, namespace, "pusher-" + env)
    make_token(namespace, "puller-" + env, roles={env: environment_roles["puller"]})
    puller = _audience_token(lab, namespace, "puller-" + env)
    make_token(namespace, "nobody-" + env)
    nobody = _audience_token(lab, namespace, "nobody-" + env)
    # OpenShift's image roles (the ones admin, edit and the builder service account carry) do not
    # open an environment registry
    make_token(namespace, "image-pusher-" + env, roles={env: "system:image-pusher"})
    image_pusher = _audience_token(lab, namespace, "image-pusher-" + env)

    pushed = skopeo("copy", "oci:" + layout, ref, token=pusher, registry=endpoint)
    assert pushed.returncode == 0, pushed.stderr
    seen = skopeo("inspect", "--raw", ref, token=puller, registry=endpoint)
    assert seen.returncode == 0, seen.stderr
    assert json.loads(seen.stdout)["layers"] and len(json.loads(seen.stdout)["layers"]) == 3
    inspected = skopeo("inspect", ref, token=puller, registry=endpoint)
    assert json.loads(inspected.stdout)["Digest"] == digest  # bytes unchanged: same digest

    denied = [
        ("puller cannot push", skopeo("copy", "oci:" + layout, ref.replace(":v1", ":v2"), token=puller,
                                      registry=endpoint)),
        ("no role cannot pull", skopeo("inspect", ref, token=nobody, registry=endpoint)),
        ("forged token cannot pull", skopeo("inspect", ref, token=pusher[:-6] + "AAAAAA", registry=endpoint)),
        ("anonymous cannot pull", skopeo("inspect", "--no-creds", ref)),
        (f"a role in {env} does not open {other_env}",
         skopeo("inspect", f"docker://{other_endpoint}/project-{unique}/app:v1", token=pusher,
                registry=other_endpoint)),
        ("an API token without the audience cannot pull", skopeo("inspect", ref, token=api_token, registry=endpoint)),
        ("system:image-pusher cannot push", skopeo("copy", "oci:" + layout, ref.replace(":v1", ":v3"),
                                                   token=image_pusher, registry=endpoint)),
        ("system:image-pusher cannot pull", skopeo("inspect", ref, token=image_pusher, registry=endpoint)),
    ]
    for what, result in denied:
        assert result.returncode != 0, what
        assert "unauthorized" in result.stderr.lower() or "denied" in result.stderr.lower(), (what, result.stderr)
    untrusted = skopeo("inspect", ref, token=puller, registry=endpoint, trust=False)
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr

    # the token server itself: the audience-less token is not authenticated, OpenShift's image
    # role is authenticated and granted nothing
    realm = f"https://{lab.layout.token_server_host}/token"
    scope = {"service": "env-" + env, "scope": f"repository:project-{unique}/app:pull,push"}
    refused = requests.get(realm, params=scope, auth=("u", api_token), verify=lab.ca.cert_path, timeout=10)
    assert refused.status_code == 401, refused.text
    empty = requests.get(realm, params=scope, auth=("u", image_pusher), verify=lab.ca.cert_path, timeout=10)
    assert empty.status_code == 200, empty.text
    assert jwt_claims(empty.json()["token"])["access"] == []
    granted = requests.get(realm, params=scope, auth=("u", pusher), verify=lab.ca.cert_path, timeout=10)
    assert jwt_claims(granted.json()["token"])["access"] == [
        {"type": "repository", "name": f"project-{unique}/app", "actions": ["pull", "push"]}]


def _resigned(token, key, algorithm):
    """``token`` with its header's alg set to ``algorithm`` (RS256 or RS512) and signed again
    with ``key``: the same claims and certificate chain, only the algorithm differs."""
    header, claims, _signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    encoded = base64.urlsafe_b64encode(json.dumps(dict(header, alg=algorithm)).encode()).rstrip(b"=").decode()
    digest = {"RS256": hashes.SHA256(), "RS512": hashes.SHA512()}[algorithm]
    signature = key.sign(f"{encoded}.{claims}".encode(), padding.PKCS1v15(), digest)
    return f"{encoded}.{claims}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@pytest.mark.parametrize("env", ["test", "prod"])
def test_environment_registries_accept_rs256_tokens_only(lab, env, make_token, unique):
    """A token of the token server's own key and chain, signed RS512 instead of RS256, is refused:
    the registries pin the one algorithm the token server signs with (auth.token.signingalgorithms)."""
    endpoint = dict(_env_registries(lab))[env]
    make_token("alg-" + unique, "nobody")
    nobody = _audience_token(lab, "alg-" + unique, "nobody")
    realm = f"https://{lab.layout.token_server_host}/token"
    issued = requests.get(realm, params={"service": "env-" + env}, auth=("u", nobody), verify=lab.ca.cert_path,
                          timeout=10)
    assert issued.status_code == 200, issued.text
    secret = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).read_namespaced_secret(
        "token-server-signing", "segmented-registry")
    key = serialization.load_pem_private_key(base64.b64decode(secret.data["tls.key"]), None)
    answers = {algorithm: requests.get(f"https://{endpoint}/v2/", verify=lab.ca.cert_path, timeout=10, headers={
        "Authorization": "Bearer " + _resigned(issued.json()["token"], key, algorithm)}).status_code
        for algorithm in ("RS256", "RS512")}
    assert answers == {"RS256": 200, "RS512": 401}


def test_integrated_registry_authorizes_like_openshift(lab, make_token, skopeo, oci_layout, unique):
    registry = lab.layout.integrated_endpoint
    layout, digest = oci_layout
    own, other = "build-" + unique, "other-" + unique
    builder = make_token(own, "builder", roles={own: "system:image-builder"})
    make_token(other, "builder", roles={other: "system:image-builder"})
    ok = skopeo("copy", "oci:" + layout, f"docker://{registry}/{own}/app:v1", token=builder, registry=registry)
    assert ok.returncode == 0, ok.stderr
    foreign = skopeo("copy", "oci:" + layout, f"docker://{registry}/{other}/app:v1", token=builder,
                     registry=registry)
    assert foreign.returncode != 0 and ("denied" in foreign.stderr.lower() or "unauthorized" in foreign.stderr.lower())


def test_lab_push_records_status_only_like_openshift(lab, unique):
    namespace = "push-" + unique
    first = lab.push(namespace, "app", "v1", layers=3, layer_size=64 * 1024)
    second = lab.push(namespace, "app", "v2", layers=2, layer_size=64 * 1024)
    stream = DynamicClient(lab.api_client(lab.layout.registry_cluster)).resources.get(
        api_version="image.openshift.io/v1", kind="ImageStream").get(name="app", namespace=namespace)
    assert not (stream.spec.tags or []), "a push never creates a spec tag"
    tags = {t.tag: t.items[0] for t in stream.status.tags}
    assert tags["v1"].image == first["digest"] and tags["v2"].image == second["digest"]
    assert tags["v1"].dockerImageReference == f"{lab.layout.integrated_endpoint}/{namespace}/app@{first['digest']}"
    where = lab.where()
    assert where["default"]["tags"][f"{namespace}/app:v1"] == first["digest"]
    assert all(f"{namespace}/app:v1" not in where[env]["tags"] for env, _endpoint in _env_registries(lab)), \
        "environment registries start empty: only promotion copies into them"


def test_validate_playbook_accepts_the_lab_inventory(run_playbook):
    runner = run_playbook("playbooks/validate.yml")
    assert runner.status == "successful", runner.stdout_text


def _ip(*args):
    return subprocess.run(["ip", "-4", "-o", *args], check=True, capture_output=True, text=True).stdout


def test_endpoint_namespace_is_the_labs_own_and_joined_to_the_host_by_its_veth_only(lab):
    netns.ensure()  # labctl up made it; again changes nothing
    assert lab.status()["endpoint_namespace"]["present"]
    inside = _ip("-n", netns.NAME, "addr", "show")
    assert [line.split()[1:4] for line in inside.splitlines()] == [
        ["lo", "inet", "127.0.0.1/8"], [netns.NAMESPACE_VETH, "inet", f"{netns.ADDRESS}/{int(netns.PREFIX)}"]]
    assert _ip("-n", netns.NAME, "route", "show", "default") == "", "the namespace has no way out"
    host = _ip("addr", "show")
    assert [line.split()[3] for line in host.splitlines() if line.split()[1] == netns.HOST_VETH] == [
        f"{netns.HOST_ADDRESS}/{int(netns.PREFIX)}"]
    assert f" {netns.ADDRESS}/" not in host, "the endpoint address is the namespace's, not the host's"


def test_a_service_endpoint_registry_runs_in_the_endpoint_namespace_and_dies_when_killed(lab, tmp_path):
    registry = ExtraRegistry(lab, str(tmp_path), tls=False, service_endpoint=True).start()
    try:
        process_netns = os.stat(f"/proc/{int(registry.proc.pid)}/ns/net").st_ino
        assert process_netns == os.stat("/run/netns/" + netns.NAME).st_ino
        assert process_netns != os.stat("/proc/self/ns/net").st_ino
        assert registry.endpoint == f"{netns.ADDRESS}:{int(registry.port)}"
        assert requests.get(f"http://{registry.endpoint}/v2/", timeout=5).status_code == 401  # over the veth
        with pytest.raises(requests.ConnectionError):  # not on the host's loopback
            requests.get(f"http://127.0.0.1:{int(registry.port)}/v2/", timeout=5)
        registry.kill()  # the pid the tests hold is the registry itself, not a wrapper around it
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{registry.endpoint}/v2/", timeout=5)
    finally:
        registry.stop()


def test_endpoint_namespace_is_made_repaired_and_removed(monkeypatch, unique):
    """What labctl up and down do, on a scratch namespace and pair of this test's own."""
    monkeypatch.setattr(netns, "NAME", "seglab-test-" + unique)
    monkeypatch.setattr(netns, "HOST_VETH", f"sl{unique[:6]}h")
    monkeypatch.setattr(netns, "NAMESPACE_VETH", f"sl{unique[:6]}n")
    monkeypatch.setattr(netns, "HOST_ADDRESS", "172.31.254.5")
    monkeypatch.setattr(netns, "ADDRESS", "172.31.254.6")

    def host_end():
        return subprocess.run(["ip", "link", "show", netns.HOST_VETH], capture_output=True, check=False).returncode == 0

    def hold():
        """A process inside the namespace, returned once it is in (``ip netns exec`` enters it after
        it starts: a name deleted before then takes the namespace, and the pair, with it)."""
        holder = subprocess.Popen(netns.command(["sleep", "120"]))
        holders.append(holder)
        inside = os.stat("/run/netns/" + netns.NAME).st_ino
        deadline = time.monotonic() + 30
        while os.stat(f"/proc/{int(holder.pid)}/ns/net").st_ino != inside:
            assert holder.poll() is None and time.monotonic() < deadline, "the holder never entered the namespace"
            time.sleep(0.05)

    holders = []
    try:
        assert not netns.exists()
        netns.ensure()
        assert netns.exists()
        assert "<LOOPBACK,UP," in subprocess.run(["ip", "-n", netns.NAME, "-o", "link", "show", "lo"],
                                                 check=True, capture_output=True, text=True).stdout
        with pytest.raises(ConnectionRefusedError):  # the namespace's kernel answers through the pair
            socket.create_connection(("172.31.254.6", 1), timeout=5)
        subprocess.run(["ip", "-n", netns.NAME, "addr", "flush", "dev", netns.NAMESPACE_VETH], check=True)
        assert not netns.exists(), "no endpoint address, no endpoint namespace"
        netns.ensure()
        assert netns.exists()
        # the name deleted while a process still runs inside: that namespace and its pair live on
        hold()
        subprocess.run(["ip", "netns", "del", netns.NAME], check=True)
        assert not netns.exists() and host_end()
        netns.ensure()  # a new namespace, and a new pair instead of the orphaned host end
        assert netns.exists()
        assert len([line for line in _ip("addr", "show").splitlines() if " 172.31.254.5/30 " in line]) == 1
        hold()
        netns.remove()  # labctl down while a process runs inside
        assert not netns.exists() and not host_end()
        assert netns.NAME not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    finally:
        netns.remove()
        for holder in holders:
            holder.kill()
            holder.wait()
