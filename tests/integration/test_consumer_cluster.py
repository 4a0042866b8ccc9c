"""roles/consumer_cluster on the lab's test, uat and prod clusters (playbooks/consumer_cluster.yml
through ansible-runner, as AWX runs it): the objects each cluster gets, what its nodes can pull
through the configuration OpenShift would render from them (labctl pull: containers/image with
that registries.conf and policy.json), idempotence, check mode, restoring exactly what was there,
and bad input that must change nothing."""
import base64
import copy
import json
import uuid

import pytest
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from lab import machine_config
from lab.labctl import LabError

LOGICAL = "registry.apps.lab.local"
CONSUMERS = ("test", "uat", "prod")
SMALL = 64 * 1024
VOLATILE = ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid")


def endpoint(lab, env):
    return dict(lab.layout.registries)[env]


def objects(lab, cluster):
    """Every object the role touches on ``cluster``: spec, data, labels and annotations, without
    what the API server keeps for itself."""
    api = lab.api_client(cluster)
    dyn = DynamicClient(api)

    def clean(obj):
        obj = copy.deepcopy(obj)
        for key in VOLATILE:
            obj.get("metadata", {}).pop(key, None)
        obj.pop("status", None)
        return obj

    def listing(api_version, kind, namespace=None):
        try:
            resource = dyn.resources.get(api_version=api_version, kind=kind)
            return sorted((clean(o.to_dict()) for o in resource.get(namespace=namespace).items),
                          key=lambda o: o["metadata"]["name"])
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise

    return {
        "images": listing("config.openshift.io/v1", "Image"),
        "idms": listing("config.openshift.io/v1", "ImageDigestMirrorSet"),
        "itms": listing("config.openshift.io/v1", "ImageTagMirrorSet"),
        "providers": listing("config.openshift.io/v1alpha1", "CRIOCredentialProviderConfig"),
        "configmaps": [o for o in listing("v1", "ConfigMap", "openshift-config") if o["metadata"]["name"] != "kube-root-ca.crt"],
        # the one Secret the role writes (it only reads the credential roles/credentials wrote)
        "secrets": [o for o in listing("v1", "Secret", "openshift-config") if o["metadata"]["name"] == "pull-secret"],
        "services": [o for o in listing("v1", "Service", "default") if o["metadata"]["name"] != "kubernetes"],
        "slices": [o for o in listing("discovery.k8s.io/v1", "EndpointSlice", "default")
                   if o["metadata"]["name"] != "kubernetes"],
    }


def image_config(lab, cluster):
    return DynamicClient(lab.api_client(cluster)).resources.get(
        api_version="config.openshift.io/v1", kind="Image").get(name="cluster").to_dict()


def pull_secret_auths(lab, cluster):
    secret = kclient.CoreV1Api(lab.api_client(cluster)).read_namespaced_secret("pull-secret", "openshift-config")
    return json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]


def differences(found, expected):
    """Which objects differ, by cluster, kind and name (for a readable failure)."""
    out = []
    for cluster in expected:
        for kind in expected[cluster]:
            a = {o["metadata"]["name"]: o for o in found[cluster][kind]}
            b = {o["metadata"]["name"]: o for o in expected[cluster][kind]}
            out.extend(f"{cluster} {kind} {name}: {a.get(name)} != {b.get(name)}"
                       for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name))
    return out


def stats_changed(run):
    return sum((run.stats or {}).get("changed", {}).values())


@pytest.fixture(scope="module")
def suffix():
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def pull_credentials(lab, run_playbook):
    """Each consumer's pull credential, written by roles/credentials (playbooks/credentials.yml) to
    openshift-config/segmented-registry-pull: a token of a registry-cluster service account that may
    pull from that environment's registry only. Returns {cluster: (user, token)} read back from it."""
    run = run_playbook("playbooks/credentials.yml")
    assert run.status == "successful", run.stdout_text[-4000:]
    found = {}
    for env in CONSUMERS:
        secret = kclient.CoreV1Api(lab.api_client(env)).read_namespaced_secret("segmented-registry-pull",
                                                                               "openshift-config")
        auths = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]
        assert list(auths) == [endpoint(lab, env)]
        user, token = base64.b64decode(auths[endpoint(lab, env)]["auth"]).decode().split(":", 1)
        found[env] = (user, token)
    return found


