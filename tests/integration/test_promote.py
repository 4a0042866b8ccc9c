"""promote.yml / demote.yml as an AWX job runs them (segmented.registry.promote: the edit and the
reconcile of one tag in one module run), and what every promotion job reports on the way:
check-mode previews, environments the inventory does not know, unverified TLS, and clusters the
job does not touch."""
import hashlib
import json
import re
import sys

import pytest
import yaml
from kubernetes import client as kclient
from kubernetes.dynamic import DynamicClient

from lab import image
from tests.integration import promotion_lab
from tests.integration.runs import task_result


SMALL = 64 * 1024
KEY = "segmented.registry/environments"


@pytest.fixture
def namespace(lab, unique):
    name = "pm-" + unique
    kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture(scope="module")
def streams(lab):
    return DynamicClient(lab.api_client(lab.layout.registry_cluster)).resources.get(
        api_version="image.openshift.io/v1", kind="ImageStream")


@pytest.fixture
def whitelist_namespace(lab, unique):
    """A namespace for approval-list edits alone (their digests are not real images), removed with
    its ImageStreams afterwards: a reconcile of the whole cluster later would meet them."""
    api = lab.api_client(lab.layout.registry_cluster)
    name = "pw-" + unique
    kclient.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    yield name
    promotion_lab.remove_namespace(api, name)


def record_push(lab, namespace, stream, tag):
    """A push of a made-up digest, recorded in the stream's status as the integrated registry does."""
    digest = "sha256:" + hashlib.sha256(f"{namespace}/{stream}:{tag}".encode()).hexdigest()
    image.record_push(lab.api_client(lab.layout.registry_cluster), namespace, stream, tag, digest,
                      lab.layout.integrated_endpoint, max_attempts=50)
    return digest


def approvals(streams, namespace, stream, tag):
    """The tag's approval list as stored (None: no list)."""
    for item in streams.get(name=stream, namespace=namespace).to_dict()["spec"].get("tags") or []:
        if item["name"] == tag:
            return (item.get("annotations") or {}).get(KEY)
    return None


def plain(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def words(text):
    """The output as one line of words (the YAML callback wraps long messages)."""
    return " ".join(plain(text).split())


def test_check_mode_previews_the_whole_promotion_and_writes_nothing(lab, namespace, streams, run_playbook):
    pushed = lab.push(namespace, "app", "v1", 2, SMALL)
    before = streams.get(name="app", namespace=namespace).to_dict()
    survey = {"project": namespace, "image": "app:v1", "env": "test"}

    preview = run_playbook("playbooks/promote.yml", extravars=survey, cmdline="--check")
    assert preview.status == "successful", preview.stdout_text[-3000:]
    result = task_result(preview, "Promote: add test")
    assert result["changed"] and result["environments_after"] == ["test"]
    copies = result["reconcile"]["copies"]
    assert [(c["environment"], c["repository"], c["tag"], c["digest"]) for c in copies] == [
        ("test", f"{namespace}/app", "v1", pushed["digest"])]
    assert copies[0]["bytes_planned"] >= 2 * SMALL and result["reconcile"]["bytes_planned"] == copies[0]["bytes_planned"]
    assert "bytes of blobs at most to send" in words(preview.stdout_text)
    shown = task_result(preview, "Say what changed")["msg"]  # the sentence, then the plan
    assert "bytes of blobs at most to send" in shown[0] and shown[1:] == copies, shown

    after = streams.get(name="app", namespace=namespace).to_dict()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], "check mode wrote"
    assert lab.where(namespace)["test"]["tags"] == {}, "check mode copied"

    done = run_playbook("playbooks/promote.yml", extravars=survey)
    assert done.status == "successful", done.stdout_text[-3000:]
    assert lab.where(namespace)["test"]["tags"] == {f"{namespace}/app:v1": pushed["digest"]}
    again = task_result(run_playbook("playbooks/promote.yml", extravars=survey), "Promote: add test")
    assert not again["changed"] and again["reconcile"]["summary"] == {"skipped": 1}


def test_consumers_the_job_does_not_touch_never_stop_a_promotion(lab, namespace, run_playbook, inventory):
    def edit(hosts, group_vars):
        # test: an API server that is down; uat and prod: no credentials of their own, so both
        # would rely on the K8S_AUTH_* environment (one AWX Kubernetes credential)
        hosts["test"]["segmented_registry_k8s_auth"] = {
            "host": "https://127.0.0.1:1", "api_key": "sha256~never-shown-0123456789"}
        del hosts["uat"]["segmented_registry_k8s_auth"]
        del hosts["prod"]["segmented_registry_k8s_auth"]

    broken = inventory(edit)
    pushed = lab.push(namespace, "app", "v1", 1, SMALL)
    survey = {"project": namespace, "image": "app:v1", "env": "test"}
    promoted = run_playbook("playbooks/promote.yml", inventory=broken, extravars=survey)
    assert promoted.status == "successful", promoted.stdout_text[-3000:]
    assert lab.where(namespace)["test"]["tags"] == {f"{namespace}/app:v1": pushed["digest"]}
    for playbook in ("playbooks/reconcile.yml", "playbooks/audit.yml"):
        run = run_playbook(playbook, inventory=broken, extravars={"project": namespace})
        assert run.status == "successful", (playbook, run.stdout_text[-3000:])

    # the site's validation touches every cluster: the shared credentials are a problem there
    site = run_playbook("playbooks/validate.yml", inventory=broken)
    assert site.status == "failed"
    text = words(site.stdout_text)
    assert "prod, uat all rely on the K8S_AUTH_* environment variables" in text, text[-3000:]
    assert "never-shown" not in text


