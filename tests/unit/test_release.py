"""The release: the collection tarball as `ansible-galaxy collection build` makes it from this
checkout (README, "Install"), and .github/workflows/release.yml, which builds it and the token
server image for each tag (the workflow cannot run here: no runner, no registry to push to).

The tarball holds what a user needs and nothing of the development set-up: the playbooks, roles,
plugins, the Python requirements (requirements.txt, with ansible-core's range), the AWX wrappers,
the example inventories, and components/token-server (its source and Containerfile: the image
roles/registry_cluster deploys is built from it). Installed from the tarball into an empty
collections path, the registry-cluster role without the image says how to build it from there.
"""
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)
WORKFLOW = os.path.join(REPO, ".github", "workflows", "release.yml")


def _galaxy():
    with open(os.path.join(REPO, "galaxy.yml")) as handle:
        return yaml.safe_load(handle)


def _clean_env(**extra):
    """The environment of a user's shell: no ANSIBLE_* of the suite (each command runs outside this
    checkout, so its ansible.cfg is not read either)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(PATH=VENV_BIN + os.pathsep + os.environ["PATH"], **extra)
    return env


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    process = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--output-path",
                              str(out), REPO], cwd=str(out), env=_clean_env(), capture_output=True, text=True,
                             timeout=300, check=False)
    assert process.returncode == 0, process.stdout + process.stderr
    galaxy = _galaxy()
    path = out / f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert os.listdir(out) == [path.name]
    return path


@pytest.fixture(scope="module")
def members(tarball):
    with tarfile.open(tarball) as archive:
        return set(archive.getnames())


def test_the_tarball_holds_the_token_server_source_and_its_containerfile(members):
    for name in ("Containerfile", "go.mod", "main.go", "internal/issuer/issuer.go", "README.md"):
        assert f"components/token-server/{name}" in members, name
    # built binaries stay out: the image builds its own
    assert "components/token-server/token-server" not in members


def test_the_tarball_holds_the_playbooks_roles_plugins_and_the_python_requirements(members):
    for playbook in os.listdir(os.path.join(REPO, "playbooks")):
        if playbook.endswith(".yml"):
            assert f"playbooks/{playbook}" in members, playbook
    for role in os.listdir(os.path.join(REPO, "roles")):
        for part in ("tasks/main.yml", "defaults/main.yml", "meta/argument_specs.yml", "README.md"):
            assert f"roles/{role}/{part}" in members, (role, part)
    for name in ("MANIFEST.json", "FILES.json", "README.md", "requirements.txt", "meta/runtime.yml",
                 "meta/execution-environment.yml", "plugins/modules/promote.py", "plugins/module_utils/kube.py",
                 "awx/job_templates.yml", "awx/playbooks/site.yml", "inventories/example/hosts.yml",
                 "inventories/awx/hosts.yml", "changelogs/changelog.yaml"):
        assert name in members, name


def test_the_tarball_holds_no_development_file(members):
    dev_dirs = ("lab/", "tests/", "bench/", "scripts/", ".venv/", ".venv-oldest/", ".github/", ".ci/", ".git/",
                "inventories/lab/", ".pytest_cache/", "awx/dist/", "awx/context/")
    assert not sorted(m for m in members if m.startswith(dev_dirs) or m + "/" in dev_dirs)
    dev_files = ("ansible.cfg", "pytest.ini", ".gitignore", "requirements.yml")
    assert not sorted(m for m in members if m in dev_files)
    assert not sorted(m for m in members if "__pycache__" in m or m.endswith((".pyc", ".tar.gz", ".tgz")))


def test_the_python_requirements_pin_ansible_core_in_the_range_the_collection_claims(members, tarball):
    with tarfile.open(tarball) as archive:
        text = archive.extractfile("requirements.txt").read().decode()
        runtime = yaml.safe_load(archive.extractfile("meta/runtime.yml"))
    pins = [line.split("#")[0].strip() for line in text.splitlines() if line.startswith("ansible-core")]
    assert len(pins) == 1, pins
    oldest = re.fullmatch(r">=(\d+\.\d+)(?:\.0)?", runtime["requires_ansible"]).group(1)
    assert re.fullmatch(r"ansible-core>=" + re.escape(oldest) + r",<2\.\d+", pins[0]), pins[0]


def test_installed_from_the_tarball_the_role_without_the_image_says_how_to_build_it(tarball, tmp_path):
    """The tarball installed into an empty collections path, run from an empty directory (not this
    checkout): the registry-cluster role with registry_cluster_token_server_image empty (as an
    inventory that was not filled in leaves it) stops before anything is written, naming the
    variable and the installed component it builds from."""
    collections = tmp_path / "collections"
    env = _clean_env()
    process = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--offline",
                              "--no-deps", "-p", str(collections), str(tarball)], cwd=str(tmp_path), env=env,
                             capture_output=True, text=True, timeout=300, check=False)
    assert process.returncode == 0, process.stdout + process.stderr
    installed = collections / "ansible_collections" / "segmented" / "registry"
    assert os.path.isfile(installed / "components" / "token-server" / "Containerfile")
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    env = _clean_env(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
                     ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    process = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "segmented.registry.registry_cluster",
                              "-i", str(installed / "inventories" / "example"),
                              # the one value the example leaves to the user's vault (prod-cluster)
                              "-e", json.dumps({"registry_cluster_token_server_image": "",
                                                "vault_prod_cluster_token": "from-the-vault"})],
                             cwd=str(run_dir), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert process.returncode != 0
    result = json.loads(process.stdout)
    failed = [(task["task"]["name"], host, outcome) for play in result["plays"] for task in play["tasks"]
              for host, outcome in task["hosts"].items() if outcome.get("failed")]
    assert [(name, host) for name, host, _outcome in failed] == [
        ("segmented.registry.registry_cluster : Check that the token server's image is set", "registry-cluster")], failed
    message = " ".join(failed[0][2]["msg"].split())
    assert message.startswith("registry_cluster_token_server_image is empty."), message
    assert f"podman build -t <registry the cluster pulls from>/segmented-registry/token-server:<version> " \
           f"{installed / 'components' / 'token-server'}`" in message, message
    assert "Nothing was changed." in message
    assert result["stats"]["registry-cluster"]["changed"] == 0


def test_the_release_workflow_builds_the_tarball_and_the_token_server_image_for_each_tag():
    with open(WORKFLOW) as handle:
        workflow = yaml.safe_load(handle)
    # YAML 1.1 reads the key `on` as true
    assert workflow[True] == {"push": {"tags": ["v*"]}}
    steps = workflow["jobs"]["release"]["steps"]
    runs = [step.get("run", "") for step in steps]
    joined = "\n".join(runs)
    assert "pip install -r requirements.txt" in joined
    assert "ansible-galaxy collection build --output-path dist ." in joined
    build = [run for run in runs if "podman build" in run]
    assert len(build) == 1 and build[0].split()[-1] == "components/token-server"
    assert any("podman push" in run for run in runs)
    assert any('"v${version}" = "${GITHUB_REF_NAME}"' in run for run in runs), "the tag is checked against galaxy.yml"
    assert workflow["permissions"] == {"contents": "write", "packages": "write"}
