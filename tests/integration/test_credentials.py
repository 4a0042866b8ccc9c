"""roles/credentials and the module registry_credential on the lab (issue 11).

Every credential a test uses is the one the playbook distributed: read back from the consumer
cluster's Secret, never minted by the test. Registry answers come from the environment registries
roles/registry_cluster deployed (and the lab's integrated registry), through their token server.

One module-scoped fixture (``distributed``) runs playbooks/credentials.yml on the lab inventory
once; the tests that move, remove or rotate credentials restore the lab inventory's state with a
normal run at their end.
"""
import base64
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import requests
import yaml
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

from tests.integration import promotion_lab as pl

PLAYBOOK = "playbooks/credentials.yml"
ROTATE = "playbooks/rotate_credentials.yml"
MODULE_PLAYBOOK = "tests/integration/playbooks/registry_credential.yml"
CONSUMERS = ("test", "uat", "prod")
PULL = "segmented-registry-pull"
PUSH = "segmented-registry-push"
APP_NS = "myproject"
# The namespace of the consumers' pull identities on the registry cluster (credentials_pull_namespace)
PULL_NS = "segmented-registry-consumers"
# Three path segments: a shape the promotion engine never touches (another suite's reconcile of the
# shared lab removes every <namespace>/<stream> tag that no ImageStream approves)
REPOSITORY = "credtest/lab/app"
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json")
# What this role made (the collection's other roles label their objects managed-by too)
MANAGED = "app.kubernetes.io/managed-by=segmented.registry,segmented.registry/credential"
# The cluster-wide pull credential. Its contract name is openshift-config/segmented-registry-pull
# (the default of credentials_global_pull_secret); on the shared lab another suite writes a Secret
# of that name by hand (the consumer-cluster tests), which this role rightly refuses to overwrite,
# so these tests give it a name of their own.
GLOBAL = ("openshift-config", "segmented-registry-pull-credtest")
EXTRA = {"credentials_global_pull_secret": "/".join(GLOBAL)}


def play(run_playbook, playbook, extravars=None, **options):
    """run_playbook with this module's EXTRA variables."""
    return run_playbook(playbook, extravars=dict(EXTRA, **(extravars or {})), **options)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def core_of(lab, cluster):
    return kclient.CoreV1Api(lab.api_client(cluster))


def read_secret(lab, cluster, namespace, name=PULL):
    try:
        return core_of(lab, cluster).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def credential(lab, cluster, namespace, name=PULL):
    """``(registry, token)`` of the distributed Secret (its one dockerconfigjson entry)."""
    secret = read_secret(lab, cluster, namespace, name)
    assert secret is not None, f"no Secret {namespace}/{name} on {cluster}"
    assert secret.type == "kubernetes.io/dockerconfigjson"
    auths = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]
    assert len(auths) == 1, list(auths)
    (registry, entry), = auths.items()
    user, _sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
    assert password == entry["password"] and user == entry["username"]
    return registry, password


def endpoint(lab, env):
    return dict(lab.layout.registries)[env]


class Registry:
    """A registry client as docker/CRI-O are: the challenge's realm and service, a bearer token for
    one scope with basic auth (the credential), then the request. ``status`` is the registry's
    answer, or the token server's when it refused the credential."""

    def __init__(self, lab, host):
        self.lab, self.host = lab, host
        self.session = requests.Session()
        self.ca = lab.ca.cert_path  # per request: a session's verify loses to REQUESTS_CA_BUNDLE
        challenge = self.session.get(f"https://{host}/v2/", timeout=10, verify=self.ca)
        assert challenge.status_code == 401, challenge.status_code
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge.headers["WWW-Authenticate"]))
        self.realm, self.service = fields["realm"], fields["service"]

    def call(self, token, scope, method, path, **options):
        answer = self.session.get(self.realm, params={"service": self.service, "scope": scope},
                                  auth=("serviceaccount", token), timeout=10, verify=self.ca)
        if answer.status_code != 200:
            return answer.status_code
        bearer = answer.json().get("token") or answer.json().get("access_token")
        headers = dict(options.pop("headers", {}), Authorization="Bearer " + bearer)
        return self.session.request(method, f"https://{self.host}{path}", headers=headers, timeout=30,
                                    verify=self.ca, **options).status_code

    def pull(self, token, repository=REPOSITORY, reference="v1"):
        return self.call(token, f"repository:{repository}:pull", "GET", f"/v2/{repository}/manifests/{reference}",
                         headers={"Accept": MANIFEST_TYPES})

    def push(self, token, repository=REPOSITORY):
        return self.call(token, f"repository:{repository}:pull,push", "POST", f"/v2/{repository}/blobs/uploads/")

    def delete(self, token, digest, repository=REPOSITORY):
        return self.call(token, f"repository:{repository}:delete", "DELETE", f"/v2/{repository}/manifests/{digest}")


def refused(status):
    return status in (401, 403)


