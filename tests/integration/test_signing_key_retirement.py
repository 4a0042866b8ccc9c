"""roles/registry_cluster: the token signing certificate a rotation replaced stays in the registries'
trust for registry_cluster_signing_previous_grace_seconds (recorded on the Secret), and the first
role run after that removes it: a token the old key signed is then refused."""
import base64
import datetime

import requests
from kubernetes import client as kclient

from tests.integration import promotion_lab as pl

PLAYBOOK = "playbooks/registry_cluster.yml"
NAMESPACE = "segmented-registry"
RETIRE_AFTER = "segmented.registry/previous-retire-after"
# the test's own grace: long enough that no other run on the shared lab retires the certificate while
# this test looks at it; the test then moves the recorded end into the past instead of waiting it out
GRACE = 600


def test_the_replaced_certificate_is_trusted_until_its_grace_then_removed(lab, run_playbook, unique):
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))

    def signing_secret():
        return core.read_namespaced_secret("token-server-signing", NAMESPACE)

    def bundle():
        return core.read_namespaced_config_map("registry-token-trust", "test").data["bundle.pem"]

    endpoint = dict(lab.layout.registries)["test"]
    scope = f"repository:retire-{unique}/app:pull"

    def token():
        answer = requests.get(f"https://{lab.layout.token_server_host}/token", auth=("u", lab.auditor_token()),
                              params={"service": "env-test", "scope": scope}, verify=lab.ca.cert_path, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["token"]

    def catalog_status(bearer):
        # any request the token's signature decides: 401 when the registry does not trust its signer,
        # 404 (no such repository) when it does
        return requests.get(f"https://{endpoint}/v2/retire-{unique}/app/tags/list",
                            headers={"Authorization": "Bearer " + bearer}, verify=lab.ca.cert_path, timeout=10).status_code

    old_token = token()
    assert catalog_status(old_token) == 404
    old_cert = base64.b64decode(signing_secret().data["tls.crt"]).decode().strip()

    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    rotated = run_playbook(PLAYBOOK, extravars={"registry_cluster_rotate_signing_key": True,
                                                "registry_cluster_signing_previous_grace_seconds": GRACE})
    assert rotated.status == "successful", rotated.stdout_text[-3000:]
    secret = signing_secret()
    assert base64.b64decode(secret.data["previous.crt"]).decode().strip() == old_cert
    retire_after = datetime.datetime.fromisoformat(secret.metadata.annotations[RETIRE_AFTER].replace("Z", "+00:00"))
    assert started + datetime.timedelta(seconds=GRACE) <= retire_after <= datetime.datetime.now(
        datetime.timezone.utc) + datetime.timedelta(seconds=GRACE)
    assert old_cert in bundle() and bundle().count("BEGIN CERTIFICATE") == 2
    assert catalog_status(old_token) == 404, "right after the rotation the old key's token is still accepted"
    assert catalog_status(token()) == 404

    # the grace has passed: the next run (this test's, or any other on the lab) removes the certificate
    core.patch_namespaced_secret("token-server-signing", NAMESPACE, {"metadata": {"annotations": {
        RETIRE_AFTER: (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")}}})
    retired = run_playbook(PLAYBOOK, extravars={"registry_cluster_signing_previous_grace_seconds": GRACE})
    assert retired.status == "successful", retired.stdout_text[-3000:]
    secret = signing_secret()
    assert "previous.crt" not in secret.data and RETIRE_AFTER not in (secret.metadata.annotations or {})
    assert old_cert not in bundle() and bundle().count("BEGIN CERTIFICATE") == 1
    assert "PRIVATE KEY" not in rotated.stdout_text + retired.stdout_text
    # the registries rolled to the new bundle (the run waits for them); the router may route to the old pod
    # for a moment after it went
    pl.wait_until(lambda: catalog_status(old_token) == 401, 20, "the registry refusing the retired key's token")
    assert catalog_status(token()) == 404
