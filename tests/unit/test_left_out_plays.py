"""site.yml's plays around a consumer cluster left out, run offline (ansible-playbook, local
connection, no cluster): the play that fails a left-out consumer by name (tasks/left_out.yml), a
stage gate (tasks/stage_gate.yml) and the last play that names every consumer left out, taken from
playbooks/site.yml as they are, around a stand-in validation and a stand-in stage."""

import json
import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
WHY = "uat: segmented_registry_k8s_auth: cannot reach the cluster at https://127.0.0.1:1 (credentials from host https://127.0.0.1:1): refused"
INVENTORY = {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                     "hosts": {"registry": {"segmented_registry_role": "registry"}, "test": {"segmented_registry_environment": "test"},
                               "uat": {"segmented_registry_environment": "uat"}, "prod": {"segmented_registry_environment": "prod"}}}}
# yaml.safe_dump writes the hosts sorted: the run's order is prod, registry, test, uat


def site_plays():
    with open(os.path.join(REPO, "playbooks", "site.yml")) as handle:
        plays = yaml.safe_load(handle)
    named = {play["name"]: play for play in plays}
    gate = next(play for play in plays if play["name"].startswith("Stop unless stage registry cluster"))
    return named["Leave out the consumer clusters that do not answer"], gate, named["Name the consumer clusters this run left out"]


@pytest.fixture
def site_around(tmp_path, collections_path):
    """site_around(failing, left_out) -> the exit code and {(host, task): (status, msg)} of: a validation
    that leaves ``left_out`` out ({cluster: why}; default uat), site.yml's left-out play, a stage that fails on the hosts ``failing``, site.yml's
    gate after it, and its last play."""
    os.symlink(os.path.join(REPO, "playbooks", "tasks"), tmp_path / "tasks")
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(INVENTORY))

    def run(failing, left_out=None, limit=None):
        leave_out_play, gate, report = site_plays()
        validation_result = {"left_out": {"uat": WHY} if left_out is None else left_out}
        validation = {"name": "Validation (stand-in)", "hosts": "localhost", "gather_facts": False,
                      "tasks": [{"name": "Validated", "ansible.builtin.set_fact": {"segmented_registry_validation": validation_result}}]}
        stage = {"name": "A stage (stand-in)", "hosts": "all", "gather_facts": False,
                 "tasks": [{"name": "The stage", "ansible.builtin.fail": {"msg": "stage failed"}, "when": "inventory_hostname in " + json.dumps(failing)}]}
        (tmp_path / "site.yml").write_text(yaml.safe_dump([validation, leave_out_play, stage, gate, report], sort_keys=False))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_STDOUT_CALLBACK="json",
                   ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_FORKS="5")
        env.pop("ANSIBLE_CONFIG", None)
        argv = [os.path.join(BIN, "ansible-playbook"), "-i", "hosts.yml", "site.yml"] + (["--limit", limit] if limit else [])
        process = subprocess.run(argv, cwd=str(tmp_path), env=env,
                                 capture_output=True, text=True, check=False, timeout=300)
        output = process.stdout
        try:
            report = json.loads(output[output.index("{"):])
        except ValueError:
            raise AssertionError("no JSON output:\n" + output + process.stderr)
        results = {}
        for play in report["plays"]:
            for task in play["tasks"]:
                for host, result in task["hosts"].items():
                    status = "failed" if result.get("failed") else "skipped" if result.get("skipped") else "ok"
                    results[(host, task["task"]["name"])] = (status, result.get("msg"))
        return process.returncode, results

    return run


def failed(results):
    """{(host, task): msg} of the failed tasks; the last play's report under host "once" (run_once picks the host)."""
    return {("once" if task == REPORT else host, task): msg for (host, task), (status, msg) in results.items() if status == "failed"}


REPORT = "Fail, naming every consumer cluster left out"


def test_a_left_out_consumer_is_failed_by_name_the_others_go_on_and_the_last_play_names_it(site_around):
    returncode, results = site_around(failing=["test"])
    assert returncode != 0
    assert failed(results) == {
        ("uat", "Leave this cluster out of the run"): f"uat is left out of this run and nothing of it was changed: {WHY}",
        ("test", "The stage"): "stage failed",
        ("once", REPORT):
            f"site.yml finished every other cluster but left out test (it failed the task shown above), uat ({WHY}). "
            "Run site.yml again once they answer: every stage is safe to run again, and the run converges.",
    }, failed(results)
    # the gate let the run go on: a consumer failed the stage, not the registry cluster's host or localhost
    assert [status for (_host, task), (status, _msg) in results.items() if task.startswith("Stop here if this stage failed")] == ["skipped"]
    assert results[("prod", "The stage")][0] == "skipped" and ("uat", "The stage") not in results


def test_the_gate_stops_the_run_when_the_registry_cluster_fails_a_stage_naming_it_alone(site_around):
    returncode, results = site_around(failing=["registry"])
    assert returncode != 0
    gate = failed(results).pop(next(key for key in failed(results) if key[1].startswith("Stop here if this stage failed")))
    assert gate.startswith("site.yml stops: stage registry cluster (registry_cluster.yml) failed on registry, so credentials, "
                           "consumer clusters and reconcile did not run."), gate
    assert not any(task == REPORT for _host, task in results), results


def test_nothing_left_out_nothing_failed_the_run_passes(site_around):
    returncode, results = site_around(failing=[], left_out={})
    assert returncode == 0, failed(results)
    assert failed(results) == {}
    assert all(results[(host, "The stage")][0] == "skipped" for host in INVENTORY["all"]["hosts"])


def test_a_run_limited_to_clusters_without_localhost_leaves_nothing_out(site_around):
    """--limit (an AWX job template's limit) without localhost: validation never runs, so nothing is
    left out, and no play stumbles on localhost's missing result."""
    returncode, results = site_around(failing=[], limit="all")
    assert returncode == 0, results
    assert failed(results) == {}
    assert results[("uat", "Leave this cluster out of the run")][0] == "skipped", results
