"""objects: one kubernetes.core.k8s run for a list of objects, each one's change lifted into the task's diff.

The action alone, its ``_execute_module`` (the kubernetes.core.k8s run) answered with results shaped
as kubernetes.core.k8s shapes them; then the real ``ansible`` command: an unknown option refused by
name before anything runs, no cluster needed. Whole runs of kubernetes.core.k8s against a real API
server (module_defaults reaching the run, the diff the default callback prints, check mode, removal,
no_log, a kubeconfig found in files/): tests/integration/test_objects_action.py.
"""

import base64
import copy
import json
import os
import subprocess
import sys
import sysconfig

import pytest
import yaml
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.block import Block
from ansible.playbook.play import Play
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.loader import connection_loader
from ansible.template import Templar
from ansible_collections.kubernetes.core.plugins.doc_fragments.k8s_auth_options import ModuleDocFragment as K8sAuthFragment
from ansible_collections.segmented.registry.plugins.action import objects
from ansible_collections.segmented.registry.plugins.module_utils.kube import AUTH_OPTIONS

from tests.unit.plugins.test_version_added import documentation

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
SITE = sysconfig.get_paths()["purelib"]
TOKEN = "sha256~objects-test-token-5e1d"
SECRET_VALUE = "s3cret-objects-value-91c4"


def encoded(text):
    return base64.b64encode(text.encode()).decode()


# ---------------------------------------------------------------------------------------------
# The action alone: kubernetes.core.k8s's answer given
# ---------------------------------------------------------------------------------------------


def config_map(name, namespace="payments", **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def secret(name, namespace="payments"):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "type": "Opaque", "stringData": {"token": SECRET_VALUE}}


def stored_secret(name, namespace="payments"):
    """A Secret as the server returns it (its data base64-encoded)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "uid": "u-" + name, "resourceVersion": "7"},
        "type": "Opaque",
        "data": {"token": encoded(SECRET_VALUE)},
    }


NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments", "labels": {"team": "pay"}}}


def updated(definition, before, after):
    """kubernetes.core.k8s's outcome for an object it updated: its diff, the object as returned."""
    return {"changed": True, "method": "update", "diff": {"before": before, "after": after}, "result": definition}


def unchanged(definition):
    return {"changed": False, "method": "update", "diff": {}, "result": definition}


def listed(*outcomes):
    """kubernetes.core.k8s's result for several objects."""
    return {"changed": any(outcome["changed"] for outcome in outcomes), "result": {"results": list(outcomes)}}


@pytest.fixture
def run_action(monkeypatch):
    """``run(args, answer, diff=True, check_mode=False)``: the action's result, and the kubernetes.core.k8s
    runs it asked for (module name, arguments), ``answer`` standing for kubernetes.core.k8s's result."""

    def run(args, answer, diff=True, check_mode=False):
        loader = DataLoader()
        play = Play.load({"hosts": "localhost", "gather_facts": False, "tasks": []}, loader=loader)
        task = Task(block=Block(play=play))
        task.action = "segmented.registry.objects"
        task.args = copy.deepcopy(args)
        task.diff = diff
        task.check_mode = check_mode
        play_context = PlayContext()
        connection = connection_loader.get("local", play_context, None)
        plugin = objects.ActionModule(task, connection, play_context, loader, Templar(loader=loader), None)
        calls = []

        def execute_module(module_name=None, module_args=None, task_vars=None, **_kwargs):
            calls.append((module_name, copy.deepcopy(module_args)))
            return copy.deepcopy(answer)

        monkeypatch.setattr(plugin, "_execute_module", execute_module)
        return plugin.run(task_vars={}), calls

    return run


def test_one_kubernetes_core_k8s_run_for_the_whole_list(run_action):
    definition = [config_map("a", LEVEL="info"), config_map("b")]
    auth = {"host": "https://api.example.com:6443", "api_key": TOKEN, "validate_certs": False}
    result, calls = run_action(dict(auth, definition=definition, apply=True, wait=True), listed(unchanged(definition[0]), unchanged(definition[1])))
    assert [name for name, _args in calls] == ["kubernetes.core.k8s"]
    assert calls[0][1] == dict(auth, definition=definition, apply=True, wait=True)
    assert result["changed"] is False
    assert result["result"]["results"][0]["result"] == definition[0]  # kubernetes.core.k8s's result as it is


def entry(header, before, after):
    """A diff entry as the action gives it: both sides under one header."""
    return {"before_header": header, "after_header": header, "before": before, "after": after}