def versions(lab, namespaces=(APP_NS,)):
    """resourceVersion of every object this collection made (Secrets and identities, by label) and of
    every service account of ``namespaces`` on the consumers (where Secrets are linked)."""
    found = {}
    for cluster in (lab.layout.registry_cluster,) + CONSUMERS:
        core = core_of(lab, cluster)
        for item in core.list_secret_for_all_namespaces(label_selector=MANAGED).items:
            found[(cluster, "Secret", item.metadata.namespace, item.metadata.name)] = item.metadata.resource_version
        accounts = (core.list_service_account_for_all_namespaces(label_selector=MANAGED).items
                    if cluster == lab.layout.registry_cluster else
                    [sa for namespace in namespaces for sa in _accounts(core, namespace)])
        for item in accounts:
            found[(cluster, "ServiceAccount", item.metadata.namespace, item.metadata.name)] = item.metadata.resource_version
    return found


def _accounts(core, namespace):
    try:
        return core.list_namespaced_service_account(namespace).items
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise


def failures(run):
    """The messages of the failed tasks (and loop items) of a run, from its events."""
    messages = []
    for event in run.events:
        if event.get("event") in ("runner_on_failed", "runner_item_on_failed"):
            result = (event.get("event_data") or {}).get("res") or {}
            messages.append(str(result.get("msg", "")))
            messages += [str(item.get("msg", "")) for item in result.get("results") or [] if item.get("failed")]
    return "\n".join(messages)


def results(run):
    """Every task result of a run (its events' ``res``), as one JSON text."""
    return json.dumps([(event.get("event_data") or {}).get("res") for event in run.events
                       if (event.get("event_data") or {}).get("res")])


def linked(lab, cluster, namespace, account, field="image_pull_secrets"):
    sa = core_of(lab, cluster).read_namespaced_service_account(account, namespace)
    return [ref.name for ref in (getattr(sa, field) or [])]


def changed(run, host="registry"):
    return run.stats["changed"].get(host, 0)


def generation(lab, cluster, namespace, name=PULL):
    return read_secret(lab, cluster, namespace, name).metadata.annotations["segmented.registry/generation"]


def binding_exists(lab, namespace, identity):
    """Whether ``identity`` (a pull identity of PULL_NS) is granted anything in ``namespace``."""
    rbac = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster))
    return any(subject.namespace == PULL_NS and subject.name == identity
               for item in rbac.list_namespaced_role_binding(namespace).items for subject in item.subjects or ())


def identity_exists(lab, namespace, name):
    try:
        core_of(lab, lab.layout.registry_cluster).read_namespaced_service_account(name, namespace)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_everywhere(lab, skopeo, oci_layout, environment_registries):
    """``myproject/credtest:v1`` in the test, uat and prod registries (pushed by the promoter)."""
    layout, digest = oci_layout
    promoter = pl.promoter_token(lab)
    for env in CONSUMERS:
        host = endpoint(lab, env)
        copied = skopeo("copy", "oci:" + layout, f"docker://{host}/{REPOSITORY}:v1", token=promoter, registry=host)
        assert copied.returncode == 0, copied.stderr
    return digest


@pytest.fixture(scope="module")
def distributed(lab, run_playbook, image_everywhere):
    """playbooks/credentials.yml on the lab inventory, once for the module. Before it, an entry of
    someone else's in myproject/default's imagePullSecrets on every consumer, which must survive."""
    for cluster in CONSUMERS:
        core = core_of(lab, cluster)
        try:
            core.create_namespace({"metadata": {"name": APP_NS}})
        except ApiException as exc:
            assert exc.status == 409
        pl.wait_until(lambda core=core: _exists(core, APP_NS, "default"), 30, f"the default service account of {cluster}")
        sa = core.read_namespaced_service_account("default", APP_NS)
        if "someone-elses" not in [ref.name for ref in sa.image_pull_secrets or []]:
            core.patch_namespaced_service_account("default", APP_NS, {
                "imagePullSecrets": [{"name": ref.name} for ref in sa.image_pull_secrets or []] + [{"name": "someone-elses"}]})
    started = time.monotonic()
    run = play(run_playbook, PLAYBOOK)
    assert run.status == "successful", run.stdout_text[-6000:]
    return {"run": run, "seconds": time.monotonic() - started, "digest": image_everywhere}


def _exists(core, namespace, name):
    try:
        core.read_namespaced_service_account(name, namespace)
        return True
    except ApiException:
        return False


@pytest.fixture
def restore(run_playbook):
    """A normal run on the lab inventory after the test, whatever it did."""
    yield
    run = play(run_playbook, PLAYBOOK)
    assert run.status == "successful", run.stdout_text[-4000:]


# ---------------------------------------------------------------------------------------------
# What the distributed credentials can do
# ---------------------------------------------------------------------------------------------


def test_pull_credential_pulls_from_its_environment_only(lab, distributed):
    """test's pull credential, read back from the consumer's Secrets (the cluster-wide one in
    openshift-config and the one linked to myproject/default): pulls from the test registry; 401/403
    from uat and prod; cannot push or delete anywhere."""
    registry, token = credential(lab, "test", *GLOBAL)
    assert registry == endpoint(lab, "test")
    assert credential(lab, "test", APP_NS) == (registry, token)
    digest = distributed["digest"]
    test, uat, prod = (Registry(lab, endpoint(lab, env)) for env in CONSUMERS)
    assert test.pull(token) == 200
    assert refused(uat.pull(token)) and refused(prod.pull(token))
    for registry_client in (test, uat, prod):
        assert refused(registry_client.push(token))
        assert refused(registry_client.delete(token, digest))
    # every consumer: its own environment's registry only
    for env in ("uat", "prod"):
        key, other = credential(lab, env, APP_NS)
        assert key == endpoint(lab, env)
        assert Registry(lab, key).pull(other) == 200
        assert refused(test.pull(other))


