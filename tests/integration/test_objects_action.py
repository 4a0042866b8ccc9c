"""segmented.registry.objects (plugins/action/objects.py) run by the real ansible-playbook (through
ansible-runner, as AWX runs it) against the real API server of the lab's first consumer cluster, in
a namespace of its own (obj-<unique>, removed at the end): these tests touch nothing else there, so
they run beside the lab lane (tests/conftest.py).

What they prove: module_defaults (``group/kubernetes.core.k8s``, ``kubernetes.core.k8s`` and
``group/segmented.registry.cluster``) reach the kubernetes.core.k8s run the action makes, under the
newest and under the oldest ansible-core the collection supports (they apply module_defaults
differently), and the task's own options win over them; under ``--diff`` the default callback prints
each change under ``--- before: Kind/namespace/name`` / ``+++ after: ...``, an object created or
removed named only, and a Secret's data nowhere (neither as given nor base64-encoded, neither in the
output nor in any event of the run: results, diffs, the definition echoed); check mode writes nothing; ``no_log`` hides the result
and the diff; a relative kubeconfig path is found where kubernetes.core.k8s's own action plugin
finds it (files/ next to the playbook).

Runs of ansible-playbook are what these tests cost: one playbook holds every claim, a play each
(their tasks ``ignore_errors``, so a claim that fails hides none of the others), run once under the
newest ansible-core, and once, its module_defaults plays alone (tag ``module_defaults``), under the
oldest, each run in a namespace of its own. What the cluster holds afterwards is read back with the
kubernetes client.
"""
import base64
import json
import os
import re
import shlex
import shutil
import sysconfig
import uuid

import pytest
import yaml
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

from tests.integration.conftest import REPO
from tests.integration.promotion_lab import remove_namespace
from tests.integration.runs import task_result

NEWEST, OLDEST = "ansible-core", "oldest-ansible-core"
# the oldest ansible-core the collection supports (scripts/setup.sh; tests/integration/test_oldest_ansible.py),
# which finds kubernetes.core in .venv's ansible package
OLDEST_BIN = os.path.join(REPO, ".venv-oldest", "bin")
OLDEST_COLLECTIONS = os.pathsep.join([os.path.join(REPO, ".venv", "collections"), sysconfig.get_paths()["purelib"]])
DEFAULTS = {"group/kubernetes.core.k8s": "from-k8s-group", "kubernetes.core.k8s": "from-k8s",
            "group/segmented.registry.cluster": "from-cluster-group"}  # module_defaults key: the ConfigMap it makes
SECRET_VALUE = "s3cret-objects-value-91c4"
NO_LOG_VALUE = "n0-log-objects-value-7b2e"
LABELS = {"segmented.registry/test": "objects"}
# the lines of a diff that changed LEVEL from info to debug, as JSON or as YAML (ansible.cfg's callback_result_format)
LEVEL_CHANGED = re.compile(r'^- +"?LEVEL"?: "?info"?,?\n\+ +"?LEVEL"?: "?debug"?,?\n', re.M)


def encoded(text):
    return base64.b64encode(text.encode()).decode()


def cluster_of(lab):
    """The cluster these tests write on: the lab's first consumer cluster."""
    return sorted(lab.layout.consumers)[0]


def config_map(name, namespace, **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def secret(name, namespace):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "type": "Opaque",
            "stringData": {"token": SECRET_VALUE}}


