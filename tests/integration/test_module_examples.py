"""Every module's EXAMPLES run as written against the lab inventory (issue 27), so they cannot rot.

One playbook per module (its play named after it; the playbooks run side by side), its EXAMPLES as
the tasks: each task once, in check mode unless its module is read-only (documented with the
READ_ONLY attributes fragment).
What a platform team sets once for the whole job comes from the inventory through
module_defaults: the registry cluster's credentials (segmented_registry_k8s_auth of host
``registry``) for the collection's action group, and the CA of the integrated registry
(segmented_registry_reconcile_integrated_ca_cert) for promote and reconcile. The CA file a task
looks up (``registry-ca.crt``) sits next to the playbook. The names the examples use exist first:
namespaces ``myproject`` and ``payments``, the tag ``myproject/app:v1.2.3``, and on prod the
pull Secret the credentials role writes and the namespace ``myproject``; for the rollback example, ``myproject/app:v1.2.3``
approved for uat with two promotions there in its history, the first of a digest still in the
integrated registry. The vaulted variables an example names are extra variables with a placeholder
value.

Every task runs even when an earlier one failed (ignore_errors), so one run names every broken
example: its module and its task."""
import ast
import base64
import glob
import json
import os
import shutil

import pytest
import yaml
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

from tests.integration.conftest import REPO
from tests.integration.runs import at_once, task_result

# the dev tier's one lab test: every module, once
pytestmark = pytest.mark.dev

MODULES = sorted(glob.glob(os.path.join(REPO, "plugins", "modules", "*.py")))
COLLECTION = "segmented.registry."
READ_ONLY_FRAGMENT = "segmented.registry.attributes.READ_ONLY"
# the module that reads the inventory runs where its EXAMPLES say: in a play on localhost
ON_LOCALHOST = {"validate_inventory"}
PULL_SECRET = ("openshift-config", "segmented-registry-pull")
# the vaulted variables the examples name, as a placeholder (the examples that use them run offline)
EXTRA_VARS = {"vault_prod_east_token": "placeholder"}