def test_pull_credential_is_no_api_token(lab, distributed):
    """A distributed pull credential is minted for the token server's audience: the registry
    cluster's API refuses it (401), while it pulls; its identity holds environment-puller, not
    OpenShift's image-puller. A builder's push credential stays an API token (the integrated
    registry's model): the API authenticates it (403, not 401)."""
    _registry, token = credential(lab, "test", APP_NS)
    api = f"https://127.0.0.1:{dict(lab.layout.clusters)[lab.layout.registry_cluster]}/api/v1/namespaces"
    answer = requests.get(api, headers={"Authorization": f"Bearer {token}"}, verify=lab.ca.cert_path, timeout=10)
    assert answer.status_code == 401, answer.status_code
    assert Registry(lab, endpoint(lab, "test")).pull(token) == 200
    binding = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster)).read_namespaced_role_binding(
        f"segmented-pull-test.{PULL_NS}", "test")
    assert binding.role_ref.name == "segmented-registry:environment-puller"
    assert [(item.namespace, item.name) for item in binding.subjects] == [(PULL_NS, "segmented-pull-test")]
    _registry, builder = credential(lab, "test", APP_NS, PUSH)
    answer = requests.get(api, headers={"Authorization": f"Bearer {builder}"}, verify=lab.ca.cert_path, timeout=10)
    assert answer.status_code == 403, answer.status_code


