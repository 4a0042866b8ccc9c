"""The environment registries' access model on a lab with OpenShift's default authorization
(lab/README.md): an attack table against every environment registry (test, uat, prod).

Each row is an identity, an action and the expected outcome, driven as a registry client does it:
the challenge's realm and service, a token request for the action's scope with the identity's
credential, then the request with the token (push: a real blob upload and manifest PUT; pull: a
manifest GET; delete: a manifest DELETE; catalog: GET /v2/_catalog). A refused row must never get
a token holding the action, a refusal by the registry must be 401 or 403, and the token server's
log must name why: the grant the user lacks (verb, resource segmented.registry/
environmentregistries, namespace) or, for a credential it does not authenticate, the denial.

Design (components/token-server/internal/access/access.go, roles/registry_cluster): an environment registry is
authorized by SubjectAccessReview on group segmented.registry, resource environmentregistries,
verbs pull/push/delete/catalog in the environment's namespace; only tokens bound to the audience
segmented.registry/token-server are accepted; segmented-registry:environment-promoter (bound to
the promoter) and segmented-registry:environment-puller (bound to the consumers' pull
credentials) grant them, and no role of OpenShift's but cluster-admin does.
"""
import base64
import datetime
import glob
import hashlib
import hmac
import json
import os
import re
import time
import uuid

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError
from tests.integration import promotion_lab as pl
from tests.integration.test_credentials import APP_NS, EXTRA, PLAYBOOK, PULL, PUSH, credential, read_secret

AUDIENCE = "segmented.registry/token-server"
ENVIRONMENTS = ("test", "uat", "prod")
RESOURCE = "segmented.registry/environmentregistries"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
REVOCATION_WAIT = 120  # seconds a revoked credential may take to be refused before the test fails


# ---------------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------------


def api_token(lab, namespace, name, audience=AUDIENCE, cluster=None, bound_secret=None):
    """A TokenRequest token of service account ``namespace/name`` (on the registry cluster unless
    ``cluster``), bound to ``audience`` (None: the API server's own) and to a Secret if given."""
    spec = {"expirationSeconds": 3600}
    if audience:
        spec["audiences"] = [audience]
    if bound_secret is not None:
        spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Secret", "name": bound_secret.metadata.name,
                                  "uid": bound_secret.metadata.uid}
    api = lab.api_client(cluster or lab.layout.registry_cluster)
    return kclient.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, {"spec": spec}).status.token


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_server_namespace(lab):
    """The namespace of the environment registries' token server: the one whose Route serves the
    token server's host (other token servers may run on the lab, e.g. Molecule's)."""
    api = lab.api_client(lab.layout.registry_cluster)
    routes = kclient.CustomObjectsApi(api).list_cluster_custom_object("route.openshift.io", "v1", "routes")["items"]
    namespaces = {r["metadata"]["namespace"] for r in routes if r["spec"].get("host") == lab.layout.token_server_host}
    assert len(namespaces) == 1, f"Routes for {lab.layout.token_server_host}: {sorted(namespaces)}"
    return namespaces.pop()


def signing_pair(lab):
    """(certificate PEM, private key PEM) the environment registries' token server signs with: the
    Secret mounted at /etc/token-server/signing into its Deployment."""
    api = lab.api_client(lab.layout.registry_cluster)
    namespace = token_server_namespace(lab)
    pod = kclient.AppsV1Api(api).read_namespaced_deployment("token-server", namespace).spec.template.spec
    mounts = {m.name: m.mount_path for c in pod.containers for m in c.volume_mounts or []}
    for volume in pod.volumes:
        if volume.secret and mounts.get(volume.name) == "/etc/token-server/signing":
            data = kclient.CoreV1Api(api).read_namespaced_secret(volume.secret.secret_name, namespace).data
            return base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"])
    pytest.fail(f"the token-server Deployment of {namespace} mounts no signing Secret at /etc/token-server/signing")


def forge(claims, alg, key=None, cert_pem=None):
    """A registry token: ``alg`` RS256 with ``key`` (an RSA private key) and ``cert_pem`` as x5c,
    none (no signature), or HS256 with the HMAC secret ``key`` (bytes)."""
    header = {"alg": alg, "typ": "JWT"}
    if cert_pem:
        header["x5c"] = [base64.b64encode(x509.load_pem_x509_certificate(cert_pem).public_bytes(
            serialization.Encoding.DER)).decode()]
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    if alg == "RS256":
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    elif alg == "HS256":
        signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    else:
        signature = b""
    return signing_input + "." + b64url(signature)


