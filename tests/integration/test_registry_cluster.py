"""roles/registry_cluster on the lab: each environment registry is a pod on the registry
cluster's node, served by the router on its route host over TLS, and the registry enforces who
may pull, push and delete (the token server the role deploys: TokenReview + SubjectAccessReview).

The environment registries themselves are deployed once per session by the conftest fixture
``environment_registries`` (playbooks/registry_cluster.yml on inventories/lab); the tests here
run the role again, as a platform team would, with changes of their own."""
import base64
import hashlib
import json
import re

import pytest
import requests
import yaml
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import TOKEN_SERVER_AUDIENCE, mint_token
from lab import objectstore
from tests.integration import promotion_lab as pl
from tests.integration.runs import at_once

PLAYBOOK = "playbooks/registry_cluster.yml"
ENVIRONMENTS = ("test", "uat", "prod")
MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def core(lab):
    return kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))


@pytest.fixture(scope="module")
def apps(lab):
    return kclient.AppsV1Api(lab.api_client(lab.layout.registry_cluster))


def changed(runner, host="registry"):
    return runner.stats["changed"].get(host, 0)


def registry_call(lab, env, method, path, scope, password, **options):
    """One registry request as a client makes it: a token from the realm (basic auth, the
    registry cluster token as password) for ``scope``, then the request with that bearer token.
    Returns the registry's answer, or the token server's when it refused the credentials."""
    endpoint = dict(lab.layout.registries)[env]
    ca = lab.ca.cert_path
    challenge = requests.get(f"https://{endpoint}/v2/", verify=ca, timeout=10)
    assert challenge.status_code == 401
    realm = f"https://{lab.layout.token_server_host}/token"
    assert f'realm="{realm}"' in challenge.headers["WWW-Authenticate"]
    answer = requests.get(realm, params={"service": "env-" + env, "scope": scope}, auth=("user", password),
                          verify=ca, timeout=10)
    if answer.status_code != 200:
        return answer
    headers = dict(options.pop("headers", {}), Authorization="Bearer " + answer.json()["token"])
    return requests.request(method, f"https://{endpoint}{path}", headers=headers, verify=ca, timeout=30, **options)


def pushed_image(lab, skopeo, oci_layout, env, repository, token):
    endpoint = dict(lab.layout.registries)[env]
    layout, digest = oci_layout
    copied = skopeo("copy", "oci:" + layout, f"docker://{endpoint}/{repository}:v1", token=token, registry=endpoint)
    assert copied.returncode == 0, copied.stderr
    return digest


def registry_pods(core, env):
    return [p for p in core.list_namespaced_pod(env, label_selector="app.kubernetes.io/name=registry").items
            if p.metadata.deletion_timestamp is None]


def test_each_environment_registry_is_a_pod_behind_its_route_with_tls(lab, core, apps, environment_registries):
    custom = DynamicClient(lab.api_client(lab.layout.registry_cluster))
    routes = custom.resources.get(api_version="route.openshift.io/v1", kind="Route")
    for env in ENVIRONMENTS:
        assert lab.procs.pid("registry-" + env) is None, "no hand-started environment registry process"
        deployment = apps.read_namespaced_deployment("registry", env)
        assert deployment.status.ready_replicas == 1
        pods = registry_pods(core, env)
        assert [p.status.phase for p in pods] == ["Running"]
        assert pods[0].spec.containers[0].security_context.allow_privilege_escalation is False
        assert pods[0].spec.automount_service_account_token is False
        route = routes.get(name="registry", namespace=env)
        assert route.spec.host == environment_registries[env] == f"{env}-registry.apps.registry.lab.local"
        assert route.spec.tls.termination == "edge"
        assert [c.type for c in route.status.ingress[0].conditions] == ["Admitted"]
        claim = core.read_namespaced_persistent_volume_claim("registry-storage", env)
        assert claim.status.phase == "Bound" and claim.spec.resources.requests["storage"] == "1Gi"
        configs = core.read_namespaced_config_map("registry-config", env).data  # the garbage collection job's switch
        assert {key: yaml.safe_load(configs[key])["storage"]["maintenance"]["readonly"]["enabled"]
                for key in ("config.yml", "readonly.yml")} == {"config.yml": False, "readonly.yml": True}
        answer = requests.get(f"https://{environment_registries[env]}/v2/", verify=lab.ca.cert_path, timeout=10)
        assert answer.status_code == 401 and answer.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
        untrusted = requests.Session()
        with pytest.raises(requests.exceptions.SSLError):
            untrusted.get(f"https://{environment_registries[env]}/v2/", verify=True, timeout=10)
    token_server = apps.read_namespaced_deployment("token-server", "segmented-registry")
    assert token_server.status.ready_replicas == 1
    assert lab.procs.pid("registry-default"), "the integrated registry stays the platform's (a lab process)"


