"""The AWX objects as code (awx/) cross-checked against the playbooks and inventories/awx, with no
AWX and no network: AWX cannot be installed here, so what would only break at job launch
(a survey variable the playbook never reads, a credential type AWX refuses, an injected
kubeconfig without a host's context, a job template on a playbook that is not there) breaks here."""
import copy
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from kubernetes import config as kconfig

from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import MIN_TOKEN_SECONDS
from tests import awx_as_code as awx

REPO = awx.REPO
VENV_BIN = os.path.dirname(sys.executable)
AWX_MODULES = os.path.join(os.path.dirname(sys.modules["ansible"].__file__ if "ansible" in sys.modules else
                                           __import__("ansible").__file__),
                           "..", "ansible_collections", "awx", "awx", "plugins", "modules")
EXAMPLE_KUBECONFIG = os.path.join(awx.AWX, "credential_types", "kubeconfig.example.yml")
#: Keys whose whole string value is a Jinja2 expression (no braces).
CONDITIONAL_KEYS = {"when", "that", "failed_when", "changed_when", "until", "loop", "with_items"}
JINJA = re.compile(r"{{(.*?)}}|{%(.*?)%}", re.S)
IMPORT_TASK_KEYS = ("import_tasks", "include_tasks", "ansible.builtin.import_tasks", "ansible.builtin.include_tasks")
IMPORT_ROLE_KEYS = ("include_role", "import_role", "ansible.builtin.include_role", "ansible.builtin.import_role")
IMPORT_PLAYBOOK_KEYS = ("import_playbook", "ansible.builtin.import_playbook")
FQCN_PREFIX = "segmented.registry."


# --- what a playbook reads ---------------------------------------------------------------------

def playbook_files(playbook):
    """The playbook and every task file, playbook and role (all its YAML and templates) it
    imports or includes, transitively."""
    seen, queue = [], [os.path.join(REPO, playbook)]
    while queue:
        path = os.path.normpath(queue.pop())
        if path in seen or not os.path.isfile(path):
            continue
        seen.append(path)
        if not path.endswith((".yml", ".yaml")):
            continue
        for key, value in _walk(awx.load_yaml(path)):
            if key in IMPORT_PLAYBOOK_KEYS and isinstance(value, str) and value.startswith(FQCN_PREFIX):
                # an awx/playbooks wrapper: the collection's playbook by FQCN
                queue.append(os.path.join(REPO, "playbooks", value[len(FQCN_PREFIX):] + ".yml"))
            elif key in IMPORT_TASK_KEYS + IMPORT_PLAYBOOK_KEYS and isinstance(value, str):
                queue.append(os.path.join(os.path.dirname(path), value))
            elif key in IMPORT_ROLE_KEYS and isinstance(value, dict) and "name" in value:
                queue.extend(_role_files(value["name"]))
            elif key == "roles" and isinstance(value, list):
                for role in value:
                    queue.extend(_role_files(role if isinstance(role, str) else role.get("role") or role.get("name")))
    return seen


def _role_files(name):
    folder = os.path.join(REPO, "roles", name.split(".")[-1])
    assert os.path.isdir(folder), f"role {name} is not in roles/"
    return [os.path.join(root, f) for root, _dirs, names in os.walk(folder) if "molecule" not in root
            for f in names if f.endswith((".yml", ".yaml", ".j2"))]