def other_key_and_cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "segmented-registry")])
    now = time.time()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime.fromtimestamp(now - 3600, datetime.timezone.utc))
            .not_valid_after(datetime.datetime.fromtimestamp(now + 86400, datetime.timezone.utc))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------------------------------------
# A registry client that reports every step
# ---------------------------------------------------------------------------------------------


class Outcome:
    """What one attempt came to: the token server's status, the actions the token holds for the
    scope asked, and the registry's last status (None when no request reached the registry)."""

    def __init__(self, token_status, granted=(), registry=None):
        self.token_status, self.granted, self.registry = token_status, set(granted), registry

    @property
    def allowed(self):
        return self.token_status == 200 and self.registry in (200, 201, 202)

    def __str__(self):
        return f"token {self.token_status} granted [{','.join(sorted(self.granted)) or '-'}] registry {self.registry or '-'}"


class EnvRegistry:
    def __init__(self, lab, env):
        self.lab, self.env, self.host = lab, env, dict(lab.layout.registries)[env]
        self.session = requests.Session()
        self.ca = lab.ca.cert_path
        challenge = pl.wait_for_challenge(lab, self.host)
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge.headers["WWW-Authenticate"]))
        self.realm, self.service = fields["realm"], fields["service"]

    def token(self, credential, scope):
        """(status, token or None, actions the token holds for ``scope``'s resource)."""
        for _attempt in range(5):
            answer = self.session.get(self.realm, params={"service": self.service, "scope": scope},
                                      auth=("serviceaccount", credential) if credential else None,
                                      timeout=30, verify=self.ca)
            if answer.status_code != 429:
                break
            time.sleep(min(5, int(answer.headers.get("Retry-After", "1"))))  # the token server's own pacing
        if answer.status_code != 200:
            return answer.status_code, None, set()
        token = answer.json().get("token") or answer.json().get("access_token")
        kind, name, _actions = scope.split(":")
        granted = set()
        for entry in jwt_claims(token).get("access") or []:
            if entry.get("type") == kind and entry.get("name") == name:
                granted |= set(entry.get("actions") or [])
        return 200, token, granted

    def send(self, token, method, path, **options):
        headers = dict(options.pop("headers", {}))
        if token:
            headers["Authorization"] = "Bearer " + token
        return self.session.request(method, f"https://{self.host}{path}", headers=headers, timeout=60,
                                    verify=self.ca, **options)

    # -- the four actions, each with the token its scope gets --------------------------------------
    def attempt(self, credential, action, repository, image):
        scope = {"push": f"repository:{repository}:pull,push", "pull": f"repository:{repository}:pull",
                 "delete": f"repository:{repository}:delete", "catalog": "registry:catalog:*"}[action]
        status, token, granted = self.token(credential, scope)
        if status != 200:
            return Outcome(status)
        return Outcome(status, granted, getattr(self, "_" + action)(token, repository, image))

    def with_token(self, token, action, repository, image):
        """The action with a registry token got elsewhere (forged): only the registry decides."""
        return Outcome(None, (), getattr(self, "_" + action)(token, repository, image))

    def _push(self, token, repository, image):
        for blob in (image["config"], image["layer"]):
            started = self.send(token, "POST", f"/v2/{repository}/blobs/uploads/")
            if started.status_code != 202:
                return started.status_code
            location = started.headers["Location"]
            location = location if location.startswith("http") else f"https://{self.host}{location}"
            done = self.session.put(location, params={"digest": blob["digest"]}, data=blob["data"],
                                    headers={"Authorization": "Bearer " + token,
                                             "Content-Type": "application/octet-stream"},
                                    timeout=60, verify=self.ca)
            if done.status_code != 201:
                return done.status_code
        return self.send(token, "PUT", f"/v2/{repository}/manifests/{image['tag']}", data=image["manifest"],
                         headers={"Content-Type": MANIFEST_TYPE}).status_code

    def _pull(self, token, repository, image):
        return self.send(token, "GET", f"/v2/{repository}/manifests/{image['tag']}",
                         headers={"Accept": MANIFEST_TYPE}).status_code

    def _delete(self, token, repository, image):
        return self.send(token, "DELETE", f"/v2/{repository}/manifests/{image['digest']}").status_code

    def _catalog(self, token, repository, image):
        return self.send(token, "GET", "/v2/_catalog").status_code


