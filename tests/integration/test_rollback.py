"""rollback.yml as an AWX job runs it (segmented.registry.rollback) on the lab, with the promotion
history it reads and writes: promote digest A of app:v1, move the tag to digest B and promote again,
roll back (check mode first), and the environment registry serves A again (a uat node pulling
app:v1 through the consumer configuration resolves B before, A after); reconcile keeps it, the
audit shows the three entries, and the next move of the tag promotes as before. Without history a
rollback fails cleanly and changes nothing. An account with the rights the docs give a promotion job
(edit ImageStreams, mint the promoter's tokens) but not the history's: a promotion goes through with
a warning naming the missing right and leaves the history as it was; a rollback is refused before
anything changes.

uat is the environment rolled back: prod's policy (after: uat) would hold a rollback of prod back
until uat serves the digest (roll uat back first), which test_plan.py covers without the lab."""
import json

import pytest
from kubernetes import client as kclient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from tests.integration import promotion_lab as pl
from tests.integration.runs import task_result

SMALL = 64 * 1024
HISTORY = "segmented-registry-history-app"
LOGICAL = "registry.apps.lab.local"  # the consumers' one logical registry name


@pytest.fixture
def namespace(lab, unique):
    name = "rb-" + unique
    kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespace({"metadata": {"name": name}})
    return name


def served(lab, namespace, env="uat"):
    return lab.where(namespace)[env]["tags"].get(f"{namespace}/app:v1")