@pytest.fixture(scope="module")
def images(lab, run_playbook, suffix):
    """app:v1 promoted to test, uat and prod; app:v2 to test only."""
    namespace = f"consumer-{suffix}"
    try:
        kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespace({"metadata": {"name": namespace}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    pushed = {tag: lab.push(namespace, "app", tag, 2, SMALL, seed=f"consumer-{tag}")["digest"] for tag in ("v1", "v2")}
    for tag, envs in (("v1", ("test", "uat", "prod")), ("v2", ("test",))):
        for env in envs:
            run = run_playbook("playbooks/promote.yml", extravars={"project": namespace, "image": f"app:{tag}", "env": env})
            assert run.status == "successful", run.stdout_text[-3000:]
    return namespace, pushed


ADMIN_AUTHS = {"quay.io": {"auth": base64.b64encode(b"admin:not-a-real-password").decode()}}
ADMIN_SPECS = {
    # prod: an allow list and a CA ConfigMap of the administrator's own
    "prod": {"registrySources": {"allowedRegistries": ["quay.io"]}, "additionalTrustedCA": {"name": "admin-ca"}},
    # uat: a block list
    "uat": {"registrySources": {"blockedRegistries": ["bad.example.com"]}},
    # test: nothing yet
    "test": {},
}


def reset(lab, cluster, spec):
    """Put ``cluster`` in the state an administrator had before the role ever ran, with the
    kubernetes client alone (not with the role under test)."""
    dyn = DynamicClient(lab.api_client(cluster))
    core = kclient.CoreV1Api(lab.api_client(cluster))
    images = dyn.resources.get(api_version="config.openshift.io/v1", kind="Image")
    current = images.get(name="cluster").to_dict()
    images.replace(body={"apiVersion": "config.openshift.io/v1", "kind": "Image",
                         "metadata": {"name": "cluster", "resourceVersion": current["metadata"]["resourceVersion"]},
                         "spec": spec})
    for api_version, kind, name, namespace in (
            ("config.openshift.io/v1", "ImageDigestMirrorSet", "segmented-registry", None),
            ("config.openshift.io/v1", "ImageTagMirrorSet", "segmented-registry", None),
            ("config.openshift.io/v1alpha1", "CRIOCredentialProviderConfig", "cluster", None),
            ("v1", "Service", "docker-registry", "default"),
            ("discovery.k8s.io/v1", "EndpointSlice", "docker-registry-ipv4", "default"),
            ("v1", "ConfigMap", "segmented-registry-trusted-ca", "openshift-config"),
            ("v1", "ConfigMap", "admin-ca", "openshift-config")):
        try:
            dyn.resources.get(api_version=api_version, kind=kind).delete(name=name, namespace=namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
    if (spec.get("additionalTrustedCA") or {}).get("name"):
        core.create_namespaced_config_map("openshift-config", {
            "metadata": {"name": spec["additionalTrustedCA"]["name"]},
            "data": {"mirror.example.com": "-----BEGIN CERTIFICATE-----\nadmin\n"}})
    core.replace_namespaced_secret("pull-secret", "openshift-config", {
        "metadata": {"name": "pull-secret", "namespace": "openshift-config"}, "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps({"auths": ADMIN_AUTHS}).encode()).decode()}})


@pytest.fixture(scope="module")
def before(lab, pull_credentials):
    """The clusters as an administrator had them (ADMIN_SPECS, a pull secret with an entry of its
    own); the reference for state: absent. Put back to the lab's bare state afterwards."""
    for cluster, spec in ADMIN_SPECS.items():
        reset(lab, cluster, spec)
    yield {cluster: objects(lab, cluster) for cluster in CONSUMERS}
    for cluster in CONSUMERS:
        reset(lab, cluster, {})
        kclient.CoreV1Api(lab.api_client(cluster)).replace_namespaced_secret("pull-secret", "openshift-config", {
            "metadata": {"name": "pull-secret", "namespace": "openshift-config"}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode()}})


@pytest.fixture(scope="module")
def configured(lab, before, run_playbook):
    run = run_playbook("playbooks/consumer_cluster.yml")
    assert run.status == "successful", run.stdout_text[-4000:]
    return run


def test_check_mode_on_a_fresh_cluster_changes_nothing(lab, before, run_playbook):
    run = run_playbook("playbooks/consumer_cluster.yml", cmdline="--check --diff")
    assert run.status == "successful", run.stdout_text[-4000:]
    assert stats_changed(run) > 0
    assert differences({cluster: objects(lab, cluster) for cluster in CONSUMERS}, before) == []


def test_each_cluster_points_at_its_own_registry_and_no_other(lab, configured):
    integrated = lab.layout.integrated_endpoint
    for cluster in CONSUMERS:
        own, others = endpoint(lab, cluster), [endpoint(lab, e) for e in CONSUMERS if e != cluster]
        found = objects(lab, cluster)
        for kind, field in (("idms", "imageDigestMirrors"), ("itms", "imageTagMirrors")):
            assert [o["spec"][field] for o in found[kind]] == [
                [{"source": LOGICAL, "mirrors": [own], "mirrorSourcePolicy": "NeverContactSource"}]]
        [service] = found["services"]
        assert service["spec"]["type"] == "ExternalName" and service["spec"]["externalName"] == own
        sources = image_config(lab, cluster)["spec"]["registrySources"]
        listed = sources.get("allowedRegistries") or sources.get("blockedRegistries")
        assert not any(other in (sources.get("allowedRegistries") or []) for other in others)
        if cluster == "uat":  # a block list: the other registries and the integrated one are blocked
            assert sources["blockedRegistries"] == ["bad.example.com"] + others + [integrated]
        elif cluster == "prod":  # an allow list of its own: kept, ours appended
            assert listed == ["quay.io", LOGICAL, own]
        else:  # no list before: the platform's registries first; builds push to the integrated registry
            assert listed[-3:] == [LOGICAL, own, integrated]
            assert "registry.redhat.io" in listed and "image-registry.openshift-image-registry.svc:5000" in listed
        auths = pull_secret_auths(lab, cluster)
        assert sorted(auths) == sorted([own, "quay.io"]) and auths["quay.io"] == ADMIN_AUTHS["quay.io"]
    ca = kclient.CoreV1Api(lab.api_client("prod")).read_namespaced_config_map("admin-ca", "openshift-config")
    assert sorted(ca.data) == ["mirror.example.com", endpoint(lab, "prod")]  # the administrator's ConfigMap, merged
    test_ca = kclient.CoreV1Api(lab.api_client("test")).read_namespaced_config_map(
        "segmented-registry-trusted-ca", "openshift-config")
    assert list(test_ca.data) == [endpoint(lab, "test")] and "BEGIN CERTIFICATE" in test_ca.data[endpoint(lab, "test")]


def test_the_pull_secret_step_returns_once_the_nodes_have_it(lab, configured):
    """Nodes pull with their copy of the global pull secret (lab/machine_config.py writes it after a
    lag): the role's pull-secret step returned only once every MachineConfigPool reported the
    change on its nodes, so each node's copy is what the Secret holds when the run ends."""
    rollouts = {}
    for event in configured.events:
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and (data.get("task") or "").startswith(
                "Nodes authenticate to the environment registry"):
            rollouts[data["host"]] = data["res"].get("node_rollout")
    assert sorted(rollouts) == sorted(CONSUMERS), rollouts
    for cluster in CONSUMERS:
        assert [line.split(":")[0] for line in rollouts[cluster] or []] == ["master", "worker"], rollouts[cluster]
        assert all("Updated=True" in line for line in rollouts[cluster]), rollouts[cluster]
        secret = kclient.CoreV1Api(lab.api_client(cluster)).read_namespaced_secret("pull-secret", "openshift-config")
        for pool in ("master", "worker"):
            with open(machine_config.node_file(lab.state, cluster, pool), "rb") as handle:
                assert handle.read() == base64.b64decode(secret.data[".dockerconfigjson"]), (cluster, pool)


def test_one_name_pulls_each_environments_own_digest(lab, configured, images, pull_credentials):
    namespace, pushed = images
    for cluster in CONSUMERS:
        got = lab.pull(cluster, f"{LOGICAL}/{namespace}/app:v1")
        assert got["digest"] == pushed["v1"]
        assert got["mirrors"] == [f"{endpoint(lab, cluster)}/{namespace}/app"] and got["source_blocked"]
        by_digest = lab.pull(cluster, f"{LOGICAL}/{namespace}/app@{pushed['v1']}")
        assert by_digest["digest"] == pushed["v1"]
    assert lab.pull("test", f"{LOGICAL}/{namespace}/app:v2")["digest"] == pushed["v2"]
    # not promoted to prod: the prod registry does not have it, and the test registry is never asked
    with pytest.raises(LabError) as error:
        lab.pull("prod", f"{LOGICAL}/{namespace}/app:v2")
    assert "manifest unknown" in str(error.value) or "not found" in str(error.value).lower()


def test_a_direct_pull_from_another_environment_is_refused_by_the_policy(
        lab, configured, images, pull_credentials, tmp_path):
    namespace, pushed = images
    test_registry = endpoint(lab, "test")
    auth = tmp_path / "auth.json"
    user, token = pull_credentials["test"]
    auth.write_text(json.dumps({"auths": {test_registry: {
        "auth": base64.b64encode(f"{user}:{token}".encode()).decode()}}}))
    # the same credential works from a test node
    assert lab.pull("test", f"{test_registry}/{namespace}/app:v2", str(auth))["digest"] == pushed["v2"]
    # prod (an allow list): its policy.json rejects the test registry
    with pytest.raises(LabError) as error:
        lab.pull("prod", f"{test_registry}/{namespace}/app:v2", str(auth))
    assert "the policy.json of cluster prod refuses" in str(error.value), error.value
    # uat (a block list): the test registry is blocked in its registries.conf (and rejected by its policy.json)
    with pytest.raises(LabError) as error:
        lab.pull("uat", f"{test_registry}/{namespace}/app:v2", str(auth))
    assert f"{test_registry} is blocked in" in str(error.value), error.value
    with open(lab.node_pull_files("uat")["policy.json"]) as handle:
        assert json.load(handle)["transports"]["docker"][test_registry] == [{"type": "reject"}]


def test_a_second_run_changes_nothing(lab, configured, run_playbook):
    after_first = {cluster: objects(lab, cluster) for cluster in CONSUMERS}
    again = run_playbook("playbooks/consumer_cluster.yml")
    assert again.status == "successful", again.stdout_text[-3000:]
    assert stats_changed(again) == 0, again.stdout_text[-3000:]
    assert {cluster: objects(lab, cluster) for cluster in CONSUMERS} == after_first


def test_endpointslice_mode_and_back(lab, configured, run_playbook):
    run = run_playbook("playbooks/consumer_cluster.yml", extravars={
        "consumer_cluster_service_mode": "endpointslice", "consumer_cluster_service_addresses": ["192.0.2.2"]},
        limit="uat")
    assert run.status == "successful", run.stdout_text[-3000:]
    found = objects(lab, "uat")
    [service] = found["services"]
    assert service["spec"]["type"] == "ClusterIP" and "externalName" not in service["spec"]
    [slice_] = found["slices"]
    assert slice_["addressType"] == "IPv4" and slice_["endpoints"][0]["addresses"] == ["192.0.2.2"]
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "docker-registry"
    back = run_playbook("playbooks/consumer_cluster.yml", limit="uat")
    assert back.status == "successful", back.stdout_text[-3000:]
    found = objects(lab, "uat")
    assert found["slices"] == [] and found["services"][0]["spec"]["type"] == "ExternalName"


def test_bad_input_changes_nothing(lab, configured, run_playbook, inventory):
    now = objects(lab, "uat")

    # an unresolvable registry host in EndpointSlice mode
    def unresolvable(hosts, group_vars):
        group_vars["segmented_registry_environments"][1]["route_host"] = "uat-registry.apps.nowhere.invalid"
    run = run_playbook("playbooks/consumer_cluster.yml", inventory=inventory(unresolvable), limit="uat",
                       extravars={"consumer_cluster_service_mode": "endpointslice"})
    assert run.status == "failed" and "uat-registry.apps.nowhere.invalid does not resolve" in run.stdout_text
    # the lab's route hosts resolve to loopback, which an EndpointSlice cannot hold
    run = run_playbook("playbooks/consumer_cluster.yml", limit="uat", extravars={"consumer_cluster_service_mode": "endpointslice"})
    assert run.status == "failed" and "loopback" in run.stdout_text

    # a consumer of an environment that has no registry
    def absent(hosts, group_vars):
        group_vars["segmented_registry_environments"][1]["state"] = "absent"
    run = run_playbook("playbooks/consumer_cluster.yml", inventory=inventory(absent), limit="uat")
    assert run.status == "failed" and "state: absent" in " ".join(run.stdout_text.split())
    assert objects(lab, "uat") == now


def test_a_service_the_role_did_not_create_is_refused_unless_taken_over(lab, before, run_playbook):
    core = kclient.CoreV1Api(lab.api_client("prod"))
    reset = run_playbook("playbooks/consumer_cluster.yml", limit="prod", extravars={"consumer_cluster_state": "absent"})
    assert reset.status == "successful", reset.stdout_text[-3000:]
    core.create_namespaced_service("default", {"metadata": {"name": "docker-registry"}, "spec": {
        "type": "ExternalName", "externalName": "legacy.example.com", "ports": [{"port": 5000}]}})
    try:
        snapshot = objects(lab, "prod")
        run = run_playbook("playbooks/consumer_cluster.yml", limit="prod")
        assert run.status == "failed"
        assert "was not created by this role" in " ".join(run.stdout_text.split())
        assert objects(lab, "prod") == snapshot, "a refused run wrote"
        taken = run_playbook("playbooks/consumer_cluster.yml", limit="prod",
                             extravars={"consumer_cluster_service_takeover": True})
        assert taken.status == "successful", taken.stdout_text[-3000:]
        service = core.read_namespaced_service("docker-registry", "default")
        assert service.spec.external_name == endpoint(lab, "prod")
        assert service.metadata.labels["app.kubernetes.io/managed-by"] == "segmented.registry"
    finally:
        run_playbook("playbooks/consumer_cluster.yml", limit="prod", extravars={"consumer_cluster_state": "absent"})
        try:
            core.delete_namespaced_service("docker-registry", "default")
        except ApiException as exc:
            if exc.status != 404:
                raise


def test_the_credential_provider_option(lab, configured, run_playbook):
    run = run_playbook("playbooks/consumer_cluster.yml", limit="test",
                       extravars={"consumer_cluster_pull_credentials": "credential_provider"})
    assert run.status == "successful", run.stdout_text[-3000:]
    [provider] = objects(lab, "test")["providers"]
    assert provider["metadata"]["name"] == "cluster" and provider["spec"]["matchImages"] == [LOGICAL]
    assert pull_secret_auths(lab, "test") == ADMIN_AUTHS  # namespace pull secrets serve mirror pulls now
    back = run_playbook("playbooks/consumer_cluster.yml", limit="test")
    assert back.status == "successful", back.stdout_text[-3000:]
    assert objects(lab, "test")["providers"] == []
    assert sorted(pull_secret_auths(lab, "test")) == sorted(["quay.io", endpoint(lab, "test")])


def test_a_cluster_left_alone_gets_no_request(lab, run_playbook, inventory):
    def idle(hosts, group_vars):  # its API is a closed port: any request would fail the run
        hosts["legacy"] = {"segmented_registry_k8s_auth": {"host": "https://127.0.0.1:9", "api_key": "unused"}}
        hosts["legacy-default"] = {"segmented_registry_environment": "default",
                                   "segmented_registry_k8s_auth": {"host": "https://127.0.0.1:9", "api_key": "unused"}}
    run = run_playbook("playbooks/consumer_cluster.yml", inventory=inventory(idle), limit="legacy,legacy-default")
    assert run.status == "successful", run.stdout_text[-3000:]
    assert stats_changed(run) == 0


def test_state_absent_restores_every_object_as_it_was(lab, before, configured, run_playbook):
    run = run_playbook("playbooks/consumer_cluster.yml", extravars={"consumer_cluster_state": "absent"})
    assert run.status == "successful", run.stdout_text[-4000:]
    assert differences({cluster: objects(lab, cluster) for cluster in CONSUMERS}, before) == []
