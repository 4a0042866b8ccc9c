"""awx/execution-environment.yml through `ansible-builder create` (no container engine needed): the
Containerfile and build context hold this collection, built from the repository, its collection
dependencies with galaxy.yml's ranges, and the Python requirements; the context's own
introspection script, run on the collection installed from the context's tarball, finds every
Python requirement (the collection's meta/execution-environment.yml at work)."""
import os
import re
import subprocess
import sys
import tarfile

import pytest
import yaml

from tests import awx_as_code as awx

REPO = awx.REPO
VENV_BIN = os.path.dirname(sys.executable)
EE_FILE = os.path.join(awx.AWX, "execution-environment.yml")


def _requirements(path):
    with open(path) as handle:
        return [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]


@pytest.fixture(scope="module")
def galaxy():
    return awx.load_yaml(os.path.join(REPO, "galaxy.yml"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The EE's build context (``awx_as_code.builder_create``): (context folder, definition, tarball
    name, process)."""
    return awx.builder_create(tmp_path_factory.mktemp("ee"), EE_FILE)


def test_ansible_builder_creates_the_build_context(built):
    context, definition, _tarball, process = built
    assert process.returncode == 0, process.stdout + process.stderr
    assert "No matches" not in process.stdout + process.stderr, "an additional build file is missing"
    assert definition["version"] == 3
    assert os.path.isfile(context / "Containerfile")


def test_the_context_holds_the_collection_built_from_the_repository(built, galaxy):
    context, definition, tarball, _process = built
    collections = definition["dependencies"]["galaxy"]["collections"]
    ours = [c for c in collections if c.get("type") == "file"]
    # the requirement and the copied file name the tarball of galaxy.yml's version (bump both)
    assert [c["name"] for c in ours] == [f"collections/{tarball}"]
    assert [(f["src"], f["dest"]) for f in definition["additional_build_files"]] == [(f"dist/{tarball}", "collections")]
    path = context / "_build" / "collections" / tarball
    with tarfile.open(path) as archive:
        names = set(archive.getnames())
    for member in ("MANIFEST.json", "plugins/modules/promote.py", "plugins/module_utils/kube.py",
                   "roles/registry_cluster/tasks/main.yml", "playbooks/promote.yml", "meta/runtime.yml",
                   "meta/execution-environment.yml", "requirements.txt"):
        assert member in names, member
    assert not [n for n in names if n.startswith(("lab/", "tests/", ".venv/"))]
    with open(context / "_build" / "requirements.yml") as handle:
        galaxy_requirements = yaml.safe_load(handle)
    assert galaxy_requirements["collections"] == collections


def test_the_collection_dependencies_have_the_ranges_of_galaxy_yml(built, galaxy):
    _context, definition, _tarball, _process = built
    named = {c["name"]: c.get("version") for c in definition["dependencies"]["galaxy"]["collections"]
             if c.get("type") != "file"}
    assert named == galaxy["dependencies"]
    # no requirements.yml at the project root: AWX's project sync would install it from Galaxy
    # (collections/requirements.yml and requirements.yml both); galaxy.yml states the dependencies
    assert not os.path.exists(os.path.join(REPO, "requirements.yml"))
    assert not os.path.exists(os.path.join(REPO, "collections", "requirements.yml"))


def test_the_containerfile_installs_ansible_the_collections_and_the_python_requirements(built):
    context, _definition, _tarball, _process = built
    with open(context / "Containerfile") as handle:
        text = handle.read()
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', text, re.M).group(1).split()
    assert refs == ["ansible-core>=2.19,<2.20", "ansible-runner>=2.4,<2.5"]
    with open(os.path.join(REPO, "tests", "requirements.txt")) as handle:
        assert "ansible>=12.3,<13" in handle.read(), "ansible 12 is ansible-core 2.19: keep the EE on the tested core"
    assert "COPY _build /build" in text
    assert re.search(r"ansible-galaxy collection install .*-r requirements\.yml", text)
    assert "COPY _build/requirements.txt requirements.txt" in text
    assert re.search(r"introspect\.py introspect --user-pip=requirements\.txt", text)
    assert "FROM base AS final" in text and "COPY --from=galaxy /usr/share/ansible /usr/share/ansible" in text
    assert _requirements(context / "_build" / "requirements.txt") == _requirements(os.path.join(REPO, "requirements.txt"))


def test_introspection_of_the_installed_collection_finds_its_python_requirements(built, tmp_path):
    """What the builder stage does, without a container: install the collection from the context's
    tarball, then the context's introspect.py over it (kubernetes.core and community.crypto come
    from Galaxy in a real build; their own requirements are theirs)."""
    context, _definition, tarball, _process = built
    # not this checkout's ansible.cfg, whose collections path already has segmented.registry
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    installed = tmp_path / "collections"
    process = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--offline",
                              "--no-deps", "--force", "-p", str(installed), f"collections/{tarball}"],
                             cwd=context / "_build", env=env, capture_output=True, text=True, timeout=300, check=False)
    assert process.returncode == 0, process.stdout + process.stderr
    assert os.path.isfile(installed / "ansible_collections" / "segmented" / "registry" / "MANIFEST.json"), process.stdout
    process = subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                              str(installed)], capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stdout + process.stderr
    found = yaml.safe_load(process.stdout[process.stdout.index("---"):])["python"]
    from_collection = {line.split("#")[0].strip() for line in found if line.endswith("from collection segmented.registry")}
    # ansible-builder leaves out ansible-core itself and what it brings (PyYAML)
    expected = {r for r in _requirements(os.path.join(REPO, "requirements.txt"))
                if not r.lower().startswith(("pyyaml", "ansible-core"))}
    assert from_collection == expected, process.stdout