def history_configmap(lab, namespace):
    try:
        return kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).read_namespaced_config_map(HISTORY, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def ok(run):
    assert run.status == "successful", run.stdout_text[-3000:]
    return run


def test_a_rollback_puts_the_previous_digest_back_and_keeps_it_until_the_next_promotion(lab, namespace, run_playbook):
    survey = {"project": namespace, "image": "app:v1", "env": "uat"}
    a = lab.push(namespace, "app", "v1", 1, SMALL, seed=f"{namespace}/app:v1 A")["digest"]
    ok(run_playbook("playbooks/promote.yml", extravars=survey))
    assert served(lab, namespace) == a
    b = lab.push(namespace, "app", "v1", 1, SMALL, seed=f"{namespace}/app:v1 B")["digest"]
    assert b != a
    ok(run_playbook("playbooks/promote.yml", extravars=survey))  # the tag is approved already: the copy is the promotion
    assert served(lab, namespace) == b

    # a uat node pulls app:v1 by tag through the consumer configuration (its ImageTagMirrorSet): b
    for playbook in ("playbooks/credentials.yml", "playbooks/consumer_cluster.yml"):
        ok(run_playbook(playbook))
    by_tag = f"{LOGICAL}/{namespace}/app:v1"
    assert lab.pull("uat", by_tag)["digest"] == b

    preview = ok(run_playbook("playbooks/rollback.yml", extravars=survey, cmdline="--check --diff"))
    planned = task_result(preview, "Roll back app:v1 in uat")
    assert planned["changed"] and planned["diff"] == {"before": {"digest": b}, "after": {"digest": a}}
    assert [(c["tag"], c["digest"], c["pinned_from"]) for c in planned["reconcile"]["copies"]] == [("v1", a, b)]
    assert served(lab, namespace) == b, "check mode copied"

    done = task_result(ok(run_playbook("playbooks/rollback.yml", extravars=survey)), "Roll back app:v1 in uat")
    assert (done["changed"], done["digest_before"], done["digest_after"], done["rolled_back_from"]) == (True, b, a, b)
    assert served(lab, namespace) == a
    assert lab.pull("uat", by_tag)["digest"] == a  # what a uat node resolves the tag to
    again = task_result(ok(run_playbook("playbooks/rollback.yml", extravars=survey)), "Roll back app:v1 in uat")
    assert not again["changed"]

    # the hourly reconcile keeps the rolled-back digest: the pin holds while the source serves b
    kept = task_result(ok(run_playbook("playbooks/reconcile.yml", extravars={"project": namespace})),
                       "Reconcile the environment registries")
    assert not kept["changed"] and kept["summary"] == {"skipped": 1}
    assert served(lab, namespace) == a

    configmap = history_configmap(lab, namespace)
    assert configmap.metadata.labels == {"app.kubernetes.io/managed-by": "segmented.registry", "segmented.registry/history": "true"}
    entries = json.loads(configmap.data["v1.uat"])
    assert [(e["action"], e["digest_before"], e["digest_after"], e["result"]) for e in entries] == [
        ("rollback", b, a, "ok"), ("promote", a, b, "ok"), ("promote", None, a, "ok")]
    assert set(entries[0]) == {"time", "action", "environment", "tag", "digest_before", "digest_after", "by", "result", "message"}

    audit = ok(run_playbook("playbooks/audit.yml", extravars={"project": namespace, "select": "history[?environment=='uat'].action"}))
    result = task_result(audit, "Plan (check mode) the environment registries")
    assert result["query_results"]["selected"] == ["rollback", "promote", "promote"]
    assert [row["drift"] for row in result["audit"]] == [[]]  # the pinned digest is where it should be

    # the next promotion of the tag ends the pin
    c = lab.push(namespace, "app", "v1", 1, SMALL, seed=f"{namespace}/app:v1 C")["digest"]
    ok(run_playbook("playbooks/reconcile.yml", extravars={"project": namespace}))
    assert served(lab, namespace) == c
    assert json.loads(history_configmap(lab, namespace).data["v1.uat"])[0]["action"] == "promote"


def test_a_rollback_without_history_fails_cleanly_and_changes_nothing(lab, namespace, run_playbook):
    survey = {"project": namespace, "image": "app:v1", "env": "uat"}
    a = lab.push(namespace, "app", "v1", 1, SMALL, seed=f"{namespace}/app:v1 A")["digest"]
    # promoted with a history that keeps nothing: no ConfigMap is made
    ok(run_playbook("playbooks/promote.yml", extravars=dict(survey, segmented_registry_history_limit=0)))
    assert served(lab, namespace) == a and history_configmap(lab, namespace) is None
    streams = DynamicClient(lab.api_client(lab.layout.registry_cluster)).resources.get(
        api_version="image.openshift.io/v1", kind="ImageStream")
    stream_before = streams.get(name="app", namespace=namespace).to_dict()

    refused = run_playbook("playbooks/rollback.yml", extravars=survey)
    assert refused.status == "failed"
    result = task_result(refused, "Roll back app:v1 in uat")
    assert "no promotion is recorded" in result["msg"] and "nothing was changed" in result["msg"], result["msg"]
    assert not result.get("changed")
    assert served(lab, namespace) == a and history_configmap(lab, namespace) is None
    stream_after = streams.get(name="app", namespace=namespace).to_dict()
    assert stream_after["metadata"]["resourceVersion"] == stream_before["metadata"]["resourceVersion"]


@pytest.fixture
def without_history_rights(lab, namespace, unique):
    """A TokenRequest token of a service account with what the promotion guide ("Credentials") and
    the AWX guide give a promotion job's account on the registry cluster: get, list and patch on
    ImageStreams in ``namespace``, and create on the promoter's serviceaccounts/token; no right on
    ConfigMaps (not bound to segmented-registry:promotion-history-editor, no edit role). Its Roles,
    RoleBindings and service account are removed at the end."""
    api = lab.api_client(lab.layout.registry_cluster)
    core, rbac = kclient.CoreV1Api(api), kclient.RbacAuthorizationV1Api(api)
    account = "no-history-" + unique
    promoter_namespace, promoter = pl.PROMOTER.split("/")
    subject = [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    grants = {
        namespace: [{"apiGroups": ["image.openshift.io"], "resources": ["imagestreams"], "verbs": ["get", "list", "patch"]}],
        promoter_namespace: [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"], "resourceNames": [promoter]}],
    }
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    made = []
    try:
        for where, rules in grants.items():
            rbac.create_namespaced_role(where, {"metadata": {"name": account}, "rules": rules})
            made.append(where)
            rbac.create_namespaced_role_binding(where, {
                "metadata": {"name": account},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
                "subjects": subject})
        token = core.create_namespaced_service_account_token(account, namespace, {"spec": {"expirationSeconds": 3600}}).status.token
        yield token
    finally:
        for where in made:
            for delete in (rbac.delete_namespaced_role_binding, rbac.delete_namespaced_role):
                try:
                    delete(account, where)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
        core.delete_namespaced_service_account(account, namespace)


def test_an_account_without_the_history_s_rights_promotes_with_a_warning_and_cannot_roll_back(
        lab, namespace, run_playbook, inventory, without_history_rights):
    survey = {"project": namespace, "image": "app:v1", "env": "uat"}
    a = lab.push(namespace, "app", "v1", 1, SMALL, seed=f"{namespace}/app:v1 A")["digest"]
    ok(run_playbook("playbooks/promote.yml", extravars=survey))  # the lab's admin: the history holds the promotion of A
    before = history_configmap(lab, namespace)
    assert [e["digest_after"] for e in json.loads(before.data["v1.uat"])] == [a]
    b = lab.push(namespace, "app", "v1", 1, SMALL, seed=f"{namespace}/app:v1 B")["digest"]

    token = without_history_rights
    port = dict(lab.layout.clusters)[lab.layout.registry_cluster]

    def limited(hosts, group_vars):
        hosts[lab.layout.registry_cluster]["segmented_registry_k8s_auth"] = {
            "host": f"https://127.0.0.1:{port}", "api_key": token, "ca_cert": lab.ca.cert_path}

    as_limited = inventory(limited)
    promoted = ok(run_playbook("playbooks/promote.yml", inventory=as_limited, extravars=survey))
    result = task_result(promoted, "Promote: add uat")
    assert served(lab, namespace) == b and [c["digest"] for c in result["reconcile"]["copies"]] == [b]
    warnings = " ".join(" ".join(result.get("warnings") or []).split())
    for words in ("list on configmaps there (name it in registry_cluster_history_editors", f"namespace {namespace}",
                  "get, create and update on configmaps", "not in its history"):
        assert words in warnings, warnings
    assert result["reconcile"]["history_written"] == []
    after = history_configmap(lab, namespace)
    assert after.metadata.resource_version == before.metadata.resource_version and after.data == before.data

    streams = DynamicClient(lab.api_client(lab.layout.registry_cluster)).resources.get(
        api_version="image.openshift.io/v1", kind="ImageStream")
    stream_before = streams.get(name="app", namespace=namespace).to_dict()
    refused = run_playbook("playbooks/rollback.yml", inventory=as_limited, extravars=survey)
    assert refused.status == "failed"
    message = " ".join(task_result(refused, "Roll back app:v1 in uat")["msg"].split())
    assert "list on configmaps" in message and "a rollback needs it; nothing was changed" in message, message
    assert served(lab, namespace) == b
    assert history_configmap(lab, namespace).metadata.resource_version == before.metadata.resource_version
    assert streams.get(name="app", namespace=namespace).to_dict()["metadata"]["resourceVersion"] == stream_before["metadata"]["resourceVersion"]
    for run in (promoted, refused):
        assert token not in run.stdout_text