def module_blocks(path):
    """(EXAMPLES as a list of tasks, DOCUMENTATION as a dict) of a module file, read without importing it."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    blocks = {node.targets[0].id: node.value.value for node in tree.body
              if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
              and node.targets[0].id in ("EXAMPLES", "DOCUMENTATION")}
    return yaml.safe_load(blocks["EXAMPLES"]), yaml.safe_load(blocks["DOCUMENTATION"])


def example_play(path):
    name = os.path.basename(path)[:-3]
    tasks, doc = module_blocks(path)
    assert isinstance(tasks, list) and tasks, f"{name}: EXAMPLES is not a list of tasks"
    read_only = READ_ONLY_FRAGMENT in (doc.get("extends_documentation_fragment") or [])
    for task in tasks:
        ours = any(key.startswith(COLLECTION) for key in task)
        if ours and not read_only:
            task.setdefault("check_mode", True)
        task["ignore_errors"] = True
    registry = "hostvars['registry']"
    return {
        "name": name,
        "hosts": "localhost" if name in ON_LOCALHOST else "registry",
        "gather_facts": False,
        "module_defaults": {
            "group/segmented.registry.cluster": {
                "kubeconfig": "{{ %s.segmented_registry_k8s_auth.kubeconfig }}" % registry,
                "context": "{{ %s.segmented_registry_k8s_auth.context }}" % registry,
            },
            **{COLLECTION + module: {"integrated_ca_cert": "{{ %s.segmented_registry_reconcile_integrated_ca_cert }}"
                                     % registry} for module in ("promote", "reconcile", "rollback")},
        },
        "tasks": tasks,
    }


def ensure_namespace(core, name):
    try:
        core.create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise


def wait_for_terminated(core, name, eventually):
    """A namespace another test is deleting is gone first (none can be made in it meanwhile)."""
    def gone():
        try:
            phase = core.read_namespace(name).status.phase
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        assert phase != "Terminating", f"namespace {name} still terminating"
    eventually(gone, timeout=60)


ROLLBACK_HISTORY = ("myproject", "segmented-registry-history-app", "v1.2.3.uat")


def rollback_example(lab, run_playbook):
    """``myproject/app:v1.2.3`` approved for uat, and a history there of two promotions (an earlier
    digest, pushed as tag ``rollback-example``, then the tag's own): what the rollback example
    needs to plan. Returns how to put things back as they were."""
    api = lab.api_client(lab.layout.registry_cluster)
    core = kclient.CoreV1Api(api)
    stream = kclient.CustomObjectsApi(api).get_namespaced_custom_object("image.openshift.io", "v1", "myproject", "imagestreams", "app")
    now = [tag for tag in stream["status"]["tags"] if tag["tag"] == "v1.2.3"][0]["items"][0]["image"]
    earlier = lab.push("myproject", "app", "rollback-example", 1, 4096, seed="module examples, rollback")["digest"]
    auth = {"kubeconfig": lab.kubeconfig, "context": lab.layout.registry_cluster}
    edit = run_playbook("tests/integration/playbooks/tag_environments.yml", extravars={
        "te_args": {"namespace": "myproject", "name": "app:v1.2.3", "add": ["uat"]}, "te_auth": auth})
    assert edit.status == "successful", edit.stdout_text[-3000:]
    approved_before = "uat" in task_result(edit, "Edit the environment list")["environments_before"]
    namespace, name, key = ROLLBACK_HISTORY
    entries = [{"time": time, "action": "promote", "environment": "uat", "tag": "v1.2.3", "digest_before": before,
                "digest_after": after, "by": "module examples", "result": "ok", "message": ""}
               for time, before, after in (("2026-01-02T00:00:00Z", earlier, now), ("2026-01-01T00:00:00Z", None, earlier))]
    try:
        found = core.read_namespaced_config_map(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
        found = None
    if found is None:
        core.create_namespaced_config_map(namespace, {
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "segmented.registry", "segmented.registry/history": "true"},
                         "annotations": {"segmented.registry/image-stream": "app"}},
            "data": {key: json.dumps(entries)}})
    else:
        core.patch_namespaced_config_map(name, namespace, {"data": {key: json.dumps(entries)}})
    kept = (found.data or {}).get(key) if found is not None else None

    def restore():
        if found is None:
            core.delete_namespaced_config_map(name, namespace)
        else:
            core.patch_namespaced_config_map(name, namespace, {"data": {key: kept}})
        if not approved_before:
            back = run_playbook("tests/integration/playbooks/tag_environments.yml", extravars={
                "te_args": {"namespace": "myproject", "name": "app:v1.2.3", "remove": ["uat"]}, "te_auth": auth})
            assert back.status == "successful", back.stdout_text[-3000:]
    return restore


@pytest.fixture
def example_names(lab, eventually, run_playbook):
    """The names the examples use, on the lab: made when missing (left as found afterwards)."""
    api = lab.api_client(lab.layout.registry_cluster)
    core = kclient.CoreV1Api(api)
    for name in ("myproject", "payments"):
        wait_for_terminated(core, name, eventually)
    ensure_namespace(core, "payments")
    streams = kclient.CustomObjectsApi(api)
    try:
        stream = streams.get_namespaced_custom_object("image.openshift.io", "v1", "myproject", "imagestreams", "app")
    except ApiException as exc:
        if exc.status != 404:
            raise
        stream = {}
    if not any(tag.get("tag") == "v1.2.3" for tag in (stream.get("status") or {}).get("tags") or []):
        lab.push("myproject", "app", "v1.2.3", 1, 4096, seed="module examples")
    prod = kclient.CoreV1Api(lab.api_client("prod"))
    # the image_streams example writes ImageStream tags into myproject on prod
    try:
        prod.read_namespace("myproject")
        made_namespace = False
    except ApiException as exc:
        if exc.status != 404:
            raise
        ensure_namespace(prod, "myproject")
        made_namespace = True
    made = False
    try:
        prod.read_namespaced_secret(PULL_SECRET[1], PULL_SECRET[0])
    except ApiException as exc:
        if exc.status != 404:
            raise
        # what the credentials role writes, with a placeholder entry (no credential of the lab)
        entry = base64.b64encode(b"example:placeholder").decode()
        config = {"auths": {"prod-registry.apps.registry.lab.local": {"auth": entry}}}
        prod.create_namespaced_secret(PULL_SECRET[0], {
            "metadata": {"name": PULL_SECRET[1]}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}})
        made = True
    restore_rollback_example = rollback_example(lab, run_playbook)
    yield
    restore_rollback_example()
    if made:
        prod.delete_namespaced_secret(PULL_SECRET[1], PULL_SECRET[0])
    if made_namespace:
        prod.delete_namespace("myproject")


def failures(run):
    """'<module>: <task>: <message>' of every failed task of the run."""
    rows = []
    for event in run.events:
        data = event.get("event_data") or {}
        if event.get("event") in ("runner_on_failed", "runner_on_unreachable"):
            result = data.get("res") or {}
            rows.append(f"{data.get('play')}: {data.get('task')}: {str(result.get('msg'))[:400]}")
    return rows


def test_every_module_example_runs_on_the_lab(lab, run_playbook, example_names, tmp_path):
    (tmp_path / "files").mkdir()
    shutil.copyfile(lab.ca.cert_path, tmp_path / "files" / "registry-ca.crt")
    playbooks = []
    for path in MODULES:
        playbook = tmp_path / os.path.basename(path).replace(".py", ".yml")
        playbook.write_text(yaml.safe_dump([example_play(path)], sort_keys=False))
        playbooks.append(str(playbook))
    # one playbook per module, side by side
    runs = at_once(*(lambda playbook=playbook: run_playbook(playbook, extravars=EXTRA_VARS) for playbook in playbooks))
    failed = [row for run in runs for row in failures(run)]
    assert not failed, "module EXAMPLES that fail on the lab:\n" + "\n".join(failed)
    for playbook, run in zip(playbooks, runs):
        assert run.status == "successful", f"{playbook}: {run.stdout_text[-3000:]}"
        assert any(event.get("event") == "runner_on_ok" for event in run.events), f"{playbook}: no task ran"