def test_an_environment_editor_cannot_mint_a_pull_identity_token(lab, distributed, unique, eventually):
    """Issue 22: the consumers' pull identities live in PULL_NS, not in the environment namespaces,
    so an `edit` user of prod (who may create serviceaccounts/token there: the control) is denied
    a token for every consumer's pull identity, and no pull identity is left in an environment
    namespace."""
    api = lab.api_client(lab.layout.registry_cluster)
    rbac, authz = kclient.RbacAuthorizationV1Api(api), kclient.AuthorizationV1Api(api)
    user = f"prod-editor-{unique}"
    rbac.create_namespaced_role_binding("prod", {
        "metadata": {"name": user},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
    try:
        def allowed(namespace, name):
            return authz.create_subject_access_review({"spec": {"user": user, "resourceAttributes": {
                "namespace": namespace, "verb": "create", "resource": "serviceaccounts", "subresource": "token",
                "name": name}}}).status.allowed

        def control():  # the API server's RBAC cache sees the new binding a moment later
            assert allowed("prod", "builder"), "control: edit in prod creates tokens there"
        eventually(control)
        for cluster in CONSUMERS:
            assert not allowed(PULL_NS, f"segmented-pull-{cluster}"), cluster
            assert identity_exists(lab, PULL_NS, f"segmented-pull-{cluster}"), cluster
        for environment in CONSUMERS:
            assert not core_of(lab, lab.layout.registry_cluster).list_namespaced_service_account(
                environment, label_selector="segmented.registry/credential=pull").items, environment
    finally:
        rbac.delete_namespaced_role_binding(user, "prod")


def test_token_is_never_read_back_from_a_look_alike(lab, distributed, run_playbook, unique, restore):
    """A Secret elsewhere on the consumer with this credential's labels and annotations and a
    token of its own, the credential's real Secrets deleted: the next run does not copy the
    look-alike's token into the targets (it mints a new generation); what it writes pulls."""
    core = core_of(lab, "test")
    namespace = f"aaa-{unique}"  # listed before the targets
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        real = read_secret(lab, "test", APP_NS)
        old_generation = generation(lab, "test", APP_NS)
        planted = "planted-" + unique
        document = json.dumps({"auths": {endpoint(lab, "test"): {
            "username": "serviceaccount", "password": planted,
            "auth": base64.b64encode(f"serviceaccount:{planted}".encode()).decode()}}})
        core.create_namespaced_secret(namespace, {
            "metadata": {"name": PULL, "labels": real.metadata.labels, "annotations": real.metadata.annotations},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(document.encode()).decode()}})
        core.delete_namespaced_secret(PULL, APP_NS)
        core.delete_namespaced_secret(GLOBAL[1], GLOBAL[0])
        run = play(run_playbook, PLAYBOOK, extravars={"credentials_clusters": ["test"]})
        assert run.status == "successful", run.stdout_text[-4000:]
        for where in ((APP_NS, PULL), GLOBAL):
            _registry, token = credential(lab, "test", *where)
            assert token != planted, where
        assert generation(lab, "test", APP_NS) != old_generation
        assert Registry(lab, endpoint(lab, "test")).pull(token) == 200
    finally:
        core.delete_namespace(namespace)


def test_a_deleted_secret_is_written_again_with_the_same_token(lab, distributed, run_playbook, restore):
    """One target's Secret deleted by hand (the cluster-wide one left): the next run writes it
    again with the token the other target still holds, in the same generation, relinks it and
    revokes nothing; what it wrote pulls."""
    registry, token = credential(lab, "test", *GLOBAL)
    old_generation = generation(lab, "test", *GLOBAL)
    kept = read_secret(lab, "test", *GLOBAL).metadata.resource_version
    core_of(lab, "test").delete_namespaced_secret(PULL, APP_NS)
    run = play(run_playbook, PLAYBOOK, extravars={"credentials_clusters": ["test"]})
    assert run.status == "successful", run.stdout_text[-4000:]
    same = credential(lab, "test", APP_NS) == (registry, token)  # compared, never shown
    assert same, "the Secret was written with another token"
    assert generation(lab, "test", APP_NS) == old_generation
    assert read_secret(lab, "test", *GLOBAL).metadata.resource_version == kept, "the Secret left alone was rewritten"
    assert PULL in linked(lab, "test", APP_NS, "default")
    assert Registry(lab, registry).pull(token) == 200  # nothing revoked


def test_a_renamed_host_adopts_its_credentials(lab, distributed, run_playbook, inventory, restore):
    """The inventory host test renamed test-cluster (issue 23): the run succeeds, adopts test's
    Secrets (relabelled, the new identity's token, linked once), and leaves one pull credential for
    that consumer on the registry cluster: the former name's identity is revoked and removed."""
    _key, old_token = credential(lab, "test", APP_NS)

    def rename(hosts, _group_vars):
        hosts["test-cluster"] = hosts.pop("test")
    run = play(run_playbook, PLAYBOOK, inventory=inventory(rename))
    assert run.status == "successful", failures(run) or run.stdout_text[-4000:]
    for where in ((APP_NS, PULL), GLOBAL):
        secret = read_secret(lab, "test", *where)
        assert secret.metadata.labels["segmented.registry/cluster"] == "test-cluster", where
        assert secret.metadata.annotations["segmented.registry/identity"] == f"{PULL_NS}/segmented-pull-test-cluster"
    _key, token = credential(lab, "test", APP_NS)
    test = Registry(lab, endpoint(lab, "test"))
    assert test.pull(token) == 200 and refused(test.pull(old_token))
    assert linked(lab, "test", APP_NS, "default").count(PULL) == 1
    identities = [sa.metadata.name for sa in core_of(lab, lab.layout.registry_cluster).list_namespaced_service_account(
        PULL_NS, label_selector="segmented.registry/credential=pull,segmented.registry/cluster in (test, test-cluster)").items]
    assert sorted(identities) == ["segmented-pull-test-cluster"], identities
    assert read_secret(lab, "test", APP_NS, PUSH).metadata.labels["segmented.registry/cluster"] == "test-cluster"


def test_pull_secret_is_linked_beside_other_entries(lab, distributed):
    for cluster in CONSUMERS:
        names = linked(lab, cluster, APP_NS, "default")
        assert PULL in names and "someone-elses" in names, names
        # the global pull secret is the consumer-cluster role's to merge: this role never writes it
        assert read_secret(lab, cluster, "openshift-config", "pull-secret") is not None
    assert PUSH in linked(lab, "test", APP_NS, "builder", "secrets")


def test_builder_credential_pushes_to_its_namespace_only(lab, distributed, skopeo, oci_layout, unique, tmp_path):
    """test's builder credential (the Secret linked to myproject/builder's secrets) pushes to
    myproject in the integrated registry, is refused in another namespace, and pulls from no
    environment registry."""
    registry, token = credential(lab, "test", APP_NS, PUSH)
    assert registry == lab.layout.integrated_endpoint
    # skopeo reads the distributed Secret's document as it is (an auth file is a dockerconfigjson)
    authfile = tmp_path / "auth.json"
    authfile.write_bytes(base64.b64decode(read_secret(lab, "test", APP_NS, PUSH).data[".dockerconfigjson"]))
    os.chmod(authfile, 0o600)

    def copy(reference):
        return subprocess.run(["skopeo", "--command-timeout", "60s", "copy", "--authfile", str(authfile),
                               "--dest-cert-dir", lab.trust_dir, "oci:" + oci_layout[0], f"docker://{reference}"],
                              capture_output=True, text=True, timeout=120, check=False)
    pushed = copy(f"{registry}/{APP_NS}/built-{unique}:v1")
    assert pushed.returncode == 0, pushed.stderr
    other = copy(f"{registry}/other-{unique}/built:v1")
    assert other.returncode != 0 and re.search(r"unauthorized|denied|401|403", other.stderr, re.I), other.stderr
    assert refused(Registry(lab, endpoint(lab, "test")).pull(token))


# ---------------------------------------------------------------------------------------------
# No churn; renewal near expiry
# ---------------------------------------------------------------------------------------------


def test_second_run_changes_nothing(lab, distributed, run_playbook):
    before = versions(lab)
    started = time.monotonic()
    run = play(run_playbook, PLAYBOOK)
    seconds = time.monotonic() - started
    assert run.status == "successful", run.stdout_text[-4000:]
    assert changed(run) == 0, run.stdout_text[-4000:]
    after = versions(lab)
    assert after == before, {key: (before.get(key), after.get(key)) for key in set(before) | set(after)
                             if before.get(key) != after.get(key)}
    assert len([key for key in after if key[1] == "Secret"]) >= 3 * 2 + 1 + 3  # pull x2 per consumer, push, generations
    print(f"first run {distributed['seconds']:.1f}s, second run (nothing to do) {seconds:.1f}s")


def test_token_near_expiry_is_renewed_by_a_normal_run(lab, distributed, run_playbook):
    """With renew_before just under the token's lifetime, every token is 'near expiry': a normal
    run (uat only) makes a new generation, merges it into uat's global pull secret, and once the
    nodes have it revokes the old one (credentials_revoke_retired); the new one pulls; test's
    Secrets are not touched."""
    old_generation = generation(lab, "uat", APP_NS)
    _key, old_token = credential(lab, "uat", APP_NS)
    test_version = read_secret(lab, "test", APP_NS).metadata.resource_version
    run = play(run_playbook, PLAYBOOK, extravars={"credentials_renew_before": 604799, "credentials_clusters": ["uat"]})
    assert run.status == "successful", run.stdout_text[-4000:]
    assert "its token is within renew_before of its expiry" in results(run)
    new_generation = generation(lab, "uat", APP_NS)
    _key, new_token = credential(lab, "uat", APP_NS)
    assert new_generation != old_generation and new_token != old_token
    assert generation(lab, "uat", *GLOBAL) == new_generation
    uat = Registry(lab, endpoint(lab, "uat"))
    assert uat.pull(new_token) == 200
    assert old_generation.split("/")[1] not in [item.metadata.name for item in core_of(
        lab, lab.layout.registry_cluster).list_namespaced_secret(PULL_NS).items]
    assert refused(uat.pull(old_token))  # revoked once the nodes had the new one, not at its expiry
    assert read_secret(lab, "test", APP_NS).metadata.resource_version == test_version


# ---------------------------------------------------------------------------------------------
# Leaving: moved to another environment, left alone, removed from the inventory
# ---------------------------------------------------------------------------------------------


def test_moved_then_left_alone_then_removed(lab, distributed, run_playbook, inventory, restore):
    prod_registry = Registry(lab, endpoint(lab, "prod"))
    uat_registry = Registry(lab, endpoint(lab, "uat"))
    _key, prod_token = credential(lab, "prod", APP_NS)
    assert prod_registry.pull(prod_token) == 200

    # prod moves to uat: a uat credential replaces it, the prod identity is revoked
    def move(hosts, _group_vars):
        hosts["prod"]["segmented_registry_environment"] = "uat"
    run = play(run_playbook, PLAYBOOK, inventory=inventory(move))
    assert run.status == "successful", run.stdout_text[-4000:]
    registry, moved_token = credential(lab, "prod", APP_NS)
    assert registry == endpoint(lab, "uat") and credential(lab, "prod", *GLOBAL)[0] == registry
    assert uat_registry.pull(moved_token) == 200 and refused(prod_registry.pull(moved_token))
    assert refused(prod_registry.pull(prod_token)), "the old credential still pulls from prod"
    assert not binding_exists(lab, "prod", "segmented-pull-prod")  # granted in uat only
    assert linked(lab, "prod", APP_NS, "default").count(PULL) == 1

    # prod is left alone (no environment): its Secrets go, its service account keeps the rest
    def alone(hosts, _group_vars):
        hosts["prod"].pop("segmented_registry_environment")
        hosts["prod"].pop("segmented_registry_credentials")
    run = play(run_playbook, PLAYBOOK, inventory=inventory(alone))
    assert run.status == "successful", run.stdout_text[-4000:]
    assert read_secret(lab, "prod", APP_NS) is None and read_secret(lab, "prod", *GLOBAL) is None
    assert linked(lab, "prod", APP_NS, "default") == ["someone-elses"]
    assert refused(uat_registry.pull(moved_token))
    assert not identity_exists(lab, PULL_NS, "segmented-pull-prod") and not binding_exists(lab, "uat", "segmented-pull-prod")

    # uat is removed from the inventory: its credential is revoked on the registry cluster (its
    # cluster cannot be reached any more: the Secret there keeps a dead token)
    run = play(run_playbook, PLAYBOOK)  # back to the lab inventory first: prod gets its credential again
    assert run.status == "successful", run.stdout_text[-4000:]
    _key, uat_token = credential(lab, "uat", APP_NS)
    assert uat_registry.pull(uat_token) == 200

    def removed(hosts, _group_vars):
        hosts.pop("uat")
    run = play(run_playbook, PLAYBOOK, inventory=inventory(removed))
    assert run.status == "successful", run.stdout_text[-4000:]
    assert "cluster no longer in the inventory" in results(run)
    assert not identity_exists(lab, PULL_NS, "segmented-pull-uat") and not binding_exists(lab, "uat", "segmented-pull-uat")
    assert refused(uat_registry.pull(uat_token))
    # the other consumers were not touched
    _key, test_token = credential(lab, "test", APP_NS)
    assert Registry(lab, endpoint(lab, "test")).pull(test_token) == 200


# ---------------------------------------------------------------------------------------------
# Rotation without a gap
# ---------------------------------------------------------------------------------------------


class PullLoop:
    """Threads that pull test's image in a loop, each time with the token read from the Secret
    that the playbook distributed (a fresh read per pull): counts pulls, failures and tokens seen.
    Each thread pulls at most ``per_second`` times a second: the token server limits each identity's
    reviews (registry_cluster_token_reviews_per_second_per_user, 50 a second, two a pull), and a
    pull it answers 429 is a failure here."""

    def __init__(self, lab, threads=3, per_second=5):
        self.lab, self.threads, self.interval = lab, threads, 1.0 / per_second
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.pulls, self.failures, self.tokens = 0, [], set()
        self.errors = []

    def _run(self):
        try:
            core = core_of(self.lab, "test")
            registry = Registry(self.lab, endpoint(self.lab, "test"))
            due = time.monotonic()
            while not self.stop_event.wait(max(0.0, due - time.monotonic())):
                due += self.interval
                secret = core.read_namespaced_secret(PULL, APP_NS)
                auths = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]
                token = auths[endpoint(self.lab, "test")]["password"]
                status = registry.pull(token)
                with self.lock:
                    self.pulls += 1
                    self.tokens.add(hashlib.sha256(token.encode()).hexdigest()[:12])
                    if status != 200:
                        self.failures.append((time.time(), status))
        except Exception as exc:  # a dead watcher fails the test
            self.errors.append(repr(exc))

    def __enter__(self):
        self.started = time.monotonic()
        self.workers = [threading.Thread(target=self._run, daemon=True) for _index in range(self.threads)]
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for worker in self.workers:
            worker.join(30)
        self.seconds = time.monotonic() - self.started

    @property
    def rate(self):
        return self.pulls / self.seconds


