"""site.yml as AWX runs it (ansible-runner): it stops at the first stage that fails on the registry
cluster's host, says which stage and which hosts, and runs nothing after it; a consumer cluster that
does not answer is left out by name, and every other cluster is finished."""

from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

import pytest

from tests.integration.runs import task_result

STAGE_CHECK = "Check the inventory before anything is created"  # roles/registry_cluster: validate_inventory
GATE = "Stop here if this stage failed: registry cluster (registry_cluster.yml)"
LATER_PLAYS = ("Registry credentials", "Configure the consumer clusters", "Reconcile the environment registries")


def failed(run):
    """(host, task) of every task that failed in the run."""
    return {(event["event_data"].get("host"), event["event_data"].get("task")) for event in run.events
            if event.get("event") == "runner_on_failed"}


def test_a_failed_stage_stops_the_site_and_is_named(run_playbook, inventory):
    """The registry cluster stage fails on the registry host (a token server route host that is
    no DNS name: the role refuses it before it writes anything). Every host passed validation;
    the gate after the stage fails naming the stage and the host, and no task of a later stage
    runs anywhere: no credentials, no consumer cluster, no reconcile on localhost."""
    def edit(hosts, group_vars):
        hosts["registry"]["registry_cluster_token_server_route_host"] = "Not A Host Name"

    run = run_playbook("playbooks/site.yml", inventory=inventory(edit))
    assert run.status == "failed", run.stdout_text[-3000:]
    # the stage failed on registry; the gate (run once, on one of the others) stopped the rest
    assert ("registry", STAGE_CHECK) in failed(run), failed(run)
    assert {task for _host, task in failed(run)} == {STAGE_CHECK, GATE}, failed(run)
    stage = task_result(run, STAGE_CHECK)
    assert 'registry: registry_cluster_token_server_route_host: "Not A Host Name" is not a lowercase DNS name' in stage["msg"], stage["msg"]
    gate = task_result(run, GATE)
    assert gate["msg"].startswith("site.yml stops: stage registry cluster (registry_cluster.yml) failed on registry, "
                                  "so credentials, consumer clusters and reconcile did not run."), gate["msg"]
    ran = [(event["event_data"].get("play", ""), event["event_data"].get("host"), event["event_data"].get("task"))
           for event in run.events if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_skipped",
                                                             "runner_on_unreachable", "runner_item_on_ok")]
    later = [item for item in ran if item[0].startswith(LATER_PLAYS)]
    assert later == [], later
    assert not any(host == "localhost" and play.startswith("Reconcile") for play, host, _task in ran), ran


LEFT_OUT = "Leave this cluster out of the run"  # tasks/left_out.yml
REPORT = "Fail, naming every consumer cluster left out"  # site.yml's last play
CONFIGURE = "Configure the consumer clusters"  # consumer_cluster.yml's play
GLOBAL = ("openshift-config", "segmented-registry-pull")  # credentials_global_pull_secret's default
GENERATION = "segmented.registry/generation"  # namespace/name of the generation Secret on the registry cluster
DOWN = "https://127.0.0.1:1"


def generations(lab, consumers):
    """{consumer: the generation its global pull secret holds, or None}."""
    found = {}
    for cluster in consumers:
        try:
            secret = kclient.CoreV1Api(lab.api_client(cluster)).read_namespaced_secret(GLOBAL[1], GLOBAL[0])
        except ApiException as exc:
            if exc.status != 404:
                raise
            found[cluster] = None
        else:
            found[cluster] = (secret.metadata.annotations or {}).get(GENERATION)
    return found


def secret_exists(lab, cluster, namespaced):
    namespace, name = namespaced.split("/")
    try:
        kclient.CoreV1Api(lab.api_client(cluster)).read_namespaced_secret(name, namespace)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def ran_ok(run, play_prefix, host):
    """Whether a task of a play whose name starts with ``play_prefix`` ran ok on ``host``."""
    return any(event.get("event") in ("runner_on_ok", "runner_item_on_ok")
               and (event["event_data"].get("play") or "").startswith(play_prefix) and event["event_data"].get("host") == host
               for event in run.events)


@pytest.mark.fleet  # the fleet tier (scripts/test-fleet.sh): every consumer of the lab, 16; about 4 min on the lab's three
def test_an_unreachable_consumer_is_named_the_others_finished_and_a_rerun_converges(lab, run_playbook, inventory):
    """uat's API server address points where nothing listens. site.yml with credentials_rotate, one
    fork per cluster: validation leaves uat out, a play fails it by name, and every other cluster
    is finished - credentials rotated, nodes rolled out, old generations revoked, consumer
    configuration, the reconcile on localhost. The last play fails naming uat, so the run fails.
    Nothing of uat was changed: its global pull secret keeps its generation, which is still on the
    registry cluster (not revoked). A rerun with uat back converges."""
    consumers = [name for name, _port in lab.layout.clusters if name != lab.layout.registry_cluster]
    assert "uat" in consumers, consumers
    forks = {"ANSIBLE_FORKS": str(len(lab.layout.clusters) + 1)}
    before = generations(lab, consumers)
    if None in before.values():  # a lab site.yml never ran on: give every consumer its credential first
        first = run_playbook("playbooks/site.yml", envvars=forks)
        assert first.status == "successful", first.stdout_text[-4000:]
        before = generations(lab, consumers)

    def unreachable(hosts, _group_vars):
        hosts["uat"]["segmented_registry_k8s_auth"]["host"] = DOWN

    run = run_playbook("playbooks/site.yml", inventory=inventory(unreachable), extravars={"credentials_rotate": True}, envvars=forks)
    assert run.status == "failed", run.stdout_text[-3000:]
    assert ("uat", LEFT_OUT) in failed(run), failed(run)
    assert {task for _host, task in failed(run)} == {LEFT_OUT, REPORT}, failed(run)
    assert len(failed(run)) == 2, failed(run)
    message = task_result(run, LEFT_OUT)["msg"]
    assert message.startswith("uat is left out of this run and nothing of it was changed: "
                              f"uat: segmented_registry_k8s_auth: cannot reach the cluster at {DOWN} "), message
    report = task_result(run, REPORT)["msg"]
    assert report.startswith(f"site.yml finished every other cluster but left out uat (uat: segmented_registry_k8s_auth: "
                             f"cannot reach the cluster at {DOWN} "), report
    others = [cluster for cluster in consumers if cluster != "uat"]
    for cluster in others:
        assert ran_ok(run, CONFIGURE, cluster), f"nothing of {CONFIGURE} ran on {cluster}"
    assert not any((event["event_data"].get("host") == "uat") for event in run.events
                   if event.get("event") in ("runner_on_ok", "runner_item_on_ok", "runner_on_skipped")
                   and not (event["event_data"].get("task") or "").startswith(("Keep why this cluster", LEFT_OUT)))
    assert ran_ok(run, "Reconcile the environment registries", "localhost"), "the reconcile did not run on localhost"

    after = generations(lab, consumers)
    for cluster in others:
        assert after[cluster] != before[cluster], (cluster, before[cluster], after[cluster])
    assert after["uat"] == before["uat"], (before["uat"], after["uat"])
    # uat's generation was not revoked: its nodes keep a valid credential while it is left out
    assert secret_exists(lab, lab.layout.registry_cluster, before["uat"]), before["uat"]

    rerun = run_playbook("playbooks/site.yml", envvars=forks)
    assert rerun.status == "successful", rerun.stdout_text[-4000:]
    assert generations(lab, ["uat"])["uat"], "uat has no pull credential after the rerun"