def test_an_environment_the_inventory_does_not_know_is_reported_everywhere(
        lab, namespace, run_playbook, tmp_path):
    pushed = lab.push(namespace, "app", "v1", 1, SMALL)
    auth = {"kubeconfig": lab.kubeconfig, "context": lab.layout.registry_cluster}
    # written by hand (no known_environments): a typo the inventory does not define
    edit = run_playbook("tests/integration/playbooks/tag_environments.yml", extravars={
        "te_args": {"namespace": namespace, "name": "app:v1", "approved": ["test", "tset"]},
        "te_auth": auth})
    assert edit.status == "successful", edit.stdout_text[-3000:]

    reconciled = run_playbook("playbooks/reconcile.yml", extravars={"project": namespace})
    assert reconciled.status == "successful", reconciled.stdout_text[-3000:]
    result = task_result(reconciled, "Reconcile the environment registries")
    assert result["unknown_environments"] == ["tset"]
    assert "[WARNING]: approval lists name environments that the inventory does not define: tset" in words(
        reconciled.stdout_text)
    assert lab.where(namespace)["test"]["tags"] == {f"{namespace}/app:v1": pushed["digest"]}

    audit = run_playbook("playbooks/audit.yml", extravars={"project": namespace})
    table = task_result(audit, "Plan (check mode) the environment registries")["table"]
    line = [row for row in table if row.startswith(f"{namespace}/app:v1 ")][0]
    assert line.split()[2:4] == ["test", "test"] and line.endswith("tset: not an environment of the inventory (ignored)")

    promoted = run_playbook("playbooks/promote.yml", extravars={"project": namespace, "image": "app:v1",
                                                                "env": "uat"})
    assert promoted.status == "successful", promoted.stdout_text[-3000:]
    assert "does not define: tset" in words(promoted.stdout_text)

    info = run_playbook("tests/integration/playbooks/tag_environments_info.yml", extravars={
        "te_args": {"namespace": [namespace], "known_environments": ["test", "uat", "prod"]}, "te_auth": auth,
        "te_out": str(tmp_path / "ti.json")})
    assert info.status == "successful", info.stdout_text[-3000:]
    listing = json.loads((tmp_path / "ti.json").read_text())
    assert [t["unknown_environments"] for t in listing["tags"]] == [["tset"]]
    assert "is approved for tset, which the inventory does not define" in words(info.stdout_text)


def test_unverified_tls_is_an_explicit_opt_out_never_a_silent_one(lab, namespace, run_playbook, inventory):
    def edit(hosts, group_vars):
        for env in group_vars["segmented_registry_environments"]:
            if env["name"] == "uat":
                env["validate_certs"] = False

    run = run_playbook("playbooks/reconcile.yml", inventory=inventory(edit), extravars={"project": namespace},
                       cmdline="--check")
    assert run.status == "successful", run.stdout_text[-3000:]
    text = words(run.stdout_text)
    endpoint = {env: endpoint for env, endpoint, *_rest in lab.layout.registries}["uat"]
    warning = (f"environment uat: the TLS certificate of {endpoint} is not verified (validate_certs: false in "
               "segmented_registry_environments); prefer ca_cert")
    assert text.count(warning) == 1, text[-3000:]
    assert text.count("is not verified") == 1