def small_image(seed):
    """A real one-layer OCI image: {config, layer: {digest, data}, manifest bytes, digest, tag}."""
    def blob(data):
        return {"data": data, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
    layer = blob(hashlib.sha256(seed.encode()).digest() * 64)
    config = blob(json.dumps({"architecture": "amd64", "os": "linux",
                              "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config["digest"],
                   "size": config["size"]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer["digest"],
                    "size": layer["size"]}]}).encode()
    return {"config": config, "layer": layer, "manifest": manifest,
            "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(), "tag": "v1"}


# ---------------------------------------------------------------------------------------------
# The token server's log (its pods' container logs on the lab's node)
# ---------------------------------------------------------------------------------------------


class TokenServerLog:
    """The lines the environment registries' token server pods logged from now on (their container
    logs on the lab's node: <state>/node/pod-logs/<namespace>_<pod>_<uid>/token-server/)."""

    def __init__(self, lab):
        self.pattern = os.path.join(lab.node().dir, "pod-logs", token_server_namespace(lab) + "_token-server-*",
                                    "token-server", "*.log")
        self.offsets = {path: os.path.getsize(path) for path in glob.glob(self.pattern)}

    def text(self):
        chunks = []
        for path in sorted(glob.glob(self.pattern)):
            with open(path, "rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                chunks.append(handle.read().decode("utf-8", "replace"))
        return "".join(chunks)

    def expect(self, pattern):
        """For eventually(): an AssertionError while no line logged since matches ``pattern``."""
        assert pattern.search(self.text()), f"no token server log line /{pattern.pattern}/"

    @staticmethod
    def refusal(user, verb, namespace):
        """A 'refuse' line naming the grant ``user`` lacks."""
        return re.compile(r"msg=refuse .*user=%s .*verb=%s resource=%s namespace=%s(\s|$)" % (
            re.escape(user), re.escape(verb), re.escape(RESOURCE), re.escape(namespace)))

    @staticmethod
    def denial(credential):
        """A 'deny' line for the credential (by its fingerprint), or for an anonymous request."""
        if credential is None:
            return re.compile(r"msg=deny .*reason=anonymous")
        return re.compile(r"msg=deny .*token_sha256=%s" % hashlib.sha256(credential.encode()).hexdigest()[:12])


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def consumer_credentials(lab, run_playbook, environment_registries):
    """The pull credentials the credentials role distributed to each consumer and the build
    namespace's push credential (playbooks/credentials.yml, run only when one is missing)."""
    if any(read_secret(lab, env, APP_NS) is None for env in ENVIRONMENTS) or read_secret(lab, "test", APP_NS, PUSH) is None:
        run = run_playbook(PLAYBOOK, extravars=EXTRA)
        assert run.status == "successful", run.stdout_text[-4000:]
    return {"pull": {env: credential(lab, env, APP_NS, PULL)[1] for env in ENVIRONMENTS},
            "push": credential(lab, "test", APP_NS, PUSH)[1]}


@pytest.fixture(scope="module")
def attackers(lab):
    """Service accounts of a namespace of this module's own on the registry cluster: one bound
    to edit and one to admin in every environment namespace, and the admin of its own (build)
    namespace. Their RoleBindings and the namespace are removed at the end."""
    unique = uuid.uuid4().hex[:8]
    namespace = "attack-" + unique
    api = lab.api_client(lab.layout.registry_cluster)
    core, rbac = kclient.CoreV1Api(api), kclient.RbacAuthorizationV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    made = []
    grants = [(f"{role}-{env}", role, env) for env in ENVIRONMENTS for role in ("edit", "admin")]
    grants.append(("build-admin", "admin", namespace))
    for account, role, where in grants:
        core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
        binding = f"{namespace}-{account}"
        rbac.create_namespaced_role_binding(where, {
            "metadata": {"name": binding},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]})
        made.append((where, binding))
    yield {"namespace": namespace, "unique": unique}
    for where, binding in made:
        try:
            rbac.delete_namespaced_role_binding(binding, where)
        except ApiException as exc:
            if exc.status != 404:
                raise
    try:
        core.delete_namespace(namespace)
    except ApiException as exc:  # another session's end removed it first
        if exc.status != 404:
            raise


def _identities(lab, env, attackers, consumer_credentials):
    """(label, credential, expected: {action: allowed?}) of every identity for ``env``."""
    namespace = attackers["namespace"]
    other = ENVIRONMENTS[(ENVIRONMENTS.index(env) + 1) % len(ENVIRONMENTS)]
    refused = dict.fromkeys(("push", "pull", "delete", "catalog"), False)
    return [
        ("promoter", api_token(lab, *pl.PROMOTER.split("/")), dict.fromkeys(refused, True)),
        (f"{env} consumer's pull credential", consumer_credentials["pull"][env], dict(refused, pull=True)),
        (f"{env}/builder SA (token-server audience)", api_token(lab, env, "builder"), refused),
        (f"{env}/builder SA (API audience)", api_token(lab, env, "builder", audience=None), refused),
        (f"edit in {env}", api_token(lab, namespace, "edit-" + env), refused),
        (f"admin in {env}", api_token(lab, namespace, "admin-" + env), refused),
        ("admin of a build namespace", api_token(lab, namespace, "build-admin"), refused),
        (f"{other} consumer's pull credential", consumer_credentials["pull"][other], refused),
        ("build namespace's push credential", consumer_credentials["push"], refused),
        ("anonymous", None, refused),
        (f"{env} cluster's own API token (myproject/default)",
         api_token(lab, APP_NS, "default", cluster=env), refused),
    ]


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_attack_table(lab, env, attackers, consumer_credentials, eventually):
    registry = EnvRegistry(lab, env)
    log = TokenServerLog(lab)
    repository = f"attack-{attackers['unique']}/table/app"
    image = small_image(f"{repository}@{env}")
    identities = _identities(lab, env, attackers, consumer_credentials)
    rows, problems = [], []
    # push first (the promoter's puts the image the pulls and deletes are tried on), delete last,
    # the promoter's after every other identity's
    for action in ("push", "pull", "catalog", "delete"):
        for label, secret, expected in identities if action == "push" else identities[1:] + identities[:1]:
            outcome = registry.attempt(secret, action, repository, image)
            want = expected[action]
            rows.append((label, action, "allowed" if want else "refused", str(outcome)))
            if want != outcome.allowed:
                problems.append(f"{label} {action}: expected {'allowed' if want else 'refused'}, got {outcome}")
            if not want and ({"*"} if action == "catalog" else {action}) & outcome.granted:
                problems.append(f"{label} {action}: got a token holding {action}")
            if not want and outcome.registry is not None and outcome.registry not in (401, 403):
                problems.append(f"{label} {action}: the registry answered {outcome.registry}, not 401/403")
            if not want and outcome.token_status not in (200, 401, 403):
                problems.append(f"{label} {action}: the token server answered {outcome.token_status}")
            if not want:
                rows[-1] += (_reason_pattern(outcome, secret, action, env),)
    table = "\n".join(f"{env:5} | {r[0]:50} | {r[1]:7} | {r[2]:8} | {r[3]}" for r in rows)
    print(f"\nattack table, {env} registry ({registry.host}):\n{table}")

    # every refusal is logged with its reason: the grant lacked, or the credential denied
    def logged():
        text = log.text()
        missing = [f"{r[0]} {r[1]}: no log line /{r[4].pattern}/" for r in rows if len(r) > 4 and not r[4].search(text)]
        assert not missing, "\n".join(missing)
    try:
        eventually(logged, timeout=30)
    except AssertionError as exc:
        problems.append(str(exc))
    assert not problems, "\n".join(problems) + "\n\n" + table


def _reason_pattern(outcome, secret, action, env):
    """What the token server's log must say about a refused row."""
    if outcome.token_status != 200:
        return TokenServerLog.denial(secret)
    user = jwt_claims(secret)["sub"]
    return TokenServerLog.refusal(user, action, env)


def test_forged_and_expired_registry_tokens_are_refused(lab, attackers):
    """Registry tokens made without the token server: signed with the token server's own key but
    expired, signed with another RSA key, with alg none, with HS256 keyed by the token server's
    certificate. Each registry answers 401 to all of them; the same forgery with the real key and
    a valid time pulls (so the refusals are the key's, the algorithm's and the expiry's)."""
    cert_pem, key_pem = signing_pair(lab)
    real_key = serialization.load_pem_private_key(key_pem, password=None)
    other_key, other_cert = other_key_and_cert()
    issuer = pl.token_server(lab)[1]
    promoter = api_token(lab, *pl.PROMOTER.split("/"))
    rows, problems = [], []
    for env in ENVIRONMENTS:
        registry = EnvRegistry(lab, env)
        repository = f"attack-{attackers['unique']}/forged/app"
        image = small_image(f"{repository}@{env}")
        assert registry.attempt(promoter, "push", repository, image).allowed, "the promoter cannot push"
        now = int(time.time())

        def claims(expires=now + 300, issued=now, audience=registry.service, name=repository):
            return {"iss": issuer, "sub": "system:serviceaccount:segmented-registry-promotion:promoter", "aud": audience,
                    "exp": expires, "nbf": issued, "iat": issued, "jti": uuid.uuid4().hex,
                    "access": [{"type": "repository", "name": name, "actions": ["pull", "push", "delete"]},
                               {"type": "registry", "name": "catalog", "actions": ["*"]}]}
        forgeries = [
            ("real key, valid (control)", forge(claims(), "RS256", real_key, cert_pem), True),
            ("real key, expired an hour ago", forge(claims(now - 3600, now - 3900), "RS256", real_key, cert_pem), False),
            ("another RSA key", forge(claims(), "RS256", other_key, other_cert), False),
            ("alg none", forge(claims(), "none", cert_pem=cert_pem), False),
            ("HS256 keyed by the signing certificate", forge(claims(), "HS256", cert_pem, cert_pem), False),
        ]
        for label, token, want in forgeries:
            for action in (("pull",) if want else ("pull", "push", "delete", "catalog")):
                outcome = registry.with_token(token, action, repository, image)
                rows.append(f"{env:5} | {label:40} | {action:7} | {'allowed' if want else 'refused':8} | {outcome}")
                if want != (outcome.registry in (200, 201, 202)) or (not want and outcome.registry not in (401, 403)):
                    problems.append(rows[-1])
    print("\nforged registry tokens:\n" + "\n".join(rows))
    assert not problems, "\n".join(problems)


def test_revoked_credential_is_refused_and_the_delay_is_measured(lab, attackers, eventually):
    """A pull credential bound to a Secret (as the credentials role mints them) pulls from prod;
    once the Secret is deleted the token server refuses it. The delay until then is reported
    (the token server's TokenReview cache; docs/docsite/rst/guide_security.rst), not asserted:
    the test only waits at most REVOCATION_WAIT seconds. A registry token issued before the
    deletion stays valid until it expires (the registry cannot know), as documented."""
    env = "prod"
    namespace, unique = attackers["namespace"], attackers["unique"]
    api = lab.api_client(lab.layout.registry_cluster)
    core, rbac = kclient.CoreV1Api(api), kclient.RbacAuthorizationV1Api(api)
    account = "revoked"
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    binding = f"{namespace}-{account}"
    rbac.create_namespaced_role_binding(env, {
        "metadata": {"name": binding},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "segmented-registry:environment-puller"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]})
    try:
        secret = core.create_namespaced_secret(namespace, {"metadata": {"name": "revoked-credential"}, "type": "Opaque"})
        token = api_token(lab, namespace, account, bound_secret=secret)
        registry = EnvRegistry(lab, env)
        repository = f"attack-{unique}/revoked/app"
        image = small_image(repository)
        assert registry.attempt(api_token(lab, *pl.PROMOTER.split("/")), "push", repository, image).allowed
        before = eventually(lambda: _must_pull(registry, token, repository, image), timeout=30)
        _status, issued, _granted = registry.token(token, f"repository:{repository}:pull")
        log = TokenServerLog(lab)
        core.delete_namespaced_secret(secret.metadata.name, namespace)
        deleted = time.monotonic()
        while True:
            outcome = registry.attempt(token, "pull", repository, image)
            if not outcome.allowed:
                break
            assert time.monotonic() - deleted < REVOCATION_WAIT, \
                f"the revoked credential still pulls {REVOCATION_WAIT}s after its Secret was deleted"
            time.sleep(0.5)
        delay = time.monotonic() - deleted
        assert outcome.token_status == 401 and not outcome.granted, outcome
        eventually(lambda: log.expect(TokenServerLog.denial(token)), timeout=30)
        still = registry.send(issued, "GET", f"/v2/{repository}/manifests/{image['tag']}",
                              headers={"Accept": MANIFEST_TYPE}).status_code
        print(f"\nrevocation: pulled ({before}) before the Secret was deleted; the token server refused the "
              f"credential {delay:.1f} s after; a registry token issued before the deletion still answers {still} "
              f"(valid until it expires)")
    finally:
        rbac.delete_namespaced_role_binding(binding, env)