def the_namespace(namespace):
    """The test's namespace as the fixture made it: unchanged when applied."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": LABELS}}


def named(title, created=True):
    """The diff entry of an object created (or removed): its name alone."""
    line = title + "\n"
    return {"before_header": title, "after_header": title, "before": "" if created else line, "after": line if created else ""}


def playbook(namespace, auth, nowhere):
    """Every claim, a play each. ``auth``: the kubeconfig and context of the first consumer cluster;
    ``nowhere``: a kubeconfig that does not exist and a context that no kubeconfig has."""
    def play(name, module_defaults, *tasks, tags=()):
        return {"name": name, "hosts": "localhost", "gather_facts": False, "module_defaults": module_defaults,
                "tags": list(tags), "tasks": list(tasks)}

    def task(name, args, **keywords):
        return dict({"name": name, "segmented.registry.objects": args, "ignore_errors": True}, **keywords)

    ns = namespace
    gone = yaml.safe_dump_all([secret("applied", ns), config_map("gone", ns)])
    real = [config_map("levels", ns, LEVEL="debug"), secret("token", ns), the_namespace(ns)]
    return [
        # module_defaults alone say where the cluster is: the task names none
        *[play(f"module_defaults {key}", {key: auth}, task(f"defaults of {key}", {"definition": [config_map(made, ns, by=key)]}),
               tags=["module_defaults"]) for key, made in DEFAULTS.items()],
        play("the task's own options", dict.fromkeys(DEFAULTS, nowhere),
             task("own options win", dict(auth, definition=[config_map("own-options", ns, by="task")])), tags=["module_defaults"]),
        play("diff", {"group/segmented.registry.cluster": auth},
             task("check mode: settings and planned",
                  {"definition": [config_map("settings", ns, LEVEL="debug"), secret("planned", ns), the_namespace(ns)]},
                  check_mode=True),
             task("for real: levels and token", {"definition": real}),
             task("again: levels and token", {"definition": real})),
        play("created and removed", {"group/kubernetes.core.k8s": auth},
             task("apply creates", {"definition": [secret("applied", ns), config_map("fresh", ns, by="apply")], "apply": True}),
             # a YAML string this time, templated (kubernetes.core.k8s and the action each read it)
             task("absent removes", {"definition": "{{ gone }}", "state": "absent"}, vars={"gone": gone})),
        play("no_log", {"group/kubernetes.core.k8s": auth},
             task("no_log hides", {"definition": [config_map("hidden", ns, LEVEL=NO_LOG_VALUE)]}, no_log=True)),
        play("a relative kubeconfig", {"group/segmented.registry.cluster": dict(auth, kubeconfig="lab.kubeconfig")},
             task("kubeconfig from files", {"definition": [config_map("found", ns, by="files/lab.kubeconfig")]})),
    ]


@pytest.fixture(scope="module")
def core(lab):
    return kclient.CoreV1Api(lab.api_client(cluster_of(lab)))


@pytest.fixture(scope="module")
def runs(lab, core, run_playbook, tmp_path_factory):
    """``runs(version)`` -> ``(namespace, run)``: the playbook's run under that ansible-core (NEWEST:
    every play; OLDEST: the module_defaults plays), once per module, with ``--diff``, in a fresh
    namespace obj-<unique> holding the ConfigMaps ``settings`` and ``levels`` (LEVEL=info); every
    namespace made is removed at the end. No kubeconfig but the ones the playbook names: no
    K8S_AUTH_* variable, KUBECONFIG a file that does not exist (kubernetes.core.k8s falls back on it)."""
    done, made = {}, []

    def run(version):
        if version in done:
            return done[version]
        namespace = "obj-" + uuid.uuid4().hex[:8]
        core.create_namespace({"metadata": {"name": namespace, "labels": LABELS}})
        made.append(namespace)
        for name in ("settings", "levels"):
            core.create_namespaced_config_map(namespace, config_map(name, namespace, LEVEL="info"))
        folder = tmp_path_factory.mktemp("objects")
        (folder / "files").mkdir()
        shutil.copy(lab.kubeconfig, folder / "files" / "lab.kubeconfig")
        auth = {"kubeconfig": lab.kubeconfig, "context": cluster_of(lab)}
        nowhere = {"kubeconfig": str(folder / "no-such-kubeconfig"), "context": "nowhere"}
        path = folder / "objects.yml"
        path.write_text(yaml.safe_dump(playbook(namespace, auth, nowhere), sort_keys=False))
        inventory = folder / "hosts.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}))
        envvars = {"KUBECONFIG": nowhere["kubeconfig"], "ANSIBLE_NOCOLOR": "1"}
        with pytest.MonkeyPatch.context() as patch:
            for name in list(os.environ):
                if name.startswith("K8S_AUTH_"):
                    patch.delenv(name)
            if version == NEWEST:
                result = run_playbook(str(path), inventory=str(inventory), cmdline="--diff", envvars=envvars)
            else:  # ansible-runner runs a binary as given: the playbook goes on its command line
                if not os.access(os.path.join(OLDEST_BIN, "ansible-playbook"), os.X_OK):
                    pytest.fail(".venv-oldest is missing: run scripts/setup.sh")
                result = run_playbook(str(path), inventory=str(inventory), binary=os.path.join(OLDEST_BIN, "ansible-playbook"),
                                      cmdline="--diff --tags module_defaults " + shlex.quote(str(path)),
                                      envvars=dict(envvars, ANSIBLE_COLLECTIONS_PATH=OLDEST_COLLECTIONS))
        assert result.status == "successful", result.stdout_text[-4000:]
        done[version] = namespace, result
        return done[version]

    yield run
    for namespace in made:
        remove_namespace(core.api_client, namespace)


def succeeded(run, task):
    result = task_result(run, task)
    assert not result.get("failed"), (task, result, run.stdout_text[-4000:])
    return result


def section(stdout, task):
    """What the default callback printed for ``task``: from its ``TASK [...]`` line to the next task or play."""
    found = re.search(r"^TASK \[" + re.escape(task) + r"\].*?(?=^TASK \[|^PLAY |\Z)", stdout, re.M | re.S)
    assert found, f"no task {task} in:\n{stdout[-4000:]}"
    return found.group(0)


def data(core, namespace, name, kind="config_map"):
    """An object's data as the cluster holds it, None when it does not exist."""
    try:
        return getattr(core, f"read_namespaced_{kind}")(name, namespace).data
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def diffs_in_events(run):
    """Every diff the run's events carry: the callbacks' (runner_on_file_diff) and the task results'."""
    found = []
    for event in run.events:
        event_data = event.get("event_data") or {}
        if "diff" in event_data:
            found.append(event_data["diff"])
        if isinstance(event_data.get("res"), dict) and "diff" in event_data["res"]:
            found.append(event_data["res"]["diff"])
    return found


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
@pytest.mark.parametrize("key", list(DEFAULTS))
def test_module_defaults_reach_the_kubernetes_core_k8s_run(runs, core, version, key):
    """The kubeconfig and context come from module_defaults alone, for kubernetes.core.k8s (its group, or
    itself) or for this collection's action group: the ConfigMap is made on the first consumer cluster."""
    namespace, run = runs(version)
    result = succeeded(run, f"defaults of {key}")
    assert result["changed"] is True
    assert result["diff"] == [named(f"ConfigMap/{namespace}/{DEFAULTS[key]}")]
    assert data(core, namespace, DEFAULTS[key]) == {"by": key}


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_the_tasks_own_options_win_over_module_defaults(runs, core, version):
    """module_defaults (of all three) name a kubeconfig that does not exist and a context no kubeconfig has;
    the task names the lab's: the run reaches the cluster."""
    namespace, run = runs(version)
    succeeded(run, "own options win")
    assert data(core, namespace, "own-options") == {"by": "task"}