def test_a_lists_diffs_are_lifted_in_order_each_headed_kind_namespace_name(run_action):
    definition = [config_map("settings", LEVEL="debug"), NAMESPACE, config_map("same")]
    answer = listed(
        updated(definition[0], {"data": {"LEVEL": "info"}}, {"data": {"LEVEL": "debug"}}),
        updated(NAMESPACE, {"metadata": {"labels": {"team": "ops"}}}, {"metadata": {"labels": {"team": "pay"}}}),
        unchanged(definition[2]),
    )
    result, _calls = run_action({"definition": definition}, answer)
    assert result["diff"] == [
        entry("ConfigMap/payments/settings", {"data": {"LEVEL": "info"}}, {"data": {"LEVEL": "debug"}}),
        # cluster-scoped: no namespace in the header
        entry("Namespace/payments", {"metadata": {"labels": {"team": "ops"}}}, {"metadata": {"labels": {"team": "pay"}}}),
    ]
    assert result["changed"] is True
    # each object's own diff stays where kubernetes.core.k8s put it
    assert result["result"]["results"][0]["diff"] == answer["result"]["results"][0]["diff"]


def test_a_single_objects_diff_is_lifted_from_the_top(run_action):
    """One object: kubernetes.core.k8s answers with its result at the top (``diff`` a dict), which
    becomes a list of one, headed."""
    definition = config_map("settings", LEVEL="debug")
    answer = updated(definition, {"data": {"LEVEL": "info"}}, {"data": {"LEVEL": "debug"}})
    result, _calls = run_action({"definition": definition}, answer)
    assert result["diff"] == [entry("ConfigMap/payments/settings", {"data": {"LEVEL": "info"}}, {"data": {"LEVEL": "debug"}})]
    assert result["method"] == "update"


def test_a_single_unchanged_object_gives_an_empty_diff(run_action):
    definition = config_map("settings")
    result, _calls = run_action({"definition": [definition]}, unchanged(definition))
    assert result["diff"] == []