def test_pull_credential_of_test_pulls_there_only_and_never_pushes_or_deletes(
        lab, make_token, skopeo, oci_layout, unique):
    """A consumer's pull credential (segmented-registry:environment-puller in namespace test,
    minted for the token server's audience) against every environment registry; the promoter's
    credential pushes and deletes. The same identity's API token is no key to any of them."""
    repository = f"ac-{unique}/app"
    promoter = pl.promoter_token(lab, audiences=[TOKEN_SERVER_AUDIENCE])
    digests = {env: pushed_image(lab, skopeo, oci_layout, env, repository, promoter) for env in ENVIRONMENTS}
    api_token = make_token("ac-" + unique, "test-puller", roles={"test": "segmented-registry:environment-puller"})
    puller = mint_token(lab.api_client(lab.layout.registry_cluster), f"ac-{unique}/test-puller", 3600,
                        audiences=[TOKEN_SERVER_AUDIENCE])
    manifest = f"/v2/{repository}/manifests/v1"
    accept = {"Accept": MANIFEST_TYPES}
    assert registry_call(lab, "test", "GET", manifest, f"repository:{repository}:pull", api_token,
                         headers=accept).status_code == 401

    pulled = registry_call(lab, "test", "GET", manifest, f"repository:{repository}:pull", puller, headers=accept)
    assert pulled.status_code == 200
    assert "sha256:" + hashlib.sha256(pulled.content).hexdigest() == digests["test"]

    refused = {
        "push to test": registry_call(lab, "test", "POST", f"/v2/{repository}/blobs/uploads/",
                                      f"repository:{repository}:pull,push", puller),
        "delete in test": registry_call(lab, "test", "DELETE", f"/v2/{repository}/manifests/{digests['test']}",
                                        f"repository:{repository}:delete", puller),
        "pull from uat": registry_call(lab, "uat", "GET", manifest, f"repository:{repository}:pull", puller,
                                       headers=accept),
        "pull from prod": registry_call(lab, "prod", "GET", manifest, f"repository:{repository}:pull", puller,
                                        headers=accept),
    }
    for what, answer in refused.items():
        assert answer.status_code in (401, 403), (what, answer.status_code, answer.text[:300])
        assert answer.json()["errors"][0]["code"] in ("UNAUTHORIZED", "DENIED"), (what, answer.text[:300])
    # the skopeo view of the same refusals (what a user sees)
    endpoint = dict(lab.layout.registries)
    denied_push = skopeo("copy", "oci:" + oci_layout[0], f"docker://{endpoint['test']}/{repository}:v2",
                         token=puller, registry=endpoint["test"])
    assert denied_push.returncode != 0 and "unauthorized" in denied_push.stderr.lower()
    # a token minted for the test registry is no key to another one
    stolen = requests.get(f"https://{lab.layout.token_server_host}/token", auth=("u", puller), verify=lab.ca.cert_path,
                          params={"service": "env-test", "scope": f"repository:{repository}:pull"}, timeout=10)
    replayed = requests.get(f"https://{endpoint['uat']}{manifest}", verify=lab.ca.cert_path, timeout=10,
                            headers=dict(accept, Authorization="Bearer " + stolen.json()["token"]))
    assert replayed.status_code == 401

    deleted = registry_call(lab, "test", "DELETE", f"/v2/{repository}/manifests/{digests['test']}",
                            f"repository:{repository}:delete", promoter)
    assert deleted.status_code == 202, deleted.text
    gone = registry_call(lab, "test", "GET", manifest, f"repository:{repository}:pull", puller, headers=accept)
    assert gone.status_code == 404