def started(run, task):
    """When the run started the task of that name (seconds since the epoch, as time.time())."""
    times = [datetime.datetime.fromisoformat(event["created"]).replace(tzinfo=datetime.timezone.utc).timestamp()
             for event in run.events if event.get("event") == "playbook_on_task_start"
             and (event.get("event_data") or {}).get("task", "").startswith(task)]
    assert times, f"no task {task!r} in the run"
    return times[0]


def test_rotation_has_no_gap(lab, distributed, run_playbook):
    """rotate_credentials.yml (test only, grace 20 s) while three threads pull through the
    distributed Secret: zero failed pulls at 8 pulls a second or more, the loop saw both tokens; a
    holder of the old token pulls until the revocation, which waits out the grace period; after
    it the old token is refused and the new one pulls."""
    _key, old_token = credential(lab, "test", APP_NS)
    old_generation = generation(lab, "test", APP_NS)
    held, stop = [], threading.Event()  # a pod that read the Secret before the rotation keeps the old token

    def hold():
        registry = Registry(lab, endpoint(lab, "test"))
        while not stop.wait(0.5):
            held.append((time.time(), registry.pull(old_token)))
    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    with PullLoop(lab) as loop:
        time.sleep(2)
        run = play(run_playbook, ROTATE, extravars={"grace": 20, "credentials_clusters": ["test"]})
        time.sleep(2)
    stop.set()
    holder.join(30)
    assert run.status == "successful", run.stdout_text[-4000:]
    waited, revoked = started(run, "Wait for the grace period"), started(run, "Revoke the replaced generations now")
    assert {status for at, status in held if at < revoked} == {200}, "the old token was refused before the revocation"
    assert revoked - waited >= 19, "the revocation did not wait for the 20 s grace period"
    assert not loop.errors, loop.errors
    print(f"rotation: {loop.pulls} pulls in {loop.seconds:.1f}s ({loop.rate:.1f}/s), failures {len(loop.failures)}, "
          f"tokens seen {len(loop.tokens)}")
    assert loop.failures == [], loop.failures[:10]
    assert loop.rate >= 8, f"{loop.rate:.1f} pulls/s"
    assert len(loop.tokens) == 2, "the loop did not see the old and the new token"
    _key, new_token = credential(lab, "test", APP_NS)
    assert new_token != old_token and generation(lab, "test", APP_NS) != old_generation
    test = Registry(lab, endpoint(lab, "test"))
    # refused once the token server's review of it, cached for 10 s, runs out (the holder used it up to the end)
    pl.wait_until(lambda: refused(test.pull(old_token)), 30, "the old credential refused after the grace period")
    assert test.pull(new_token) == 200
    assert generation(lab, "test", *GLOBAL) == generation(lab, "test", APP_NS)
    _key, builder_token = credential(lab, "test", APP_NS, PUSH)
    assert Registry(lab, lab.layout.integrated_endpoint).push(builder_token, f"{APP_NS}/rotated") == 202