def test_the_default_callback_prints_each_change_under_its_header_and_no_secret(runs, core):
    """What ``--diff`` shows: one diff per object that changed, headed; the Secret created is named, its value
    shown nowhere: not in the output, not in any event of the run (what AWX keeps: the objects answered,
    kubernetes.core.k8s's own diffs, the definition echoed in invocation all read (hidden)); in check
    mode the same, and nothing is written; a second run changes nothing, shows no diff."""
    namespace, run = runs(NEWEST)
    assert SECRET_VALUE not in run.stdout_text and encoded(SECRET_VALUE) not in run.stdout_text
    assert f"Secret/{namespace}/token" in json.dumps(diffs_in_events(run))  # the events' diffs are there
    events = json.dumps(run.events)
    assert SECRET_VALUE not in events and encoded(SECRET_VALUE) not in events

    succeeded(run, "check mode: settings and planned")
    shown = section(run.stdout_text, "check mode: settings and planned")
    assert f"--- before: ConfigMap/{namespace}/settings\n+++ after: ConfigMap/{namespace}/settings\n" in shown, shown
    assert LEVEL_CHANGED.search(shown), shown
    assert f"--- before: Secret/{namespace}/planned\n+++ after: Secret/{namespace}/planned\n" in shown, shown
    assert f"+Secret/{namespace}/planned\n" in shown, shown
    assert "Namespace/" not in shown, shown  # unchanged
    assert data(core, namespace, "settings") == {"LEVEL": "info"}
    assert data(core, namespace, "planned", kind="secret") is None

    result = succeeded(run, "for real: levels and token")
    assert [entry["before_header"] for entry in result["diff"]] == [f"ConfigMap/{namespace}/levels", f"Secret/{namespace}/token"]
    assert result["diff"][1] == named(f"Secret/{namespace}/token")
    shown = section(run.stdout_text, "for real: levels and token")
    assert f"--- before: ConfigMap/{namespace}/levels\n+++ after: ConfigMap/{namespace}/levels\n" in shown, shown
    assert LEVEL_CHANGED.search(shown), shown
    assert f"--- before: Secret/{namespace}/token\n+++ after: Secret/{namespace}/token\n" in shown, shown
    assert data(core, namespace, "levels") == {"LEVEL": "debug"}
    assert data(core, namespace, "token", kind="secret") == {"token": encoded(SECRET_VALUE)}
    assert result["result"]["results"][1]["result"]["data"] == {"token": "(hidden)"}  # the object answered

    result = succeeded(run, "again: levels and token")
    shown = section(run.stdout_text, "again: levels and token")
    assert result["changed"] is False and result["diff"] == [], result
    assert "before:" not in shown, shown