def test_a_promotion_whose_copy_fails_says_it_changed_the_approval_list(lab, namespace, streams, run_playbook,
                                                                        inventory):
    """The source (the integrated registry) cannot be reached: the approval list is written, the
    copy fails. The job fails with changed: true and a message that starts with the list it
    changed (the scheduled reconcile copies the image later); a rerun once the source is back
    copies it and changes no list."""
    def edit(hosts, group_vars):
        hosts["registry"]["segmented_registry_integrated_registry"] = "127.0.0.1:1"  # nothing listens there

    pushed = lab.push(namespace, "app", "v1", 1, SMALL)
    survey = {"project": namespace, "image": "app:v1", "env": "test"}
    failed = run_playbook("playbooks/promote.yml", inventory=inventory(edit), extravars=survey)
    assert failed.status == "failed", failed.stdout_text[-3000:]
    assert [e["event_data"]["task"] for e in failed.events if e.get("event") == "runner_on_failed"] == [
        "Promote: add test"], failed.stdout_text[-3000:]
    result = task_result(failed, "Promote: add test")
    assert result["changed"] is True, result
    assert result["msg"].startswith(f"{namespace}/app:v1: the approval list changed and stays so (default -> test); "
                                    "then the registries could not follow: "), result["msg"]
    assert "127.0.0.1:1" in result["msg"], result["msg"]
    assert result["environments_after"] == ["test"]
    stored = streams.get(name="app", namespace=namespace).to_dict()
    tag = [t for t in stored["spec"]["tags"] if t["name"] == "v1"][0]
    assert tag["annotations"]["segmented.registry/environments"] == "test"
    assert lab.where(namespace)["test"]["tags"] == {}

    again = run_playbook("playbooks/promote.yml", extravars=survey)
    assert again.status == "successful", again.stdout_text[-3000:]
    result = task_result(again, "Promote: add test")
    assert result["environments_before"] == ["test"] and result["reconcile"]["summary"] == {"copied": 1}
    assert lab.where(namespace)["test"]["tags"] == {f"{namespace}/app:v1": pushed["digest"]}


def test_promote_and_demote_playbooks_edit_the_approval_list(lab, whitelist_namespace, streams, run_playbook):
    namespace = whitelist_namespace
    digest = record_push(lab, namespace, "app", "v1")
    # reconcile=false: the approval-list edits alone (the recorded digest is no real image; the
    # promotion that follows an edit is tested above and in test_reconcile.py)
    survey = {"project": namespace, "image": "app:v1", "env": "uat", "reconcile": False}

    promoted = run_playbook("playbooks/promote.yml", extravars=survey)
    assert promoted.status == "successful", promoted.stdout_text[-4000:]
    assert approvals(streams, namespace, "app", "v1") == "uat"
    assert f"{namespace}/app:v1 ({digest}): environments default -> uat (changed)" in words(promoted.stdout_text)
    assert promoted.stats["changed"].get("localhost", 0) == 1

    again = run_playbook("playbooks/promote.yml", extravars=survey)
    assert again.status == "successful"
    assert "environments uat -> uat (unchanged: nothing to do)" in words(again.stdout_text)
    assert (again.stats.get("changed") or {}).get("localhost", 0) == 0

    promoted = run_playbook("playbooks/promote.yml", extravars={"project": namespace, "stream": "app", "tag": "v1",
                                                                "env": "prod", "reconcile": False})
    assert promoted.status == "successful", promoted.stdout_text[-4000:]
    assert approvals(streams, namespace, "app", "v1") == "prod,uat"

    for environment, after in (("uat", "prod"), ("prod", None)):
        demoted = run_playbook("playbooks/demote.yml", extravars=dict(survey, env=environment))
        assert demoted.status == "successful", demoted.stdout_text[-4000:]
        assert approvals(streams, namespace, "app", "v1") == after
    assert "environments prod -> default (changed)" in words(demoted.stdout_text)

    unknown = run_playbook("playbooks/promote.yml", extravars=dict(survey, env="qa"))
    assert unknown.status == "failed"
    assert '"qa" is not a known environment' in words(unknown.stdout_text)
    incomplete = run_playbook("playbooks/promote.yml", extravars={"project": namespace, "env": "uat"})
    assert incomplete.status == "failed"
    assert "Give the image stream tag and the environment as extra variables" in words(incomplete.stdout_text)
    assert approvals(streams, namespace, "app", "v1") is None


def test_promote_uses_k8s_auth_environment_when_the_inventory_has_no_credentials(
        lab, whitelist_namespace, streams, run_playbook, make_token, unique, tmp_path):
    """A registry host without segmented_registry_k8s_auth: the K8S_AUTH_* variables apply (AWX)."""
    namespace = whitelist_namespace
    record_push(lab, namespace, "app", "v1")
    token = make_token("sa-" + unique, "promoter", roles={namespace: "registry-editor"})
    inventory = {"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "segmented_registry_environments": [
                     {"name": name, "route_host": f"{name}-registry.apps.registry.lab.local",
                      "endpoint": endpoint} for name, endpoint, *_rest in lab.layout.registries if name in ("test", "uat")]},
        "hosts": {"registry": {"segmented_registry_role": "registry"}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    port = dict(lab.layout.clusters)[lab.layout.registry_cluster]
    envvars = {"K8S_AUTH_HOST": f"https://127.0.0.1:{int(port)}", "K8S_AUTH_API_KEY": token,
               "K8S_AUTH_SSL_CA_CERT": lab.ca.cert_path}
    runner = run_playbook("playbooks/promote.yml", inventory=str(path), envvars=envvars,
                          extravars={"project": namespace, "image": "app:v1", "env": "test", "reconcile": False,
                                     "segmented_registry_check_reachable": False})
    assert runner.status == "successful", runner.stdout_text[-4000:].replace(token, "***")
    assert token not in runner.stdout_text
    assert approvals(streams, namespace, "app", "v1") == "test"
