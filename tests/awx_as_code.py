"""The AWX objects as code (awx/), read the way AWX reads them, for the unit and integration tests.

AWX itself cannot run here, so this module does, in a few lines each, what AWX does with them:

- ``inject``: what a job gets from a credential of a custom type (AWX's
  ``CredentialType.inject_credential``): each ``file`` injector rendered with the credential's
  inputs in a Jinja2 ``ImmutableSandboxedEnvironment`` and written, mode 0600, into the job's
  private data directory (``env/``); ``tower.filename`` (one file) or ``tower.filename.<name>``
  (``template.<name>``) is its path; then each ``env`` injector rendered in the same namespace.
- ``credential_type_problems``: the rules AWX enforces on a custom credential type.
- ``survey_extra_vars``: the extra variables a survey sends for given answers, refusing answers
  AWX's survey validation refuses.
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import types

import yaml
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AWX = os.path.join(REPO, "awx")
CREDENTIAL_TYPE = os.path.join(AWX, "credential_types", "segmented_registry_kubeconfig.yml")
JOB_TEMPLATES = os.path.join(AWX, "job_templates.yml")
AWX_INVENTORY = os.path.join(REPO, "inventories", "awx")

#: Environment variables AWX refuses in an ``env`` injector (besides any ``ANSIBLE_*``): the ones
#: the job's own environment is built from (a subset of AWX's ENV_BLOCKLIST).
ENV_BLOCKLIST = {"VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID",
                 "INVENTORY_UPDATE_ID", "AD_HOC_COMMAND_ID", "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES",
                 "CALLBACK_QUEUE", "CALLBACK_CONNECTION", "CACHE", "JOB_CALLBACK_DEBUG", "INVENTORY_HOSTVARS",
                 "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH", "SUPERVISOR_WEB_CONFIG_PATH"}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


def builder_create(root, definition_file):
    """The collection built as awx/README.md says (ansible-galaxy collection build --output-path
    awx/dist) into ``root``, beside a copy of the definition (execution or decision environment) and
    the requirements file it names by relative path, then `ansible-builder create`. Returns (context
    folder, definition, tarball name, process)."""
    venv_bin = os.path.dirname(sys.executable)
    definition = load_yaml(definition_file)
    name = os.path.basename(definition_file)
    os.makedirs(root / "awx")
    shutil.copy(definition_file, root / "awx" / name)
    python = definition["dependencies"]["python"]
    if isinstance(python, str):  # a file, by a path relative to the definition
        assert not os.path.isabs(python)
        shutil.copy(os.path.normpath(os.path.join(AWX, python)), os.path.normpath(os.path.join(root, "awx", python)))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    process = subprocess.run([os.path.join(venv_bin, "ansible-galaxy"), "collection", "build", "--force",
                              "--output-path", str(root / "awx" / "dist"), REPO],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert process.returncode == 0, process.stdout + process.stderr
    galaxy = load_yaml(os.path.join(REPO, "galaxy.yml"))
    tarball = f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert os.listdir(root / "awx" / "dist") == [tarball]
    context = root / "context"
    process = subprocess.run([os.path.join(venv_bin, "ansible-builder"), "create", "-f", f"awx/{name}",
                              "-c", str(context), "--output-filename", "Containerfile", "-v", "3"],
                             cwd=root, capture_output=True, text=True, timeout=300, check=False)
    return context, definition, tarball, process


def load_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def credential_type():
    return load_yaml(CREDENTIAL_TYPE)


def job_templates():
    return load_yaml(JOB_TEMPLATES)["segmented_registry_awx_job_templates"]


def job_template(name_suffix):
    """The job template whose name ends with `` - <name_suffix>``."""
    matches = [t for t in job_templates() if t["name"].endswith(" - " + name_suffix)]
    assert len(matches) == 1, f"one job template named ... - {name_suffix}, found {len(matches)}"
    return matches[0]


def _templates(injectors):
    for kind in ("file", "env", "extra_vars"):
        for key, value in (injectors.get(kind) or {}).items():
            yield kind, key, value


def credential_type_problems(definition):
    """What AWX would refuse in a custom credential type definition (empty: nothing)."""
    problems = []
    if definition.get("kind") not in ("cloud", "net"):
        problems.append(f"kind {definition.get('kind')!r}: custom types are cloud or net")
    fields = (definition.get("inputs") or {}).get("fields") or []
    ids = [field.get("id") for field in fields]
    for field in fields:
        if not field.get("id") or not field.get("label"):
            problems.append(f"input {field!r} needs an id and a label")
        if field.get("type", "string") not in ("string", "boolean"):
            problems.append(f"input {field.get('id')}: type {field.get('type')!r} is not string or boolean")
    if len(set(ids)) != len(ids):
        problems.append(f"duplicate input ids: {ids}")
    for required in (definition.get("inputs") or {}).get("required") or []:
        if required not in ids:
            problems.append(f"required input {required!r} is not an input")
    injectors = definition.get("injectors") or {}
    unknown = set(injectors) - {"file", "env", "extra_vars"}
    if unknown:
        problems.append(f"unknown injector kinds {sorted(unknown)}")
    file_labels = []
    for key in (injectors.get("file") or {}):
        if key == "template":
            file_labels.append(None)
        elif key.startswith("template.") and key.count(".") == 1 and key.split(".")[1].isidentifier():
            file_labels.append(key.split(".")[1])
        else:
            problems.append(f"file injector {key!r}: write template or template.<name>")
    if None in file_labels and len(file_labels) > 1:
        problems.append("a single file (template) and named files (template.<name>) cannot be mixed")
    for name in (injectors.get("env") or {}):
        if name.startswith("ANSIBLE_") or name in ENV_BLOCKLIST:
            problems.append(f"env injector {name}: AWX refuses it (reserved)")
    env = ImmutableSandboxedEnvironment()
    for kind, key, template in _templates(injectors):
        try:
            names = meta.find_undeclared_variables(env.parse(template))
        except Exception as exc:  # a template that does not parse
            problems.append(f"{kind} injector {key}: {exc}")
            continue
        for name in sorted(names - set(ids) - {"tower"}):
            problems.append(f"{kind} injector {key}: {name!r} is not an input of the type")
        if "tower.filename" in template:
            for label in _filename_refs(template):
                if label not in file_labels:
                    problems.append(f"{kind} injector {key}: tower.filename.{label} names no file injector")
    return problems


def _filename_refs(template):
    import re
    return [match or None for match in re.findall(r"tower\.filename(?:\.(\w+))?", template)]


def inject(definition, inputs, private_data_dir):
    """Do what AWX does with a credential of this type when a job starts: write the files into
    ``<private_data_dir>/env`` (0600) and return ``(env, files)``: the environment variables and
    the written paths by file label."""
    env_dir = os.path.join(private_data_dir, "env")
    os.makedirs(env_dir, exist_ok=True)
    sandbox = ImmutableSandboxedEnvironment()
    tower = types.SimpleNamespace()
    namespace = {"tower": tower}
    for field in definition["inputs"]["fields"]:
        value = inputs.get(field["id"])
        if field.get("type") == "boolean":
            namespace[field["id"]] = bool(value)
        elif value:  # AWX leaves empty inputs out of the namespace
            namespace[field["id"]] = value
    files = {}
    named = types.SimpleNamespace()
    for label, template in (definition["injectors"].get("file") or {}).items():
        data = sandbox.from_string(template).render(**namespace)
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w") as out:
            out.write(data)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        if "." in label:
            setattr(named, label.split(".")[1], path)
            tower.filename = named
        else:
            tower.filename = path
        files[label] = path
    env = {name: sandbox.from_string(template).render(**namespace)
           for name, template in (definition["injectors"].get("env") or {}).items()}
    return env, files


def survey_extra_vars(survey, answers):
    """The extra variables AWX passes to the playbook for these answers to ``survey`` (a list of
    questions): the answered variables, with the defaults of unanswered ones. Raises ValueError
    for what AWX's survey validation refuses."""
    by_variable = {question["variable"]: question for question in survey}
    unknown = set(answers) - set(by_variable)
    if unknown:
        raise ValueError(f"not survey variables: {sorted(unknown)}")
    extra_vars = {}
    for variable, question in by_variable.items():
        if variable in answers:
            value = answers[variable]
        elif "default" in question and question["default"] not in (None, ""):
            value = question["default"]
        elif question.get("required"):
            raise ValueError(f"{variable}: required")
        else:
            continue
        kind = question["type"]
        if kind in ("text", "textarea", "password"):
            if not isinstance(value, str):
                raise ValueError(f"{variable}: {kind} answers are strings")
            if question.get("required") and not value:
                raise ValueError(f"{variable}: required")
            if "min" in question and len(value) < question["min"] and (value or question.get("required")):
                raise ValueError(f"{variable}: shorter than {question['min']}")
            if "max" in question and len(value) > question["max"]:
                raise ValueError(f"{variable}: longer than {question['max']}")
        elif kind == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{variable}: integer answers are integers")
            if ("min" in question and value < question["min"]) or ("max" in question and value > question["max"]):
                raise ValueError(f"{variable}: out of range")
        elif kind == "multiplechoice":
            if value not in choices(question):
                raise ValueError(f"{variable}: {value!r} is not one of {choices(question)}")
        else:
            raise ValueError(f"{variable}: type {kind} is not handled here")
        extra_vars[variable] = value
    return extra_vars


def choices(question):
    value = question.get("choices") or []
    if isinstance(value, str):
        return [line for line in value.splitlines() if line.strip()]
    return list(value)