# ---------------------------------------------------------------------------------------------
# Bad input: a clear error, nothing half-written
# ---------------------------------------------------------------------------------------------


def test_missing_service_account_writes_nothing(lab, distributed, run_playbook, inventory, unique):
    namespace = f"fresh-{unique}"
    core = core_of(lab, "test")
    core.create_namespace({"metadata": {"name": namespace}})
    pl.wait_until(lambda: _exists(core, namespace, "default"), 30, "the default service account")
    before = versions(lab, (APP_NS, namespace))

    def edit(hosts, group_vars):
        group_vars["credentials_create_missing"] = False
        hosts["test"]["segmented_registry_credentials"]["pull"] += [f"{namespace}/default", f"{namespace}/nosuch"]
    run = play(run_playbook, PLAYBOOK, inventory=inventory(edit))
    assert run.status == "failed"
    message = failures(run)
    assert f"cluster test: service account {namespace}/nosuch does not exist" in message, message
    assert "Nothing was changed" in message
    assert read_secret(lab, "test", namespace) is None
    assert PULL not in linked(lab, "test", namespace, "default")
    assert versions(lab, (APP_NS, namespace)) == before


def test_check_mode_previews_namespaces_and_accounts_an_earlier_step_would_make(
        lab, distributed, run_playbook, inventory, unique):
    """credentials.yml --check with credentials_create_missing naming a namespace and a service
    account that do not exist yet (as on a site not deployed): the preview runs to the end, warns
    about each, and creates nothing anywhere."""
    namespace = f"later-{unique}"
    before = versions(lab)

    def edit(hosts, group_vars):
        group_vars["credentials_create_missing"] = True
        hosts["test"]["segmented_registry_credentials"]["pull"] += [f"{namespace}/default", f"{namespace}/deployer"]
    run = play(run_playbook, PLAYBOOK, inventory=inventory(edit), cmdline="--check --diff")
    assert run.status == "successful", run.stdout_text[-3000:]
    text = " ".join(run.stdout_text.split())
    for missing in (f"namespace {namespace} does not exist", f"service account {namespace}/deployer does not exist"):
        assert f"cluster test: {missing}" in text and "Check mode previews the credential" in text, missing
    assert namespace not in {item.metadata.name for item in core_of(lab, "test").list_namespace().items}
    assert versions(lab) == before