def test_created_and_removed_objects_are_named_never_shown(run_action):
    """Created (kubernetes.core.k8s gives no diff; with apply, one from nothing to the whole object) and
    removed (no diff; the server answered a Status): the name on the side where the object exists, and
    the Secret's value nowhere in the diff, neither as given nor base64-encoded."""
    definition = [secret("created"), secret("applied"), secret("removed"), config_map("kept")]
    answer = listed(
        {"changed": True, "method": "create", "result": stored_secret("created")},
        {"changed": True, "method": "apply", "diff": {"before": {}, "after": stored_secret("applied")}, "result": stored_secret("applied")},
        {
            "changed": True,
            "method": "delete",
            "result": {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": "removed", "kind": "secrets"}},
        },
        unchanged(definition[3]),
    )
    result, _calls = run_action({"definition": definition}, answer)
    assert result["diff"] == [
        {"before_header": "Secret/payments/created", "after_header": "Secret/payments/created", "before": "", "after": "Secret/payments/created\n"},
        {"before_header": "Secret/payments/applied", "after_header": "Secret/payments/applied", "before": "", "after": "Secret/payments/applied\n"},
        {"before_header": "Secret/payments/removed", "after_header": "Secret/payments/removed", "before": "Secret/payments/removed\n", "after": ""},
    ]
    shown = json.dumps(result["diff"])
    assert SECRET_VALUE not in shown and encoded(SECRET_VALUE) not in shown


def annotated(stored):
    """``stored`` with the annotation ``apply`` keeps: the whole definition, values and all."""
    definition = {key: stored[key] for key in ("apiVersion", "kind", "metadata", "data")}
    annotation = {objects.LAST_APPLIED: json.dumps(definition)}
    return dict(stored, metadata=dict(stored["metadata"], annotations=annotation))


def assert_nowhere(result):
    shown = json.dumps(result)
    assert SECRET_VALUE not in shown and encoded(SECRET_VALUE) not in shown, shown


@pytest.mark.parametrize("diff", [True, False], ids=["diff", "no-diff"])
def test_a_secrets_values_are_hidden_everywhere_in_the_result(run_action, diff):
    """A list: the Secrets' values hidden in the objects answered (and the last-applied annotation), in
    kubernetes.core.k8s's own diffs and in the definition echoed under every name of the option; a key
    changed in place reads (hidden, changed) after; a ConfigMap's data stays as it is."""
    definition = [secret("rotated"), secret("applied"), config_map("settings", LEVEL="debug")]
    old = {"data": {"token": encoded("old-" + SECRET_VALUE), "kept": encoded("same")}}
    new = {"data": {"token": encoded(SECRET_VALUE), "kept": encoded("same"), "added": encoded(SECRET_VALUE)}}
    answer = listed(
        updated(stored_secret("rotated"), old, new),
        {
            "changed": True,
            "method": "apply",
            "diff": {"before": {}, "after": annotated(stored_secret("applied"))},
            "result": annotated(stored_secret("applied")),
        },
        updated(definition[2], {"data": {"LEVEL": "info"}}, {"data": {"LEVEL": "debug"}}),
    )
    answer["invocation"] = {"module_args": {"resource_definition": copy.deepcopy(definition), "definition": copy.deepcopy(definition)}}
    result, calls = run_action({"definition": definition}, answer, diff=diff)
    assert_nowhere(result)
    assert calls[0][1]["definition"] == definition  # the run itself gets the values
    rotated, applied, settings = result["result"]["results"]
    assert rotated["diff"]["before"] == {"data": {"token": "(hidden)", "kept": "(hidden)"}}
    assert rotated["diff"]["after"] == {"data": {"token": "(hidden, changed)", "kept": "(hidden)", "added": "(hidden)"}}
    assert rotated["result"]["data"] == {"token": "(hidden)"}
    assert applied["result"]["metadata"]["annotations"] == {objects.LAST_APPLIED: "(hidden)"}
    assert applied["diff"]["after"]["data"] == {"token": "(hidden)"}
    assert settings == answer["result"]["results"][2]
    for name in ("resource_definition", "definition"):
        shown = result["invocation"]["module_args"][name]
        assert shown[0]["stringData"] == {"token": "(hidden)"} and shown[2] == definition[2]
    if diff:
        assert result["diff"][0] == {
            "before_header": "Secret/payments/rotated",
            "after_header": "Secret/payments/rotated",
            "before": {"data": {"token": "(hidden)", "kept": "(hidden)"}},
            "after": {"data": {"token": "(hidden, changed)", "kept": "(hidden)", "added": "(hidden)"}},
        }
        assert result["diff"][2]["after"] == {"data": {"LEVEL": "debug"}}


def test_a_single_secret_given_as_yaml_is_hidden_at_the_top_and_in_invocation(run_action):
    """One object, given as a YAML string: its outcome is the result itself; the definition echoed under the
    option's alias (kubernetes.core.k8s's own name, resource_definition) reads as the objects, hidden."""
    text = yaml.safe_dump(secret("single"))
    answer = updated(annotated(stored_secret("single")), {"data": {"token": encoded("old")}}, {"data": {"token": encoded(SECRET_VALUE)}})
    answer["invocation"] = {"module_args": {"resource_definition": text}}
    result, _calls = run_action({"definition": text}, answer)
    assert_nowhere(result)
    assert result["result"]["data"] == {"token": "(hidden)"}
    assert result["invocation"]["module_args"]["resource_definition"][0]["stringData"] == {"token": "(hidden)"}
    assert result["diff"] == [
        {
            "before_header": "Secret/payments/single",
            "after_header": "Secret/payments/single",
            "before": {"data": {"token": "(hidden)"}},
            "after": {"data": {"token": "(hidden, changed)"}},
        }
    ]


def test_state_absent_names_each_object_removed(run_action):
    """state=absent, each object from the definition (the server's answer names none: an empty object)."""
    definition = [config_map("a"), NAMESPACE]
    answer = listed({"changed": True, "method": "delete", "result": {}}, {"changed": True, "method": "delete", "result": {}})
    result, _calls = run_action({"definition": definition, "state": "absent"}, answer)
    assert [(entry["before"], entry["after"]) for entry in result["diff"]] == [("ConfigMap/payments/a\n", ""), ("Namespace/payments\n", "")]


def test_the_header_takes_the_namespace_the_server_answered(run_action):
    """An object without a namespace in its definition goes to the context's namespace: the header says which."""
    definition = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"LEVEL": "debug"}}
    answered = dict(definition, metadata={"name": "settings", "namespace": "default"})
    result, _calls = run_action({"definition": [definition]}, {"changed": True, "method": "create", "result": answered})
    assert result["diff"][0]["after"] == "ConfigMap/default/settings\n"


def test_a_yaml_string_and_a_list_kind_give_one_entry_per_object(run_action):
    text = yaml.safe_dump_all(
        [
            config_map("a"),
            {
                "apiVersion": "v1",
                "kind": "ConfigMapList",
                "items": [{"metadata": {"name": "b", "namespace": "payments"}}, {"metadata": {"name": "c", "namespace": "payments"}}],
            },
        ]
    )
    answer = listed(*[{"changed": True, "method": "delete", "result": {}} for _name in "abc"])
    result, _calls = run_action({"definition": text, "state": "absent"}, answer)
    assert [entry["before_header"] for entry in result["diff"]] == ["ConfigMap/payments/a", "ConfigMap/payments/b", "ConfigMap/payments/c"]