def _must_pull(registry, token, repository, image):
    outcome = registry.attempt(token, "pull", repository, image)
    assert outcome.allowed, outcome
    return outcome.registry


# ---------------------------------------------------------------------------------------------
# The promoter's identity: its own namespace, reads only in the source namespaces
# ---------------------------------------------------------------------------------------------

SOURCE_READER = "segmented-registry:promotion-source-reader"
RETIRED_PROMOTER = "segmented-registry/promoter"  # the promoter of earlier versions (the token server's namespace)


def may(lab, user, verb, resource, namespace=None, group="image.openshift.io", subresource=None):
    """Whether service account ``user`` (namespace/name) may (a SubjectAccessReview on the
    registry cluster, with the groups the API server gives a service account)."""
    ns, name = user.split("/")
    attributes = {"verb": verb, "resource": resource, "group": group, "namespace": namespace or "",
                  "subresource": subresource or ""}
    review = kclient.AuthorizationV1Api(lab.api_client(lab.layout.registry_cluster)).create_subject_access_review(
        {"spec": {"user": f"system:serviceaccount:{ns}:{name}", "resourceAttributes": attributes,
                  "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]}})
    return review.status.allowed


def allowed(lab, user, *rights, **options):
    """``may`` as an assertion, for ``eventually``: the API server's RBAC cache sees a new binding
    a moment after it is created."""
    assert may(lab, user, *rights, **options), f"{user} may not {' '.join(rights)} (yet)"


def integrated_pull(lab, token, repository, tag):
    """The HTTP status of a manifest GET of ``repository:tag`` from the integrated registry with
    ``token`` (an API token) as the registry password, as the promotion engine pulls its source."""
    source = pl.client(lab, lab.layout.integrated_endpoint, token, name="integrated")
    try:
        return 200 if source.get_manifest(repository, tag) is not None else 404
    except RegistryError as exc:
        return getattr(exc, "status", None) or str(exc)
    finally:
        source.close()


def test_the_promoter_reads_and_pulls_in_source_namespaces_only(lab, attackers, eventually, environment_registries):
    """The promoter lists ImageStreams and pulls from the integrated registry in a source
    namespace (control: an image pushed there, pulled), nowhere else: no cluster-wide list, no pull
    from a namespace that is not a source - a real pull once the namespace stops being one, and a
    SubjectAccessReview in a namespace that never was."""
    namespace = "source-" + attackers["unique"]
    pushed = lab.push(namespace, "app", "v1", 1, 4096)  # a build's push: the namespace is a source (lab.promotion_source)
    promoter = api_token(lab, *pl.PROMOTER.split("/"), audience=None)
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
    rbac = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster))
    try:
        assert may(lab, pl.PROMOTER, "list", "imagestreams", namespace)
        assert may(lab, pl.PROMOTER, "get", "imagestreams", namespace, subresource="layers")
        assert integrated_pull(lab, promoter, f"{namespace}/app", "v1") == 200, pushed
        assert not may(lab, pl.PROMOTER, "list", "imagestreams"), "the promoter lists ImageStreams cluster-wide"
        assert not may(lab, pl.PROMOTER, "get", "imagestreams", None, subresource="layers"), \
            "the promoter pulls every image of the integrated registry"
        assert not may(lab, pl.PROMOTER, "get", "imagestreams", attackers["namespace"], subresource="layers")
        assert not may(lab, pl.PROMOTER, "list", "imagestreams", attackers["namespace"])
        rbac.delete_namespaced_role_binding(f"{SOURCE_READER}:{pl.PROMOTER.replace('/', ':')}", namespace)
        eventually(lambda: _refused(integrated_pull(lab, promoter, f"{namespace}/app", "v1")), timeout=30)
    finally:
        core.delete_namespace(namespace)


def _refused(status):
    assert status in (401, 403) or "401" in str(status) or "403" in str(status), status


def test_an_admin_of_the_token_servers_namespace_cannot_act_as_the_promoter(lab, attackers, eventually):
    """The token server's namespace holds the signing key; its admin may read the key but may not
    mint the promoter's tokens, which live in a namespace of their own (control: the same admin may
    mint tokens in the token server's namespace, so the refusal is the namespace's)."""
    namespace = token_server_namespace(lab)
    promoter_ns, promoter = pl.PROMOTER.split("/")
    assert promoter_ns != namespace
    rbac = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster))
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
    account, binding = "token-server-admin", f"{attackers['namespace']}-token-server-admin"
    core.create_namespaced_service_account(attackers["namespace"], {"metadata": {"name": account}})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": binding},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": attackers["namespace"]}]})
    admin = f"{attackers['namespace']}/{account}"
    try:
        eventually(lambda: allowed(lab, admin, "get", "secrets", namespace, group=""))  # the signing key (control)
        assert may(lab, admin, "create", "serviceaccounts", namespace, group="", subresource="token")  # control
        assert not may(lab, admin, "create", "serviceaccounts", promoter_ns, group="", subresource="token")
        with pytest.raises(ApiException) as refused:
            core.read_namespaced_service_account(promoter, namespace)
        assert refused.value.status == 404, f"a service account {promoter} is in the token server's namespace"
    finally:
        rbac.delete_namespaced_role_binding(binding, namespace)