def test_create_missing_makes_only_what_is_missing(lab, distributed, run_playbook, inventory, unique, restore):
    """credentials_create_missing: a namespace and a service account the inventory names that the
    consumer lacks are made; a second run finds both and runs no module for them (the task's item of
    every cluster is skipped, after the lookups that read what is there)."""
    namespace, account = f"made-{unique}", f"made-{unique}"
    core = core_of(lab, "test")

    def edit(hosts, group_vars):
        group_vars["credentials_create_missing"] = True
        hosts["test"]["segmented_registry_credentials"]["pull"] += [f"{namespace}/default", f"{APP_NS}/{account}"]
    path = inventory(edit)
    try:
        run = play(run_playbook, PLAYBOOK, inventory=path)
        assert run.status == "successful", run.stdout_text[-3000:]
        assert _exists(core, namespace, "default") and _exists(core, APP_NS, account)
        again = play(run_playbook, PLAYBOOK, inventory=path)
        assert again.status == "successful", again.stdout_text[-3000:]
        items = [event["event"] for event in again.events
                 if event.get("event") in ("runner_item_on_ok", "runner_item_on_failed", "runner_item_on_skipped")
                 and (event.get("event_data") or {}).get("task") == "Namespaces and service accounts on the consumer clusters"]
        assert items and set(items) == {"runner_item_on_skipped"}, items
    finally:
        core.delete_namespace(namespace)
        try:
            core.delete_namespaced_service_account(account, APP_NS)
        except ApiException as exc:
            assert exc.status == 404


def test_unknown_cluster_is_refused(lab, distributed, run_playbook):
    before = versions(lab)
    run = play(run_playbook, PLAYBOOK, extravars={"credentials_clusters": ["nosuch"]})
    assert run.status == "failed"
    assert "credentials_clusters: nosuch is not a consumer cluster of the inventory" in failures(run)
    run = play(run_playbook, PLAYBOOK, extravars={"credentials_clusters": "test, nosuch"})  # an AWX survey's string
    assert run.status == "failed"
    assert "credentials_clusters: nosuch is not a consumer cluster of the inventory" in failures(run)
    assert versions(lab) == before