def _walk(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from _walk(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)
    elif isinstance(node, str):
        yield key, node


def expressions(path):
    """The Jinja2 expressions of a file: inside {{ }} / {% %}, and whole conditionals."""
    if path.endswith(".j2"):
        with open(path) as handle:
            return [a or b for a, b in JINJA.findall(handle.read())]
    found = []
    for key, value in _walk(awx.load_yaml(path)):
        if not isinstance(value, str):
            continue
        if key in CONDITIONAL_KEYS:
            found.append(value)
        found.extend(a or b for a, b in JINJA.findall(value))
    return found


def reads(files, variable):
    """Whether any expression of these files reads ``variable`` as a variable (not an attribute
    ``x.variable``, a keyword argument ``variable=`` or a string literal)."""
    pattern = re.compile(r"(?<![\w.'\"])" + re.escape(variable) + r"(?![\w'\"])(?!\s*=[^=])")
    return any(pattern.search(expression) for path in files for expression in expressions(path))


def test_the_reader_tells_a_variable_from_an_attribute_or_a_keyword():
    files = playbook_files("playbooks/promote.yml")
    assert {os.path.relpath(f, REPO) for f in files} >= {
        "playbooks/promote.yml", "playbooks/tasks/validate.yml", "playbooks/tasks/promote.yml",
        "playbooks/tasks/registry_settings.yml"}
    for variable in ("project", "image", "env", "stream", "tag", "reconcile"):
        assert reads(files, variable), variable
    # reserved by Ansible, so the survey does not use them: promote.yml reads neither (they appear
    # as module option keys and as attributes of the request fact only), nor a word of a message
    for variable in ("namespace", "environment", "Give"):
        assert not reads(files, variable), variable


# --- the job templates and surveys ------------------------------------------------------------

TEMPLATES = awx.job_templates()
IDS = [t["name"].split(" - ", 1)[1] for t in TEMPLATES]


def test_the_job_templates_issues_12_23_and_25_ask_for_are_there():
    assert sorted(IDS) == sorted(["site", "promote", "demote", "rollback", "reconcile", "audit", "credentials",
                                  "rotate credentials"])
    assert [t["variable"] for t in awx.job_template("promote")["survey"]] == ["project", "image", "env"]
    assert awx.job_template("demote")["survey"] == awx.job_template("promote")["survey"]
    # issue 25: a rollback asks what a promotion asks, one environment of the inventory's (a multiplechoice)
    assert awx.job_template("rollback")["survey"] == awx.job_template("promote")["survey"]
    assert awx.job_template("rollback")["playbook"] == "awx/playbooks/rollback.yml"
    assert [q["variable"] for q in awx.job_template("rotate credentials")["survey"]] == ["credentials_clusters", "grace"]
    assert not [q for q in awx.job_template("rotate credentials")["survey"] if q.get("required")]
    assert [q["variable"] for q in awx.job_template("credentials")["survey"]] == [
        "credentials_clusters", "credentials_duration", "credentials_renew_before"]
    assert [t["name"] for t in TEMPLATES if t.get("schedule")] == [awx.job_template("reconcile")["name"],
                                                                   awx.job_template("credentials")["name"]]


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_every_job_template_runs_the_collection_of_the_execution_environment(template):
    """Lockstep: the template's playbook is a wrapper of awx/playbooks whose one play imports the
    collection's playbook of the same name by FQCN, so the job runs the collection installed in the
    execution environment (the version it was built with), not a second copy from the project."""
    name = os.path.basename(template["playbook"])
    assert template["playbook"] == f"awx/playbooks/{name}"
    plays = awx.load_yaml(os.path.join(REPO, template["playbook"]))
    assert [set(play) for play in plays] == [{"name", "ansible.builtin.import_playbook"}]
    assert plays[0]["ansible.builtin.import_playbook"] == FQCN_PREFIX + name[:-len(".yml")]
    assert os.path.isfile(os.path.join(REPO, "playbooks", name))


def test_the_credentials_schedule_renews_every_pull_credential_well_before_it_expires():
    """Daily, with the role's defaults (7 days, renewed with less than 2 days left): each
    credential is renewed by a run at least a day before it expires, so one failed run is survived."""
    defaults = awx.load_yaml(os.path.join(REPO, "roles", "credentials", "defaults", "main.yml"))
    template = awx.job_template("credentials")
    assert template["playbook"] == "awx/playbooks/credentials.yml"
    rule = dict(part.split("=") for part in template["schedule"]["rrule"].split("RRULE:")[1].split(";"))
    period = {"HOURLY": 3600, "DAILY": 86400}[rule["FREQ"]] * int(rule.get("INTERVAL", "1"))
    assert defaults["credentials_duration"] == 7 * 86400
    assert 2 * period <= defaults["credentials_renew_before"] < defaults["credentials_duration"]
    assert template["schedule"]["extra_data"] == {}
    # the schedule answers nothing, so the role's defaults hold; the optional lifetime questions
    # (shorter for a test or a tighter policy) are none of them required and have no default
    assert awx.survey_extra_vars(template["survey"], template["schedule"]["extra_data"]) == {}


def test_the_credentials_survey_takes_what_the_credential_module_takes():
    """The lifetime questions' bounds are the module's: at least the TokenRequest API's least
    (MIN_TOKEN_SECONDS), renew_before below the longest lifetime."""
    questions = {q["variable"]: q for q in awx.job_template("credentials")["survey"]}
    duration, renew_before = questions["credentials_duration"], questions["credentials_renew_before"]
    assert duration["type"] == renew_before["type"] == "integer"
    assert not duration["required"] and not renew_before["required"]
    assert "default" not in duration and "default" not in renew_before
    assert duration["min"] == MIN_TOKEN_SECONDS and renew_before["min"] == 0
    assert renew_before["max"] == duration["max"] - 1
    assert awx.survey_extra_vars(list(questions.values()), {"credentials_duration": 600, "credentials_renew_before": 599}) == {
        "credentials_duration": 600, "credentials_renew_before": 599}
    for bad in ({"credentials_duration": 599}, {"credentials_duration": "600"}, {"credentials_renew_before": -1}):
        with pytest.raises(ValueError):
            awx.survey_extra_vars(list(questions.values()), bad)


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_every_job_template_runs_a_playbook_that_is_there(template):
    assert os.path.isfile(os.path.join(REPO, template["playbook"])), template["playbook"]
    plays = awx.load_yaml(os.path.join(REPO, template["playbook"]))
    assert isinstance(plays, list) and plays, template["playbook"]


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_every_survey_variable_is_one_the_playbook_reads(template):
    files = playbook_files(template["playbook"])
    unread = [q["variable"] for q in template["survey"] if not reads(files, q["variable"])]
    assert not unread, f"{template['name']}: {template['playbook']} (and what it imports) never reads {unread}"


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_every_survey_is_one_awx_takes_and_sends_strings_the_playbook_parses(template):
    variables = [q["variable"] for q in template["survey"]]
    assert len(set(variables)) == len(variables)
    for question in template["survey"]:
        assert {"question_name", "variable", "type", "required"} <= set(question), question
        assert question["type"] in awx.SURVEY_TYPES and isinstance(question["required"], bool)
        # a multiselect sends a list; the playbooks take one string (comma-separated)
        assert question["type"] != "multiselect", question
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", question["variable"]), question
        if question["type"] == "multiplechoice":
            assert awx.choices(question), question
            assert question.get("default", awx.choices(question)[0]) in awx.choices(question)
        if question["type"] in ("text", "integer") and "default" in question:
            awx.survey_extra_vars([question], {question["variable"]: question["default"]})
    for key in ("ask_job_type_on_launch", "ask_diff_mode_on_launch"):
        assert isinstance(template.get(key, False), bool)


def _present_environments():
    group_vars = awx.load_yaml(os.path.join(awx.AWX_INVENTORY, "group_vars", "all.yml"))
    return [env["name"] for env in group_vars["segmented_registry_environments"] if env.get("state", "present") == "present"]


def test_the_env_choices_are_the_environments_of_the_awx_inventory():
    for name in ("promote", "demote"):
        question = [q for q in awx.job_template(name)["survey"] if q["variable"] == "env"][0]
        assert question["type"] == "multiplechoice"
        assert awx.choices(question) == _present_environments()


def test_survey_answers_are_checked_as_awx_checks_them():
    survey = awx.job_template("promote")["survey"]
    assert awx.survey_extra_vars(survey, {"project": "myproject", "image": "app:v1", "env": "uat"}) == {
        "project": "myproject", "image": "app:v1", "env": "uat"}
    for bad in ({"project": "myproject", "image": "app:v1", "env": "staging"},  # absent: not a choice
                {"project": "myproject", "image": "app:v1"},
                {"project": "", "image": "app:v1", "env": "uat"},
                {"project": "myproject", "image": "app:v1", "env": "uat", "namespace": "x"}):
        with pytest.raises(ValueError):
            awx.survey_extra_vars(survey, bad)
    assert awx.survey_extra_vars(awx.job_template("rotate credentials")["survey"], {}) == {"grace": 600}


def test_a_schedule_answers_every_required_question_with_variables_the_playbook_reads():
    for template in TEMPLATES:
        schedule = template.get("schedule")
        if not schedule:
            continue
        assert re.fullmatch(r"DTSTART(;TZID=[\w/]+)?:\d{8}T\d{6}Z? RRULE:FREQ=\w+(;\w+=[\w,]+)*", schedule["rrule"])
        extra_vars = awx.survey_extra_vars(template["survey"], schedule["extra_data"])
        files = playbook_files(template["playbook"])
        assert all(reads(files, variable) for variable in extra_vars)


# --- the credential type and inventories/awx --------------------------------------------------

def test_the_credential_type_is_one_awx_takes_with_the_kubeconfig_secret():
    definition = awx.credential_type()
    assert awx.credential_type_problems(definition) == []
    fields = {field["id"]: field for field in definition["inputs"]["fields"]}
    assert fields["kubeconfig"]["secret"] is True and fields["kubeconfig"]["multiline"] is True
    assert definition["inputs"]["required"] == ["kubeconfig", "ca_bundle"]
    # CA certificates are public: shown back, multiline, injected as a file
    assert fields["ca_bundle"].get("secret", False) is False and fields["ca_bundle"]["multiline"] is True
    assert definition["injectors"]["file"]["template.ca_bundle"] == "{{ ca_bundle }}"


def test_the_credential_type_checker_finds_what_awx_refuses():
    broken = copy.deepcopy(awx.credential_type())
    broken["kind"] = "ssh"
    broken["injectors"]["env"]["ANSIBLE_KUBECONFIG"] = "{{ tower.filename.kubeconfig }}"
    broken["injectors"]["env"]["OTHER"] = "{{ tower.filename.missing }}"
    broken["injectors"]["file"]["template.token"] = "{{ token }}"
    problems = " | ".join(awx.credential_type_problems(broken))
    for expected in ("kind 'ssh'", "ANSIBLE_KUBECONFIG", "tower.filename.missing", "'token' is not an input"):
        assert expected in problems, problems


EXAMPLE_CA_BUNDLE = os.path.join(awx.AWX, "credential_types", "ca_bundle.example.pem")


def _injected(tmp_path, kubeconfig_text):
    with open(EXAMPLE_CA_BUNDLE) as handle:
        ca_bundle = handle.read()
    env, files = awx.inject(awx.credential_type(), {"kubeconfig": kubeconfig_text, "ca_bundle": ca_bundle},
                            str(tmp_path / "private"))
    return env, files


def test_every_injected_variable_is_used_by_the_inventory_or_a_playbook():
    definition = awx.credential_type()
    assert not definition["injectors"].get("extra_vars"), "extra_vars injectors: check them here too"
    used_in = []
    for root in (awx.AWX_INVENTORY, os.path.join(REPO, "playbooks")):
        for folder, _dirs, names in os.walk(root):
            used_in += [os.path.join(folder, name) for name in names if name.endswith(".yml")]
    for name in definition["injectors"]["env"]:
        lookup = re.compile(r"lookup\(\s*'(ansible\.builtin\.)?env'\s*,\s*'" + re.escape(name) + r"'")
        users = [path for path in used_in if any(lookup.search(e) for e in expressions(path))]
        assert users, f"{name} is injected but no inventory or playbook looks it up"
    for template in TEMPLATES:
        assert not template.get("extra_vars"), "job template extra_vars: check them here too"


def test_the_injected_kubeconfig_is_the_input_unchanged_in_a_private_file(tmp_path):
    with open(EXAMPLE_KUBECONFIG) as handle:
        text = handle.read()
    env, files = _injected(tmp_path, text)
    assert list(env) == ["SEGMENTED_REGISTRY_KUBECONFIG", "SEGMENTED_REGISTRY_CA_BUNDLE"]
    with open(env["SEGMENTED_REGISTRY_CA_BUNDLE"]) as handle, open(EXAMPLE_CA_BUNDLE) as example:
        assert handle.read() == example.read()
    path = env["SEGMENTED_REGISTRY_KUBECONFIG"]
    assert path == files["template.kubeconfig"] and os.path.dirname(path) == str(tmp_path / "private" / "env")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with open(path) as handle:
        assert handle.read() == text


def _awx_host_auth(kubeconfig_path):
    """Each host of inventories/awx and its segmented_registry_k8s_auth as Ansible resolves it in a
    job where the credential set SEGMENTED_REGISTRY_KUBECONFIG (or not, when None)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    env.pop("SEGMENTED_REGISTRY_KUBECONFIG", None)
    if kubeconfig_path:
        env["SEGMENTED_REGISTRY_KUBECONFIG"] = kubeconfig_path
    process = subprocess.run([os.path.join(VENV_BIN, "ansible"), "all", "-i", awx.AWX_INVENTORY, "-m",
                              "ansible.builtin.debug", "-a", "var=segmented_registry_k8s_auth"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    hosts = json.loads(process.stdout)["plays"][0]["tasks"][0]["hosts"]
    return {host: result["segmented_registry_k8s_auth"] for host, result in hosts.items()}


def test_the_injected_kubeconfig_has_a_context_for_every_host_of_the_awx_inventory(tmp_path):
    with open(EXAMPLE_KUBECONFIG) as handle:
        env, _files = _injected(tmp_path, handle.read())
    path = env["SEGMENTED_REGISTRY_KUBECONFIG"]
    contexts = {c["name"] for c in awx.load_yaml(path)["contexts"]}
    auth = _awx_host_auth(path)
    inventory_hosts = set()
    for group in awx.load_yaml(os.path.join(awx.AWX_INVENTORY, "hosts.yml"))["all"]["children"].values():
        inventory_hosts |= set(group["hosts"])
    assert set(auth) == inventory_hosts and len(inventory_hosts) == 5
    for host, options in auth.items():
        assert set(options) == {"kubeconfig", "context"}, (host, options)
        assert options["kubeconfig"] == path, host
        assert options["context"] in contexts, f"{host}: no context {options['context']} in the credential"
        # the kubernetes client takes that file and context as it is (no request is sent)
        client = kconfig.new_client_from_config(config_file=path, context=options["context"])
        assert client.configuration.host.startswith("https://")
    assert len({options["context"] for options in auth.values()}) == len(auth), "two hosts share a context"


def _validate(injected):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    for name in ("SEGMENTED_REGISTRY_KUBECONFIG", "SEGMENTED_REGISTRY_CA_BUNDLE"):
        env.pop(name, None)
    env.update(injected)
    return subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", awx.AWX_INVENTORY,
                           os.path.join(REPO, "playbooks", "validate.yml"), "-e", "segmented_registry_check_reachable=false"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)


def test_the_awx_inventory_validates_with_the_credential_and_says_what_is_missing_without(tmp_path):
    with open(EXAMPLE_KUBECONFIG) as handle:
        env, _files = _injected(tmp_path, handle.read())
    good = _validate(env)
    assert good.returncode == 0, good.stdout[-3000:]
    assert f"registry cluster registry-cluster (kubeconfig {env['SEGMENTED_REGISTRY_KUBECONFIG']}" in " ".join(
        good.stdout.split())
    missing = _validate({})
    assert missing.returncode != 0
    text = " ".join(missing.stdout.split())
    assert "registry-cluster: segmented_registry_k8s_auth.kubeconfig" in text
    # without the credential's CA file, the environment that names one says so
    assert "segmented_registry_environments[1] (uat): ca_cert" in text


# --- awx/configure.yml ------------------------------------------------------------------------

def _documented_options(path):
    with open(path) as handle:
        source = handle.read()
    doc = yaml.safe_load(re.search(r"DOCUMENTATION = r?(?:'''|\"\"\")(.*?)(?:'''|\"\"\")", source, re.S).group(1))
    return doc


def _module_options(module):
    """The options an awx.awx module takes: its own and its doc fragments' (awx.awx.auth)."""
    doc = _documented_options(os.path.join(AWX_MODULES, module + ".py"))
    options = set(doc["options"])
    fragments = doc.get("extends_documentation_fragment") or []
    for fragment in [fragments] if isinstance(fragments, str) else fragments:
        assert fragment.startswith("awx.awx."), fragment
        path = os.path.join(AWX_MODULES, "..", "doc_fragments", fragment.split(".")[2] + ".py")
        options |= set(_documented_options(path)["options"])
    return options


def test_configure_gives_each_awx_module_only_options_it_takes():
    plays = awx.load_yaml(os.path.join(awx.AWX, "configure.yml"))
    used = set()
    for task in plays[0]["tasks"]:
        for key, args in task.items():
            if key.startswith("awx.awx."):
                module = key.split(".")[-1]
                used.add(module)
                assert set(args) <= _module_options(module), (module, set(args) - _module_options(module))
    assert used == {"credential_type", "credential", "execution_environment", "project", "inventory",
                    "inventory_source", "job_template", "schedule"}
    defaults = plays[0]["module_defaults"]["group/awx.awx.controller"]
    assert set(defaults) <= _module_options("job_template")
    # nothing secret in the objects as code: the controller's password and token are variables
    assert all("{{" in value for value in defaults.values())


def test_configure_loads_the_credential_type_and_the_job_templates_it_is_checked_against():
    plays = awx.load_yaml(os.path.join(awx.AWX, "configure.yml"))
    assert plays[0]["vars_files"] == ["job_templates.yml"]
    assert "credential_types/segmented_registry_kubeconfig.yml" in plays[0]["vars"]["segmented_registry_awx_credential_type"]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    process = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "--syntax-check",
                              os.path.join(awx.AWX, "configure.yml")], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stdout + process.stderr