def test_an_upgrade_removes_the_cluster_wide_reads_and_the_promoter_of_earlier_versions(
        lab, run_playbook, environment_registries, eventually):
    """What an earlier version made - the promoter segmented-registry/promoter in the token
    server's namespace, its environment-promoter RoleBindings, and the cluster-wide
    registry-viewer and system:image-puller bindings - is gone after a run of the role."""
    api = lab.api_client(lab.layout.registry_cluster)
    core, rbac = kclient.CoreV1Api(api), kclient.RbacAuthorizationV1Api(api)
    labels = {"app.kubernetes.io/managed-by": "segmented.registry", "app.kubernetes.io/name": "registry"}
    old_ns, old_name = RETIRED_PROMOTER.split("/")
    subject = [{"kind": "ServiceAccount", "namespace": old_ns, "name": old_name}]
    old_bindings = {role: f"segmented-registry:{old_ns}:{old_name}:{role.replace('system:', '')}"
                    for role in ("registry-viewer", "system:image-puller")}
    environment_binding = f"segmented-registry:promoter:{old_ns}:{old_name}"

    def ignore_conflict(create, *args):
        try:
            create(*args)
        except ApiException as exc:  # left by an earlier version, or by another session's test
            if exc.status != 409:
                raise
    ignore_conflict(core.create_namespaced_service_account, old_ns, {"metadata": {"name": old_name, "labels": labels}})
    for role, name in old_bindings.items():
        ignore_conflict(rbac.create_cluster_role_binding, {
            "metadata": {"name": name, "labels": labels}, "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}})
    for env in ENVIRONMENTS:
        ignore_conflict(rbac.create_namespaced_role_binding, env, {
            "metadata": {"name": environment_binding, "labels": labels}, "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "segmented-registry:environment-promoter"}})
    eventually(lambda: allowed(lab, RETIRED_PROMOTER, "list", "imagestreams"))  # what the upgrade must take away

    run = run_playbook("playbooks/registry_cluster.yml")
    assert run.status == "successful", run.stdout_text[-4000:]

    left = []
    for name in old_bindings.values():
        try:
            rbac.read_cluster_role_binding(name)
            left.append("ClusterRoleBinding " + name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    for env in ENVIRONMENTS:
        try:
            rbac.read_namespaced_role_binding(environment_binding, env)
            left.append(f"RoleBinding {env}/{environment_binding}")
        except ApiException as exc:
            if exc.status != 404:
                raise
    try:
        core.read_namespaced_service_account(old_name, old_ns)
        left.append("ServiceAccount " + RETIRED_PROMOTER)
    except ApiException as exc:
        if exc.status != 404:
            raise
    assert not left, f"left after the upgrade: {left}"
    assert not may(lab, pl.PROMOTER, "list", "imagestreams"), "the promoter lists ImageStreams cluster-wide"
    for env in ENVIRONMENTS:
        assert not may(lab, RETIRED_PROMOTER, "push", "environmentregistries", env, group="segmented.registry"), env