ACCESS_ROLES = {"segmented-registry:environment-promoter": ["catalog", "delete", "pull", "push"],
                "segmented-registry:environment-puller": ["pull"]}
PROMOTER_USER = {"user": "system:serviceaccount:segmented-registry-promotion:promoter",
                 "groups": ["system:serviceaccounts", "system:serviceaccounts:segmented-registry-promotion", "system:authenticated"]}


def rules_of(role):
    return [(rule.api_groups, rule.resources, sorted(rule.verbs)) for rule in role.rules or []]


def allowed(lab, verb, resource, namespace=None, group="segmented.registry", subresource=None):
    """Whether the promoter may (a SubjectAccessReview on the registry cluster)."""
    attributes = {"verb": verb, "resource": resource, "group": group}
    if namespace:
        attributes["namespace"] = namespace
    if subresource:
        attributes["subresource"] = subresource
    review = kclient.AuthorizationV1Api(lab.api_client(lab.layout.registry_cluster)).create_subject_access_review(
        {"spec": dict(PROMOTER_USER, resourceAttributes=attributes)})
    return review.status.allowed


def test_access_roles_are_the_roles_own_and_put_back_when_edited_by_hand(lab, run_playbook, environment_registries):
    """environment-promoter and environment-puller: exactly the token server's verbs on
    environmentregistries.segmented.registry, no aggregation. A label and a rule added by hand are
    shown by a check run (which keeps them) and removed by the next run."""
    rbac = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster))
    for name, verbs in ACCESS_ROLES.items():
        role = rbac.read_cluster_role(name)
        assert rules_of(role) == [(["segmented.registry"], ["environmentregistries"], verbs)], rules_of(role)
        assert role.aggregation_rule is None
        assert not [key for key in role.metadata.labels or {} if key.startswith("rbac.authorization.k8s.io/aggregate-to")]
    name = "segmented-registry:environment-puller"
    extra = {"apiGroups": ["segmented.registry"], "resources": ["environmentregistries"], "verbs": ["list"]}
    rbac.patch_cluster_role(name, {"metadata": {"labels": {"example.com/added-by-hand": "true"}},
                                   "rules": [{"apiGroups": ["segmented.registry"], "resources": ["environmentregistries"],
                                              "verbs": ["pull"]}, extra]})
    preview = run_playbook(PLAYBOOK, cmdline="--check --diff")
    assert preview.status == "successful", preview.stdout_text[-3000:]
    # the check run's diff entry for that role (on the shared lab another session's real run of the
    # role may put the role back meanwhile: the preview is judged by its own result)
    shown = [entry for event in preview.events if event.get("event") == "runner_on_ok"
             for entry in event["event_data"]["res"].get("diff") or [] if isinstance(entry, dict)
             and entry.get("after_header") == f"ClusterRole/{name}"]
    assert len(shown) == 1 and "added-by-hand" in json.dumps(shown[0]), shown
    run = run_playbook(PLAYBOOK)
    assert run.status == "successful", run.stdout_text[-3000:]
    role = rbac.read_cluster_role(name)
    assert "example.com/added-by-hand" not in (role.metadata.labels or {})
    assert rules_of(role) == [(["segmented.registry"], ["environmentregistries"], ["pull"])]


def test_the_promoter_holds_the_environment_rights_in_the_environment_namespaces_only(lab, environment_registries):
    """A RoleBinding to environment-promoter in each environment namespace; nothing of OpenShift's
    image rights to write (push through imagestreams/layers, delete images) and nothing elsewhere."""
    rbac = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster))
    for env in ENVIRONMENTS:
        binding = rbac.read_namespaced_role_binding("segmented-registry:promoter:segmented-registry-promotion:promoter", env)
        assert binding.role_ref.name == "segmented-registry:environment-promoter"
        for verb in ACCESS_ROLES["segmented-registry:environment-promoter"]:
            assert allowed(lab, verb, "environmentregistries", env), (verb, env)
        assert not allowed(lab, "update", "imagestreams", env, "image.openshift.io", "layers"), env
        assert not [item.metadata.name for item in rbac.list_namespaced_role_binding(env).items
                    if item.metadata.name.startswith("segmented-registry:pusher:")]
    assert not allowed(lab, "push", "environmentregistries", "default")
    assert not allowed(lab, "delete", "images", None, "image.openshift.io")
    assert "segmented-registry:image-deleter" not in {item.metadata.name for item in rbac.list_cluster_role_binding().items}