# --- inventories/example and inventories/awx: complete, and CA files from the credential -------

EXAMPLE_INVENTORY = os.path.join(REPO, "inventories", "example")


def _resolve(inventory, expression, env_update=None, host="registry-cluster"):
    """What ``expression`` gives on ``host`` of ``inventory`` (Ansible templates it, no network)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    for name in ("SEGMENTED_REGISTRY_KUBECONFIG", "SEGMENTED_REGISTRY_CA_BUNDLE"):
        env.pop(name, None)
    env.update(env_update or {})
    process = subprocess.run([os.path.join(VENV_BIN, "ansible"), host, "-i", inventory, "-m", "ansible.builtin.debug",
                              "-a", "msg={{ " + expression + " }}"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    return json.loads(process.stdout)["plays"][0]["tasks"][0]["hosts"][host]["msg"]


CA_PATHS = ("(segmented_registry_environments | selectattr('ca_cert', 'defined') | map(attribute='ca_cert') | list)"
            " + [segmented_registry_reconcile_integrated_ca_cert]")


def test_in_an_awx_job_every_ca_path_is_the_file_the_credential_injected(tmp_path):
    with open(EXAMPLE_KUBECONFIG) as handle:
        env, _files = _injected(tmp_path, handle.read())
    paths = _resolve(awx.AWX_INVENTORY, CA_PATHS, env)
    assert paths and set(paths) == {env["SEGMENTED_REGISTRY_CA_BUNDLE"]}, paths
    # the same inventory outside a job names no path of its own (nothing that would not exist in the EE)
    assert set(_resolve(awx.AWX_INVENTORY, CA_PATHS)) == {""}


@pytest.mark.parametrize("inventory", [EXAMPLE_INVENTORY, awx.AWX_INVENTORY], ids=["example", "awx"])
def test_the_inventory_has_what_the_roles_require_and_the_interpreter_that_has_the_requirements(inventory):
    """Every option a role's argument spec requires (the token server's image and route host
    among them), and ansible_python_interpreter: the Python that runs ansible-playbook (the
    execution environment's in AWX), where the collection's requirements are installed."""
    required = set()
    for role in os.listdir(os.path.join(REPO, "roles")):
        specs = awx.load_yaml(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"))["argument_specs"]
        for spec in specs.values():
            required |= {name for name, option in spec["options"].items() if option.get("required")}
    assert {"registry_cluster_token_server_image", "registry_cluster_token_server_route_host"} <= required
    defined = _resolve(inventory, "[" + ", ".join(f"{name} is defined" for name in sorted(required)) + "]")
    assert dict(zip(sorted(required), defined)) == {name: True for name in sorted(required)}
    for host in ("registry-cluster", "test-cluster", "legacy-cluster"):
        assert _resolve(inventory, "ansible_python_interpreter == ansible_playbook_python", host=host) is True


def test_the_example_inventory_validates_with_nothing_missing():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    process = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", EXAMPLE_INVENTORY,
                              "segmented.registry.validate", "-e", "segmented_registry_check_reachable=false",
                              # the one value the example leaves to the user's vault (hosts.yml, prod-cluster)
                              "-e", "vault_prod_cluster_token=from-the-vault"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert process.returncode == 0, process.stdout[-3000:]
    assert "failed=0" in process.stdout


# --- what a launch asks, and when the schedules run, pinned: a change of either is a change of the
# interface AWX users see, so it is made here too, on purpose ----------------------------------

PROMOTE_QUESTIONS = [("project", "text", True, 1, 63, None, None), ("image", "text", True, 3, 320, None, None),
                     ("env", "multiplechoice", True, None, None, "test\nuat\nprod", None)]
OPTIONAL_TEXT = ("text", False, 0, 1024, None, None)
PINNED_SURVEYS = {
    "Segmented registry - site": [("project",) + OPTIONAL_TEXT],
    "Segmented registry - promote": PROMOTE_QUESTIONS,
    "Segmented registry - demote": PROMOTE_QUESTIONS,
    "Segmented registry - rollback": PROMOTE_QUESTIONS,
    "Segmented registry - reconcile": [("project",) + OPTIONAL_TEXT, ("env",) + OPTIONAL_TEXT,
                                       ("stream", "text", False, 0, 255, None, None), ("tag", "text", False, 0, 128, None, None)],
    "Segmented registry - audit": [("project",) + OPTIONAL_TEXT, ("select",) + OPTIONAL_TEXT,
                                   ("fail_on_drift", "multiplechoice", False, None, None, "false\ntrue", "false")],
    "Segmented registry - credentials": [("credentials_clusters",) + OPTIONAL_TEXT,
                                         ("credentials_duration", "integer", False, 600, 31536000, None, None),
                                         ("credentials_renew_before", "integer", False, 0, 31535999, None, None)],
    "Segmented registry - rotate credentials": [("credentials_clusters",) + OPTIONAL_TEXT,
                                                ("grace", "integer", False, 0, 86400, None, 600)],
}
PINNED_SCHEDULES = {
    "Segmented registry - reconcile": ("DTSTART:20260101T000000Z RRULE:FREQ=HOURLY;INTERVAL=1", {}),
    "Segmented registry - credentials": ("DTSTART:20260101T030000Z RRULE:FREQ=DAILY;INTERVAL=1", {}),
}


def test_every_survey_asks_the_pinned_questions():
    asked = {template["name"]: [(q["variable"], q["type"], q.get("required"), q.get("min"), q.get("max"),
                                 q.get("choices"), q.get("default")) for q in template.get("survey") or []]
             for template in TEMPLATES}
    assert asked == PINNED_SURVEYS
    with pytest.raises(ValueError):  # AWX refuses a promotion launched without the image
        awx.survey_extra_vars(awx.job_template("promote")["survey"], {"project": "p", "env": "test"})


def test_the_schedules_are_pinned():
    scheduled = {template["name"]: (template["schedule"]["rrule"], template["schedule"]["extra_data"])
                 for template in TEMPLATES if template.get("schedule")}
    assert scheduled == PINNED_SCHEDULES
