"""site.yml as AWX runs it (ansible-runner): it stops at the first stage that fails on any host,
says which stage and which hosts, and runs nothing after it."""

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