@pytest.fixture
def module_run(run_playbook, lab, tmp_path):
    """module_run(**args): the module once, through a playbook (as AWX runs it)."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))

    def run(**args):
        return run_playbook(MODULE_PLAYBOOK, inventory=str(inventory), extravars={"credential_args": args})
    return run


def lab_auth(lab, cluster):
    return {"kubeconfig": lab.kubeconfig, "context": cluster}


def api_auth(lab, cluster, token):
    port = dict(lab.layout.clusters)[cluster]
    return {"host": f"https://127.0.0.1:{port}", "api_key": token, "ca_cert": lab.ca.cert_path}


def test_revoked_user_token_is_refused_before_anything_is_written(lab, distributed, module_run, make_token, unique):
    """A token the user supplies for the registry cluster, revoked (its service account deleted):
    a clear error naming registry_cluster; nothing made on the consumer."""
    token = make_token(f"revoked-{unique}", "caller", {f"revoked-{unique}": "admin"})
    core_of(lab, lab.layout.registry_cluster).delete_namespaced_service_account("caller", f"revoked-{unique}")
    pl.wait_until(lambda: requests.get(f"https://127.0.0.1:{dict(lab.layout.clusters)['registry']}/version",
                                       headers={"Authorization": f"Bearer {token}"}, verify=lab.ca.cert_path,
                                       timeout=5).status_code == 401, 30, "the revoked token refused")
    run = module_run(registry_cluster=api_auth(lab, "registry", token), cluster=lab_auth(lab, "test"),
                     cluster_name=f"revoked{unique}", access="pull", namespace="test",
                     registry=endpoint(lab, "test"), targets=[{"namespace": APP_NS, "service_accounts": ["default"]}])
    assert run.status == "failed"
    message = failures(run)
    assert message.startswith("registry_cluster: cannot use the cluster") and "401" in message, message
    assert token not in run.stdout_text and token not in results(run)
    assert not core_of(lab, "test").list_secret_for_all_namespaces(
        label_selector=f"segmented.registry/cluster=revoked{unique}").items


def test_caller_without_rights_is_refused_before_anything_is_written(lab, distributed, module_run, unique):
    """A consumer credential that may only read (view in myproject): every missing right is named,
    and the registry cluster gets no identity."""
    token = lab_token_on(lab, "test", APP_NS, f"viewer-{unique}", "view")
    name = f"norights{unique}"
    run = module_run(registry_cluster=lab_auth(lab, "registry"), cluster=api_auth(lab, "test", token),
                     cluster_name=name, access="pull", namespace="test", registry=endpoint(lab, "test"),
                     targets=[{"namespace": APP_NS, "service_accounts": ["default"]}])
    assert run.status == "failed"
    message = failures(run)
    assert message.startswith(f"cluster {name}: the credentials used lack rights this run needs"), message
    for right in ("list secrets cluster-wide", "create secrets in namespace myproject",
                  "patch serviceaccounts in namespace myproject"):
        assert right in message
    assert not identity_exists(lab, "test", f"segmented-pull-{name}")
    assert not core_of(lab, lab.layout.registry_cluster).list_secret_for_all_namespaces(
        label_selector=f"segmented.registry/cluster={name}").items


def test_long_lived_token_secret_pushes_until_absent_revokes_it(lab, distributed, module_run, unique):
    """token_type long_lived (a push credential: the integrated registry takes API tokens): a
    kubernetes.io/service-account-token Secret on the registry cluster (filled by the token
    controller) is the generation; its token pushes, a second run keeps it, state absent deletes it
    and the token is refused; the consumer's Secret and link are gone. For a pull credential the
    module refuses long_lived before anything is written."""
    name, namespace = f"ll{unique}", f"ll-{unique}"
    for cluster in ("test", lab.layout.registry_cluster):
        core_of(lab, cluster).create_namespace({"metadata": {"name": namespace}})
    core = core_of(lab, "test")
    pl.wait_until(lambda: _exists(core, namespace, "default"), 30, "the default service account")
    args = dict(registry_cluster=lab_auth(lab, "registry"), cluster=lab_auth(lab, "test"), cluster_name=name,
                access="push", namespace=namespace, registry=lab.layout.integrated_endpoint, token_type="long_lived",
                targets=[{"namespace": namespace, "service_accounts": ["default"]}])
    pull = module_run(**dict(args, access="pull", namespace="test", registry=endpoint(lab, "test")))
    assert pull.status == "failed"
    assert "token_type: long_lived cannot make a pull credential" in failures(pull), failures(pull)
    assert not identity_exists(lab, "test", f"segmented-pull-{name}")
    run = module_run(**args)
    assert run.status == "successful", failures(run) or run.stdout_text[-3000:]
    generation_secret = core_of(lab, lab.layout.registry_cluster).read_namespaced_secret(
        f"segmented-push-{name}-gen1", namespace)
    assert generation_secret.type == "kubernetes.io/service-account-token"
    _key, token = credential(lab, "test", namespace, PUSH)
    integrated = Registry(lab, lab.layout.integrated_endpoint)
    assert integrated.push(token, f"{namespace}/app") == 202
    again = module_run(**args)
    assert again.status == "successful" and changed(again, "localhost") == 0
    assert credential(lab, "test", namespace, PUSH)[1] == token
    gone = module_run(**dict(args, state="absent"))
    assert gone.status == "successful", failures(gone)
    assert refused(integrated.push(token, f"{namespace}/app"))
    assert read_secret(lab, "test", namespace, PUSH) is None
    assert PUSH not in linked(lab, "test", namespace, "default", "secrets")
    assert not identity_exists(lab, namespace, f"segmented-push-{name}")


def lab_token_on(lab, cluster, namespace, name, cluster_role):
    """A TokenRequest token of a new service account on ``cluster`` with ``cluster_role`` in ``namespace``."""
    api = lab.api_client(cluster)
    core, rbac = kclient.CoreV1Api(api), kclient.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]})
    answer = core.create_namespaced_service_account_token(name, namespace, {"spec": {"expirationSeconds": 600}})
    return answer.status.token