def test_a_yaml_string_that_does_not_parse_is_refused_naming_the_option(run_action):
    with pytest.raises(AnsibleActionFail, match="definition: not valid YAML"):
        run_action({"definition": "kind: [ConfigMap"}, {})


def test_without_diff_mode_there_is_no_diff(run_action):
    definition = [secret("created"), config_map("settings")]
    answer = listed({"changed": True, "method": "create", "result": stored_secret("created")}, {"changed": True, "method": "update", "result": definition[1]})
    result, _calls = run_action({"definition": definition}, answer, diff=False)
    assert "diff" not in result
    assert result["changed"] is True


def test_check_mode_reaches_kubernetes_core_k8s(run_action):
    """check mode is kubernetes.core.k8s's (its server-side dry runs): the run is made, with the same arguments."""
    definition = [config_map("settings")]
    result, calls = run_action({"definition": definition}, {"changed": True, "method": "create", "result": definition[0]}, check_mode=True)
    assert len(calls) == 1
    assert result["diff"][0]["after"] == "ConfigMap/payments/settings\n"


def test_an_empty_definition_changes_nothing_and_runs_nothing(run_action):
    result, calls = run_action({"definition": []}, {"failed": True, "msg": "not run"})
    assert calls == []
    assert result["changed"] is False and result["diff"] == []


def test_a_definition_is_required(run_action):
    with pytest.raises(AnsibleActionFail, match="missing required argument: definition"):
        run_action({"host": "https://api.example.com"}, {})


def test_a_failure_is_kubernetes_core_k8s_s(run_action):
    answer = {"failed": True, "msg": "Failed to create object: forbidden", "changed": False}
    result, _calls = run_action({"definition": [config_map("a"), config_map("b")]}, answer)
    assert result["failed"] is True and result["msg"] == answer["msg"]
    assert result["diff"] == []


def test_the_auth_options_are_kubernetes_cores():
    """The action's list is kubernetes.core's authentication options and their aliases (kube.py reads them
    from kubernetes.core; the action does not import it)."""
    assert set(objects.AUTH_OPTIONS) == set(AUTH_OPTIONS) | {alias for aliases in AUTH_OPTIONS.values() for alias in aliases}


def test_the_documented_options_are_the_options_taken():
    """Every option the module file documents (with kubernetes.core's auth fragment, aliases included) is taken, and no other."""
    doc = documentation(os.path.join(REPO, "plugins", "modules", "objects.py"))
    assert "kubernetes.core.k8s_auth_options" in doc["extends_documentation_fragment"]
    auth = yaml.safe_load(K8sAuthFragment.DOCUMENTATION)["options"]
    documented = set(doc["options"]) | set(auth) | {alias for option in auth.values() for alias in option.get("aliases") or []}
    assert documented == objects.ActionModule._VALID_ARGS


def test_objects_is_in_the_cluster_action_group():
    with open(os.path.join(REPO, "meta", "runtime.yml")) as handle:
        assert "objects" in yaml.safe_load(handle)["action_groups"]["cluster"]


# ---------------------------------------------------------------------------------------------
# The real command
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def ansible(collections_path, tmp_path):
    """``run(*args)``: the ``ansible`` command's process and its JSON output, in a clean environment
    (no K8S_AUTH_*, no ansible.cfg, discovery cached in the test's own folder); the modules run on this
    Python (which has the kubernetes client)."""

    def run(*args):
        env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([collections_path, SITE]),
            ANSIBLE_STDOUT_CALLBACK="json",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_LOCALHOST_WARNING="0",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
            TMPDIR=str(tmp_path),
        )
        env.pop("ANSIBLE_CONFIG", None)
        for name in list(env):
            if name.startswith("K8S_AUTH_"):
                env.pop(name)
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
        process = subprocess.run(
            [os.path.join(BIN, "ansible"), "-i", str(inventory), *args], env=env, cwd=str(tmp_path), capture_output=True, check=False, text=True, timeout=180
        )
        output = process.stdout
        try:
            return process, json.loads(output[output.index("{") :])
        except ValueError:
            raise AssertionError("no JSON output:\n" + output + process.stderr)

    return run


def test_an_unknown_option_is_refused_by_name_before_anything_runs(ansible):
    """ActionBase refuses it (``_VALID_ARGS``): no cluster is named, none is reached."""
    process, report = ansible("localhost", "-m", "segmented.registry.objects", "-a", json.dumps({"definition": [config_map("a")], "namespaces": ["payments"]}))
    result = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert process.returncode != 0
    assert result["msg"] == "Invalid options for segmented.registry.objects: namespaces", result