def test_applied_and_removed_secrets_are_named_only(runs, core):
    """apply: kubernetes.core.k8s's diff of a Secret it creates is the whole Secret: named only. state=absent:
    named (the ConfigMap that did not exist is unchanged)."""
    namespace, run = runs(NEWEST)
    result = succeeded(run, "apply creates")
    assert result["diff"] == [named(f"Secret/{namespace}/applied"), named(f"ConfigMap/{namespace}/fresh")]
    result = succeeded(run, "absent removes")
    assert result["diff"] == [named(f"Secret/{namespace}/applied", created=False)]
    for title in (f"Secret/{namespace}/applied", f"ConfigMap/{namespace}/fresh"):
        assert f"--- before: {title}\n+++ after: {title}\n" in section(run.stdout_text, "apply creates")
    assert f"-Secret/{namespace}/applied\n" in section(run.stdout_text, "absent removes")
    assert data(core, namespace, "applied", kind="secret") is None
    assert data(core, namespace, "fresh") == {"by": "apply"}
    for task in ("apply creates", "absent removes"):
        shown = section(run.stdout_text, task) + json.dumps(task_result(run, task)["diff"])
        assert SECRET_VALUE not in shown and encoded(SECRET_VALUE) not in shown


def test_no_log_hides_the_result_and_the_diff(runs, core):
    namespace, run = runs(NEWEST)
    result = succeeded(run, "no_log hides")
    assert "diff" not in result and "result" not in result, result
    assert NO_LOG_VALUE not in run.stdout_text
    assert NO_LOG_VALUE not in json.dumps(run.events)
    assert data(core, namespace, "hidden") == {"LEVEL": NO_LOG_VALUE}  # it ran


def test_a_kubeconfig_path_is_looked_for_as_kubernetes_core_k8s_does(runs, core):
    """A relative kubeconfig path, from module_defaults, found next to the playbook (files/), as
    kubernetes.core.k8s's action plugin finds it."""
    namespace, run = runs(NEWEST)
    result = succeeded(run, "kubeconfig from files")
    assert result["diff"] == [named(f"ConfigMap/{namespace}/found")]
    assert data(core, namespace, "found") == {"by": "files/lab.kubeconfig"}
