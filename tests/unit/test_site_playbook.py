"""site.yml's order, offline: with credentials_create_missing the build namespaces are made on the
registry cluster before the registry-cluster stage (which binds the promotion job's source reader
only in source namespaces that exist), so that one site run converges.

Runs the real ansible-playbook on the example inventory, whose clusters cannot be reached from
here: the first step that reaches a cluster fails, and which step that is, in which play, says
the order. That the namespaces are made and bound in the same run is tested on the lab
(tests/integration/test_site.py).
"""

import json
import os
import subprocess
import sys

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
EARLY_PLAY = "Make the missing build namespaces on the registry cluster (credentials_create_missing)"
EARLY_TASK = "The build namespaces the registry cluster stage binds the promotion job in"
REGISTRY_PLAY = "Deploy the environment registries"
REACH = "segmented.registry.credentials : Check the inventory and reach the clusters before anything is written"
GATE = "Stop here if this stage failed: registry cluster (registry_cluster.yml)"


def site(collections_path, tmp_path, create_missing):
    """(play, task, host, outcome) of every task result of an offline site.yml run, in order."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0")
    env.pop("ANSIBLE_CONFIG", None)
    for name in list(env):
        if name.startswith("K8S_AUTH_"):
            env.pop(name)
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(REPO, "inventories", "example"),
            "segmented.registry.site", "-e", "segmented_registry_check_reachable=false",
            "-e", "vault_prod_cluster_token=x", "-e", json.dumps({"credentials_create_missing": create_missing})]
    process = subprocess.run(argv, env=env, cwd=str(tmp_path), capture_output=True, check=False, text=True, timeout=180)
    output = process.stdout
    try:
        report = json.loads(output[output.index("{"):])
    except ValueError:
        raise AssertionError("no JSON output:\n" + output + process.stderr)
    rows = []
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                outcome = "failed" if result.get("failed") else "skipped" if result.get("skipped") else "ok"
                rows.append((play["play"]["name"], task["task"]["name"], host, outcome))
    return process, rows


def test_build_namespaces_come_before_the_registry_cluster_stage(collections_path, tmp_path):
    """With credentials_create_missing, the credentials role's build_namespaces runs on the registry
    cluster's host, right after validation and before any task of the registry-cluster role; it
    reaches the clusters first, and its failure is reported by the registry-cluster stage's gate,
    which stops the site."""
    process, rows = site(collections_path, tmp_path, True)
    assert process.returncode != 0
    plays = [play for play, _task, _host, _outcome in rows]
    early = [row for row in rows if row[0] == EARLY_PLAY]
    assert [(task, host, outcome) for _play, task, host, outcome in early if outcome != "skipped"] == [
        (EARLY_TASK, "registry-cluster", "ok"),
        ("segmented.registry.credentials : Validating arguments against arg spec 'build_namespaces' - "
         "The build namespaces on the registry cluster, made where they are missing", "registry-cluster", "ok"),
        ("segmented.registry.credentials : Take credentials_clusters as a list (an AWX survey passes a comma-separated string)",
         "registry-cluster", "ok"),
        (REACH, "registry-cluster", "failed"),
    ], early
    assert plays.index(EARLY_PLAY) < plays.index(REGISTRY_PLAY)
    registry_role = [row for row in rows if row[1].startswith("segmented.registry.registry_cluster :")]
    assert registry_role == [], registry_role
    assert (GATE, "failed") in [(task, outcome) for _play, task, _host, outcome in rows], rows


def test_without_create_missing_the_registry_cluster_stage_comes_first(collections_path, tmp_path):
    """Off (the default, and on OpenShift where the teams' projects exist; here the string an AWX extra
    variable may pass, which is true as a bare string): nothing of the credentials
    role runs before the registry-cluster stage; that stage is the first to reach a cluster."""
    process, rows = site(collections_path, tmp_path, "false")
    assert process.returncode != 0
    early = [(task, host, outcome) for play, task, host, outcome in rows if play == EARLY_PLAY]
    assert {outcome for _task, _host, outcome in early} == {"skipped"}, early
    assert {task for task, _host, _outcome in early} == {EARLY_TASK}, early
    assert not any(task.startswith("segmented.registry.credentials :") for _play, task, _host, _outcome in rows), rows
    assert any(task.startswith("segmented.registry.registry_cluster :") and outcome == "failed"
               for _play, task, _host, outcome in rows), rows