def test_grants_of_earlier_versions_go_from_the_environment_namespaces_only(
        lab, run_playbook, inventory, unique, environment_registries):
    """What an earlier version made (a segmented-registry:pusher binding to system:image-pusher in an
    environment namespace, segmented-registry:image-deleter cluster-wide) is previewed by a check
    run, then removed; the same binding in a namespace the inventory does not name (another
    deployment's) is left alone. The environment is one of this test's own (state: absent), so
    that no other session's run of the role on the shared lab removes the binding first."""
    api = lab.api_client(lab.layout.registry_cluster)
    core, rbac = kclient.CoreV1Api(api), kclient.RbacAuthorizationV1Api(api)
    retired, outside = f"retired-{unique}", f"elsewhere-{unique}"

    def with_retired(_hosts, group_vars):
        group_vars["segmented_registry_environments"].append(
            {"name": retired, "route_host": f"{retired}.apps.registry.lab.local", "state": "absent"})
    scratch = inventory(with_retired)
    labels = {"app.kubernetes.io/managed-by": "segmented.registry", "app.kubernetes.io/name": "registry"}
    name = f"segmented-registry:pusher:old-{unique}:promoter"
    subject = [{"kind": "ServiceAccount", "namespace": f"old-{unique}", "name": "promoter"}]
    try:
        for namespace in (retired, outside):
            # labelled as the role labels an environment's namespace (another session's end
            # leaves those alone: tests/integration/conftest.py), removed by this test
            core.create_namespace({"metadata": {"name": namespace, "labels": {
                "app.kubernetes.io/managed-by": "segmented.registry"}}})
            rbac.create_namespaced_role_binding(namespace, {
                "metadata": {"name": name, "labels": labels}, "subjects": subject,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:image-pusher"}})
        for create, body in ((rbac.create_cluster_role, {
                "metadata": {"name": "segmented-registry:image-deleter", "labels": labels},
                "rules": [{"apiGroups": ["image.openshift.io"], "resources": ["images"], "verbs": ["delete"]}]}),
                (rbac.create_cluster_role_binding, {
                    "metadata": {"name": "segmented-registry:image-deleter", "labels": labels}, "subjects": subject,
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": "segmented-registry:image-deleter"}})):
            try:
                create(body)
            except ApiException as exc:  # left by an earlier version, or by another session's test
                if exc.status != 409:
                    raise

        preview = run_playbook(PLAYBOOK, inventory=scratch, cmdline="--check --diff")
        assert preview.status == "successful", preview.stdout_text[-3000:]
        assert f"RoleBinding/{retired}/{name}" in preview.stdout_text, preview.stdout_text[-3000:]
        assert rbac.read_namespaced_role_binding(name, retired)

        run = run_playbook(PLAYBOOK, inventory=scratch)
        assert run.status == "successful", run.stdout_text[-3000:]
        for read in (lambda: rbac.read_namespaced_role_binding(name, retired),
                     lambda: rbac.read_cluster_role_binding("segmented-registry:image-deleter"),
                     lambda: rbac.read_cluster_role("segmented-registry:image-deleter")):
            with pytest.raises(ApiException) as gone:
                read()
            assert gone.value.status == 404
        assert rbac.read_namespaced_role_binding(name, outside).role_ref.name == "system:image-pusher"
    finally:
        for namespace in (retired, outside):
            try:
                core.delete_namespace(namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise


def test_second_run_and_check_mode_change_nothing(lab, run_playbook):
    # both change nothing, and the role runs on one host (one core busy each): at once
    again, preview = at_once(lambda: run_playbook(PLAYBOOK), lambda: run_playbook(PLAYBOOK, cmdline="--check --diff"))
    assert again.status == "successful", again.stdout_text[-3000:]
    assert changed(again) == 0, again.stdout_text[-3000:]
    assert preview.status == "successful", preview.stdout_text[-3000:]
    assert changed(preview) == 0, preview.stdout_text[-3000:]


def test_a_configuration_change_is_previewed_then_rolls_the_pod_and_the_images_stay(
        lab, core, run_playbook, skopeo, oci_layout, unique):
    """A new log level: check mode shows it and changes nothing; a real run rolls the registry
    pod (a new configuration checksum) and every image is still served. The integrated
    registry's stub ``default/docker-registry`` (if the cluster has one) is never touched."""
    try:
        core.create_namespaced_service("default", {"metadata": {"name": "docker-registry"},
                                                   "spec": {"ports": [{"port": 5000}]}})
    except ApiException as exc:
        assert exc.status == 409
    stub = core.read_namespaced_service("docker-registry", "default").metadata.resource_version
    repository = f"roll-{unique}/app"
    promoter = pl.promoter_token(lab)
    digest = pushed_image(lab, skopeo, oci_layout, "uat", repository, promoter)
    before = {p.metadata.uid for p in registry_pods(core, "uat")}

    # what the role made up to 0.1.0, the configuration as a Secret: the next run removes it
    core.create_namespaced_secret("uat", {"metadata": {"name": "registry-config", "labels": {"app.kubernetes.io/managed-by": "segmented.registry"}},
                                          "data": {"config.yml": base64.b64encode(b"version: 0.1").decode()}})

    preview = run_playbook(PLAYBOOK, extravars={"registry_cluster_log_level": "debug"}, cmdline="--check --diff")
    assert preview.status == "successful", preview.stdout_text[-3000:]
    assert changed(preview) >= 3  # the configuration of test, uat and prod
    # the diff: each configuration ConfigMap's log level, line by line, and each pod template's checksum
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", preview.stdout_text).splitlines()]
    # config.yml and readonly.yml of test, uat and prod
    assert sum(1 for line in lines if line.startswith("+") and "level: debug" in line) == 6, preview.stdout_text[-3000:]
    assert sum(1 for line in lines if line.startswith("-") and "level: info" in line) == 6, preview.stdout_text[-3000:]
    assert sum(1 for line in lines if line.startswith("+") and "segmented.registry/config-checksum:" in line) == 3
    assert "-Secret/uat/registry-config" in lines, preview.stdout_text[-3000:]  # removed, named only
    assert {p.metadata.uid for p in registry_pods(core, "uat")} == before, "check mode rolled a pod"
    assert "level: info" in core.read_namespaced_config_map("registry-config", "uat").data["config.yml"]
    core.read_namespaced_secret("registry-config", "uat")  # check mode removed nothing

    try:
        rolled = run_playbook(PLAYBOOK, extravars={"registry_cluster_log_level": "debug"})
        assert rolled.status == "successful", rolled.stdout_text[-3000:]
        after = registry_pods(core, "uat")
        assert len(after) == 1 and after[0].metadata.uid not in before and after[0].status.phase == "Running"
        seen = registry_call(lab, "uat", "HEAD", f"/v2/{repository}/manifests/v1", f"repository:{repository}:pull",
                             promoter, headers={"Accept": MANIFEST_TYPES})
        assert seen.status_code == 200 and seen.headers["Docker-Content-Digest"] == digest
        with pytest.raises(ApiException) as gone:
            core.read_namespaced_secret("registry-config", "uat")
        assert gone.value.status == 404
    finally:
        restored = run_playbook(PLAYBOOK)
        assert restored.status == "successful", restored.stdout_text[-3000:]
    assert core.read_namespaced_service("docker-registry", "default").metadata.resource_version == stub


def _scratch_secret(core, namespace, name, cert, key, ca=None):
    with open(cert) as c, open(key) as k:
        data = {"tls.crt": c.read(), "tls.key": k.read()}
    if ca:
        with open(ca) as a:
            data["ca.crt"] = a.read()
    try:
        core.create_namespace({"metadata": {"name": namespace}})
    except ApiException as exc:
        assert exc.status == 409
    core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "type": "kubernetes.io/tls",
                                              "stringData": data})


def test_reencrypt_and_passthrough_routes_and_an_absent_environment(lab, core, apps, inventory, run_playbook, unique):
    """Two environments of a test's own: one behind a reencrypt Route (the pod serves a
    certificate the router checks against the Secret's ca.crt) on a StorageClass of its own, one
    behind a passthrough Route (the pod's certificate is the one clients see) on the cluster's
    default class. Then state: absent removes the registry and keeps the storage;
    registry_cluster_remove_storage removes that too."""
    reenc, passthrough = "re-" + unique, "pt-" + unique
    storage = kclient.StorageV1Api(lab.api_client(lab.layout.registry_cluster))
    own_class = "scratch-" + unique  # the same host-path provisioner as the default, not the default
    storage.create_storage_class(kclient.V1StorageClass(
        metadata=kclient.V1ObjectMeta(name=own_class), provisioner="kubernetes.io/host-path", reclaim_policy="Delete"))
    hosts = {name: f"{name}-registry.apps.registry.lab.local" for name in (reenc, passthrough)}
    cert, key = lab.ca.issue("scratch-" + reenc, "registry." + reenc, server=True, hosts=(f"registry.{reenc}.svc",))
    _scratch_secret(core, reenc, "serving", cert, key, ca=lab.ca.cert_path)
    cert, key = lab.ca.issue("scratch-" + passthrough, hosts[passthrough], server=True, hosts=(hosts[passthrough],))
    _scratch_secret(core, passthrough, "serving", cert, key)

    def with_scratch(state):
        def edit(_hosts, group_vars):
            group_vars["segmented_registry_environments"] += [
                {"name": reenc, "route_host": hosts[reenc], "ca_cert": lab.ca.cert_path, "state": state,
                 "storage": {"size": "96Mi", "storage_class": own_class},
                 "tls": {"termination": "reencrypt", "serving_cert_secret": "serving"}},
                {"name": passthrough, "route_host": hosts[passthrough], "ca_cert": lab.ca.cert_path, "state": state,
                 "storage": {"size": "64Mi"}, "tls": {"termination": "passthrough", "serving_cert_secret": "serving"}}]
        return inventory(edit)

    try:
        deployed = run_playbook(PLAYBOOK, inventory=with_scratch("present"))
        assert deployed.status == "successful", deployed.stdout_text[-3000:]
        for name in (reenc, passthrough):
            answer = pl.wait_for_challenge(lab, hosts[name])
            assert answer.status_code == 401, name
            assert f'service="env-{name}"' in answer.headers["WWW-Authenticate"]
        pod = registry_pods(core, reenc)[0]
        container = pod.spec.containers[0]
        assert [probe.http_get.scheme for probe in (container.readiness_probe, container.liveness_probe)] == ["HTTPS"] * 2
        claims = {name: core.read_namespaced_persistent_volume_claim("registry-storage", name).spec
                  for name in (reenc, passthrough)}
        assert (claims[reenc].storage_class_name, claims[reenc].resources.requests["storage"]) == (own_class, "96Mi")
        default_class = [c.metadata.name for c in storage.list_storage_class().items
                         if (c.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
        assert (claims[passthrough].storage_class_name, claims[passthrough].resources.requests["storage"]) == (
            default_class[0], "64Mi"), "no class named: the cluster's default one fills it in"

        absent = run_playbook(PLAYBOOK, inventory=with_scratch("absent"))
        assert absent.status == "successful", absent.stdout_text[-3000:]
        for name in (reenc, passthrough):
            with pytest.raises(ApiException) as gone:
                apps.read_namespaced_deployment("registry", name)
            assert gone.value.status == 404
            assert core.read_namespaced_persistent_volume_claim("registry-storage", name).status.phase == "Bound"
            assert core.read_namespaced_secret("serving", name), "the user's own Secret stays"
        config = json.loads(core.read_namespaced_config_map("token-server-config", "segmented-registry").data["config.json"])
        assert {"env-test", "env-uat", "env-prod"} == set(config["services"])
        again = run_playbook(PLAYBOOK, inventory=with_scratch("absent"))
        assert changed(again) == 0, again.stdout_text[-3000:]
    finally:
        purged = run_playbook(PLAYBOOK, inventory=with_scratch("absent"),
                              extravars={"registry_cluster_remove_storage": True})
        storage.delete_storage_class(own_class)
        assert purged.status == "successful", purged.stdout_text[-3000:]
    for name in (reenc, passthrough):
        assert name not in {n.metadata.name for n in core.list_namespace().items
                            if n.status.phase != "Terminating"}


BAD_INPUT = {
    "storage size not a quantity": ({"storage": {"size": "lots"}}, "storage.size"),
    "unknown TLS mode": ({"tls": {"termination": "mutual"}}, "tls.termination"),
    "invalid route host": ({"route_host": "Bad_Host.example"}, "route_host"),
    "two environments with one host": ({"route_host": "test-registry.apps.registry.lab.local"}, "route_host"),
    "bucket without credentials": ({"storage": {"s3": {"bucket": "registry-bad"}}}, "storage.s3.credentials_secret"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_inventory_fails_in_validation_before_anything_is_created(
        lab, core, inventory, run_playbook, unique, case):
    change, field = BAD_INPUT[case]
    name = "bad-" + unique

    def edit(_hosts, group_vars):
        group_vars["segmented_registry_environments"].append(
            dict({"name": name, "route_host": f"{name}.apps.registry.lab.local"}, **change))
    runner = run_playbook(PLAYBOOK, inventory=inventory(edit))
    assert runner.status == "failed"
    assert f"({name}): {field}: " in runner.stdout_text, runner.stdout_text[-3000:]
    assert changed(runner) == 0
    assert name not in {n.metadata.name for n in core.list_namespace().items}


def test_object_storage_then_two_replicas_behind_a_budget(lab, core, apps, inventory, run_playbook, skopeo,
                                                          oci_layout, unique):
    """storage.s3 against the lab's S3-compatible server (lab/objectstore.py): an image pushed
    through the Route lands in the bucket under the environment's root directory; then two
    replicas (rolling updates, a PodDisruptionBudget keeping one) both serve it from the bucket.
    (The push runs on one replica: an upload whose requests the router spread over two pods once
    ended in a 500 on the lab's gofakes3 server, not investigated; see the role README.)"""
    name = "s3-" + unique
    host = f"{name}-registry.apps.registry.lab.local"
    root = "/" + name
    try:
        core.create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        assert exc.status == 409
    core.create_namespaced_secret(name, {"metadata": {"name": "bucket"}, "stringData": {
        "access_key": objectstore.ACCESS_KEY, "secret_key": objectstore.SECRET_KEY}})

    def with_s3(state, replicas=1):
        def edit(_hosts, group_vars):
            group_vars["segmented_registry_environments"].append({
                "name": name, "route_host": host, "ca_cert": lab.ca.cert_path, "state": state, "replicas": replicas,
                "storage": {"s3": {"bucket": objectstore.bucket("uat"), "endpoint": objectstore.ENDPOINT,
                                   "credentials_secret": "bucket", "force_path_style": True,
                                   "root_directory": root}}})
        return inventory(edit)

    repository = f"{name}/app"
    promoter = pl.promoter_token(lab)  # one of registry_cluster_pushers: pushes to every environment
    try:
        deployed = run_playbook(PLAYBOOK, inventory=with_s3("present"))
        assert deployed.status == "successful", deployed.stdout_text[-3000:]
        pl.wait_for_challenge(lab, host)
        # the lab's S3 server (gofakes3) answered one of skopeo's parallel layer uploads with a 500
        # once on 2026-12-06, one replica, the pod 9 s old (not investigated; see the role README on
        # two replicas): a push that fails so is tried again, twice at most
        for _attempt in range(3):
            copied = skopeo("copy", "oci:" + oci_layout[0], f"docker://{host}/{repository}:v1", token=promoter,
                            registry=host)
            if copied.returncode == 0 or "500 Internal Server Error" not in copied.stderr:
                break
            print("the push through the lab's S3 server failed with a 500, tried again:", copied.stderr[-300:])
        assert copied.returncode == 0, copied.stderr
        stored = objectstore.list_objects(objectstore.bucket("uat"), prefix=root.lstrip("/") + "/")
        assert any(key.endswith("/_manifests/tags/v1/current/link") and repository in key for key in stored), stored
        assert sum(size for key, size in stored.items() if "/blobs/sha256/" in key) > 256 * 1024

        scaled = run_playbook(PLAYBOOK, inventory=with_s3("present", replicas=2))
        assert scaled.status == "successful", scaled.stdout_text[-3000:]
        deployment = apps.read_namespaced_deployment("registry", name)
        assert deployment.status.ready_replicas == 2 and deployment.spec.strategy.type == "RollingUpdate"
        assert not any(v.persistent_volume_claim for v in deployment.spec.template.spec.volumes)
        budget = kclient.PolicyV1Api(lab.api_client(lab.layout.registry_cluster)).read_namespaced_pod_disruption_budget(
            "registry", name)
        assert budget.spec.min_available == 1
        for _attempt in range(4):  # through the Route, whichever of the two pods answers
            pulled = skopeo("inspect", f"docker://{host}/{repository}:v1", token=promoter, registry=host)
            assert pulled.returncode == 0 and json.loads(pulled.stdout)["Digest"] == oci_layout[1], pulled.stderr
    finally:
        purged = run_playbook(PLAYBOOK, inventory=with_s3("absent"), extravars={"registry_cluster_remove_storage": True})
        assert purged.status == "successful", purged.stdout_text[-3000:]


def test_signing_key_rotation_keeps_earlier_tokens_valid(lab, core, run_playbook, skopeo, oci_layout, unique):
    """registry_cluster_rotate_signing_key: a new key signs from then on; the certificate it
    replaced stays in every registry's bundle, so a token issued before the rotation still opens
    the registry until it expires; a second rotation drops it."""
    def certificates():
        data = core.read_namespaced_secret("token-server-signing", "segmented-registry").data
        return {key: base64.b64decode(value).decode() for key, value in data.items() if key.endswith(".crt")}

    repository = f"rot-{unique}/app"
    promoter = pl.promoter_token(lab)
    pushed_image(lab, skopeo, oci_layout, "test", repository, promoter)
    scope = f"repository:{repository}:pull"
    old_token = requests.get(f"https://{lab.layout.token_server_host}/token", auth=("u", promoter),
                             params={"service": "env-test", "scope": scope}, verify=lab.ca.cert_path,
                             timeout=10).json()["token"]
    before = certificates()

    rotated = run_playbook(PLAYBOOK, extravars={"registry_cluster_rotate_signing_key": True})
    assert rotated.status == "successful", rotated.stdout_text[-3000:]
    after = certificates()
    assert after["previous.crt"] == before["tls.crt"] and after["tls.crt"] != before["tls.crt"]
    bundle = core.read_namespaced_config_map("registry-token-trust", "test").data["bundle.pem"]
    assert bundle.count("BEGIN CERTIFICATE") == 2 and after["tls.crt"].strip() in bundle
    assert "PRIVATE KEY" not in rotated.stdout_text

    endpoint = dict(lab.layout.registries)["test"]
    manifest = f"https://{endpoint}/v2/{repository}/manifests/v1"
    headers = {"Accept": MANIFEST_TYPES}
    earlier = requests.head(manifest, headers=dict(headers, Authorization="Bearer " + old_token),
                            verify=lab.ca.cert_path, timeout=10)
    assert earlier.status_code == 200, "a token signed before the rotation is refused"
    fresh = registry_call(lab, "test", "HEAD", f"/v2/{repository}/manifests/v1", scope, promoter, headers=headers)
    assert fresh.status_code == 200

    again = run_playbook(PLAYBOOK, extravars={"registry_cluster_rotate_signing_key": True})
    assert again.status == "successful", again.stdout_text[-3000:]
    stale = requests.head(manifest, headers=dict(headers, Authorization="Bearer " + old_token),
                          verify=lab.ca.cert_path, timeout=10)
    assert stale.status_code == 401, "two rotations later the first key's tokens are refused"
