# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Action plugin of segmented.registry.objects: a list of objects in one kubernetes.core.k8s run.

Given a list, kubernetes.core.k8s leaves each object's diff in ``result.results[i].diff``, where no
callback prints it; this action runs it once for the whole list and gives the task a top-level
``diff``, a list with one entry per object that changed, headed ``Kind/namespace/name``, which the
callbacks print one after the other. An object created or removed is named, never shown: its body
(a Secret's data) stays out of the diff.

A Secret's values are hidden everywhere in the task's result (which ``-vvv`` prints and an AWX job
keeps in its events): the objects the server answered, kubernetes.core.k8s's per-object diffs, the
``kubectl.kubernetes.io/last-applied-configuration`` annotation ``apply`` keeps, and the definition
echoed in ``invocation``. Each value of ``data`` and ``stringData`` reads ``(hidden)``, its key kept;
a key changed in place reads ``(hidden, changed)`` on the side after, as ``kubectl diff`` shows it.
"""

from ansible.errors import AnsibleActionFail
from ansible.executor import module_common
from ansible.module_utils.common.yaml import yaml_load_all
from ansible.plugins.action import ActionBase

K8S = "kubernetes.core.k8s"

#: kubernetes.core.k8s's options this action passes on (plugins/modules/objects.py documents them).
K8S_OPTIONS = (
    "definition",
    "state",
    "apply",
    "force",
    "server_side_apply",
    "wait",
    "wait_sleep",
    "wait_timeout",
    "wait_condition",
    "hidden_fields",
    "continue_on_error",
)
#: kubernetes.core's authentication options and their aliases (module_utils/kube.py's AUTH_OPTIONS:
#: tests/unit/plugins/action/test_objects_action.py holds the two equal). Written out rather than
#: imported: kube.py brings the kubernetes client, which the controller would import for every task.
AUTH_OPTIONS = (
    "host",
    "api_key",
    "kubeconfig",
    "context",
    "username",
    "password",
    "validate_certs",
    "verify_ssl",
    "ca_cert",
    "ssl_ca_cert",
    "client_cert",
    "cert_file",
    "client_key",
    "key_file",
    "proxy",
    "no_proxy",
    "proxy_headers",
    "persist_config",
    "impersonate_user",
    "impersonate_groups",
)
#: kubernetes.core.k8s's option holding the objects, under each of its names (module_args echoes them all).
DEFINITION_NAMES = ("resource_definition", "definition", "inline")
#: What a Secret's value reads in the result, and a value changed in place on the side after.
HIDDEN = "(hidden)"
HIDDEN_CHANGED = "(hidden, changed)"
#: A Secret's fields holding values, and the annotation ``apply`` keeps the whole definition in.
SECRET_FIELDS = ("data", "stringData")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: kubernetes.core's action plugin joins several kubeconfig paths with this (not on Windows).
KUBECONFIG_SEPARATOR = ":"


def definitions_of(definition, namespace=None):
    """The objects of ``definition`` in the order kubernetes.core.k8s acts on them: a YAML string
    (several documents), a list (of objects or YAML strings) or one object; a ``*List`` kind gives
    its items. Empty documents are skipped, as kubernetes.core.k8s skips them."""
    loaded = []
    for item in definition if isinstance(definition, list) else [definition]:
        if isinstance(item, str):
            loaded += list(yaml_load_all(str(item)))  # a plain str: libyaml refuses a templated (tagged) one
        else:
            loaded.append(item)
    objects = []
    for item in loaded:
        if not isinstance(item, dict) or not item:
            continue
        kind = item.get("kind")
        if isinstance(kind, str) and kind.endswith("List"):
            objects += [dict(member, kind=member.get("kind") or kind[:-4]) for member in item.get("items") or [] if isinstance(member, dict)]
        else:
            objects.append(item)
    if namespace:  # kubernetes.core.k8s's own namespace option, from module_defaults
        objects = [dict(item, metadata=dict({"namespace": namespace}, **(item.get("metadata") or {}))) for item in objects]
    return objects


def header(definition, instance):
    """``Kind/namespace/name`` (``Kind/name`` for a cluster-scoped object): what the server answered
    when that is the object (a deletion may answer a Status), else what the definition says."""
    given = definition if isinstance(definition, dict) else {}
    answered = instance if isinstance(instance, dict) and instance.get("kind") not in (None, "Status") else {}
    given_metadata = given.get("metadata") or {}
    answered_metadata = answered.get("metadata") or {}
    kind = answered.get("kind") or given.get("kind") or "?"
    name = answered_metadata.get("name") or given_metadata.get("name") or given_metadata.get("generateName") or "?"
    namespace = answered_metadata.get("namespace") or given_metadata.get("namespace")
    return "/".join(str(part) for part in (kind, namespace, name) if part)


def _named(title, created):
    """The diff of an object created or removed: its name alone, on the side where it exists."""
    line = title + "\n"
    return {"before_header": title, "after_header": title, "before": "" if created else line, "after": line if created else ""}


def hidden(side, before=None):
    """A copy of ``side`` (a Secret, or the part of one a diff holds) with each value of its data and
    stringData reading HIDDEN, or HIDDEN_CHANGED where ``before`` (the diff's other side) holds the same
    key with another value, and the last-applied annotation HIDDEN."""
    if not isinstance(side, dict):
        return side
    before = before if isinstance(before, dict) else {}
    copied = dict(side)
    for field in SECRET_FIELDS:
        values = side.get(field)
        if isinstance(values, dict):
            earlier = before.get(field) if isinstance(before.get(field), dict) else {}
            copied[field] = {key: HIDDEN_CHANGED if key in earlier and earlier[key] != value else HIDDEN for key, value in values.items()}
    metadata = side.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        copied["metadata"] = dict(metadata, annotations=dict(annotations, **{LAST_APPLIED: HIDDEN}))
    return copied


def is_secret(definition, outcome=None):
    """Whether the object is a Secret, by its definition or by the server's answer for it."""
    answered = outcome.get("result") if isinstance(outcome, dict) else None
    return any(isinstance(item, dict) and item.get("kind") == "Secret" for item in (definition, answered))


def hide_outcome(outcome):
    """A Secret's values hidden in kubernetes.core.k8s's outcome for it: the object answered, the diff."""
    if "result" in outcome:
        outcome["result"] = hidden(outcome["result"])
    diff = outcome.get("diff")
    if isinstance(diff, dict):
        before = diff.get("before")
        outcome["diff"] = dict(diff, before=hidden(before), after=hidden(diff.get("after"), before))


def hide_definitions(module_result, definitions):
    """The definition kubernetes.core.k8s echoes in ``invocation``, under each of its names, as the
    objects given with a Secret's values hidden."""
    module_args = (module_result.get("invocation") or {}).get("module_args")
    if not isinstance(module_args, dict):
        return
    shown = [hidden(item) if is_secret(item) else item for item in definitions]
    for name in DEFINITION_NAMES:
        if name in module_args:
            module_args[name] = shown


def object_diff(definition, outcome, state):
    """The diff entry of one object from kubernetes.core.k8s's outcome for it, None when it did not change."""
    if not isinstance(outcome, dict) or not outcome.get("changed"):
        return None
    title = header(definition, outcome.get("result"))
    diff = outcome.get("diff") if isinstance(outcome.get("diff"), dict) else {}
    before, after = diff.get("before"), diff.get("after")
    if outcome.get("method") == "delete" or (not diff and state == "absent"):
        return _named(title, created=False)
    # Created: kubernetes.core.k8s gives no diff, or, with apply, one from nothing to the whole object
    # (the kind appears only then: an existing object's kind never changes).
    if outcome.get("method") == "create" or not diff or (not before and isinstance(after, dict) and "kind" in after):
        return _named(title, created=True)
    return {"before_header": title, "after_header": title, "before": before, "after": after}


def outcomes(definitions, result):
    """``(definition, outcome)`` for each object of kubernetes.core.k8s's result, in the order of
    ``definitions``: of a list in ``result.results``, of a single object the result itself."""
    listed = result.get("result") if isinstance(result.get("result"), dict) else {}
    if isinstance(listed.get("results"), list):
        return [
            (definitions[index] if index < len(definitions) else {}, outcome) for index, outcome in enumerate(listed["results"]) if isinstance(outcome, dict)
        ]
    # one object (or a list that failed on one: the definition is known only for one)
    return [(definitions[0] if len(definitions) == 1 else {}, result)]


def hide_secrets(definitions, result):
    """Every Secret's values hidden in kubernetes.core.k8s's ``result`` (changed in place)."""
    for definition, outcome in outcomes(definitions, result):
        if is_secret(definition, outcome):
            hide_outcome(outcome)
    hide_definitions(result, definitions)


def object_diffs(definitions, result, state=None):
    """One diff entry per object that changed, in the order of ``definitions``."""
    entries = (object_diff(definition, outcome, state) for definition, outcome in outcomes(definitions, result))
    return [entry for entry in entries if entry is not None]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    # ActionBase.run refuses any other option, naming it, before anything runs.
    _VALID_ARGS = frozenset(K8S_OPTIONS + AUTH_OPTIONS)

    def _with_k8s_defaults(self, args, task_vars):
        """``args`` over the module_defaults of kubernetes.core.k8s (its own and its groups'): ansible gives
        a task the defaults of its action (objects, and segmented.registry.cluster, its group) and not those
        of a module the action runs, so ``group/kubernetes.core.k8s`` would not reach it otherwise."""
        apply_defaults = getattr(module_common, "_apply_action_arg_defaults", None)
        if apply_defaults is not None:  # ansible-core 2.19
            return apply_defaults(K8S, self._task, args, self._templar)
        # ansible-core 2.17 and 2.18
        merged = getattr(module_common, "get_action_args_with_defaults", None)(
            K8S, args, self._task.module_defaults, self._templar, action_groups=self._task._parent._play._action_groups
        )
        omit = task_vars.get("omit")
        return {name: value for name, value in merged.items() if omit is None or value != omit}

    def _local_kubeconfig(self, kubeconfig):
        """The kubeconfig paths as kubernetes.core.k8s's own action plugin passes them on (which this action
        does not go through): found where Ansible looks for files (a role's files/, relative paths) and
        decrypted when vaulted. With ``(paths, decrypted temporary files)``."""
        found = [self._loader.get_real_file(self._find_needle("files", path), decrypt=True) for path in kubeconfig.split(KUBECONFIG_SEPARATOR)]
        return KUBECONFIG_SEPARATOR.join(found), found

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        task_vars = task_vars or {}

        if self._task.args.get("definition") is None:
            raise AnsibleActionFail("missing required argument: definition")
        args = self._with_k8s_defaults(dict(self._task.args), task_vars)
        try:
            definitions = definitions_of(args["definition"], args.get("namespace"))
        except Exception as error:  # a YAML string that does not parse
            raise AnsibleActionFail(f"definition: not valid YAML: {error}")
        if not definitions:  # nothing to apply: kubernetes.core.k8s would fail on an empty definition
            result.update(changed=False, result={"results": []})
            if self._task.diff:
                result["diff"] = []
            return result

        temporary = []
        kubeconfig = args.get("kubeconfig")
        if isinstance(kubeconfig, str) and kubeconfig and self._connection.transport == "local":
            args["kubeconfig"], temporary = self._local_kubeconfig(kubeconfig)
        try:
            module_result = self._execute_module(module_name=K8S, module_args=args, task_vars=task_vars)
        finally:
            for path in temporary:
                self._loader.cleanup_tmp_file(path)  # only the decrypted copies are removed

        hide_secrets(definitions, module_result)
        if self._task.diff:
            module_result["diff"] = object_diffs(definitions, module_result, args.get("state"))
        result.update(module_result)
        return result
