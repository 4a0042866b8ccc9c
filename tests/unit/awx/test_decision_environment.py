"""awx/decision-environment.yml through `ansible-builder create` (no container engine needed): the
decision environment of the controller's rulebook activation holds ansible-rulebook at the version
the tests run, Java 17 for its rule engine, this collection (its event source and rulebooks) built
from the repository with galaxy.yml's dependencies, on the execution environment's ansible-core."""
import os
import re
import tarfile

import pytest

from tests import awx_as_code as awx

DE_FILE = os.path.join(awx.AWX, "decision-environment.yml")
EE_FILE = os.path.join(awx.AWX, "execution-environment.yml")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return awx.builder_create(tmp_path_factory.mktemp("de"), DE_FILE)


def _requirement(path, name):
    with open(path) as handle:
        return [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip().startswith(name)]


def test_ansible_builder_creates_the_build_context(built):
    context, definition, _tarball, process = built
    assert process.returncode == 0, process.stdout + process.stderr
    assert "No matches" not in process.stdout + process.stderr, "an additional build file is missing"
    assert definition["version"] == 3
    assert os.path.isfile(context / "Containerfile")


def test_ansible_rulebook_is_the_tested_version_and_java_17_is_installed(built):
    context, definition, _tarball, _process = built
    tested = _requirement(os.path.join(awx.REPO, "tests", "requirements.txt"), "ansible-rulebook")
    assert tested and definition["dependencies"]["python"] == tested
    with open(context / "_build" / "requirements.txt") as handle:
        assert tested[0] in handle.read()
    with open(context / "_build" / "bindep.txt") as handle:
        assert "java-17-openjdk-headless [platform:rpm]" in handle.read()


def test_the_context_holds_the_collection_with_its_event_source_and_rulebooks(built):
    context, definition, tarball, _process = built
    ours = [c["name"] for c in definition["dependencies"]["galaxy"]["collections"] if c.get("type") == "file"]
    assert ours == [f"collections/{tarball}"]
    assert [(f["src"], f["dest"]) for f in definition["additional_build_files"]] == [(f"dist/{tarball}", "collections")]
    with tarfile.open(context / "_build" / "collections" / tarball) as archive:
        names = set(archive.getnames())
    for member in ("extensions/eda/plugins/event_source/approvals.py", "extensions/eda/rulebooks/promote_on_approval.yml",
                   "extensions/eda/rulebooks/promote_on_approval_controller.yml", "plugins/module_utils/approval/watcher.py"):
        assert member in names, member


def test_the_same_ansible_core_python_and_collection_dependencies_as_the_execution_environment(built):
    _context, definition, _tarball, _process = built
    ee = awx.load_yaml(EE_FILE)
    for key in ("python_interpreter", "ansible_core", "ansible_runner"):
        assert definition["dependencies"][key] == ee["dependencies"][key], key
    assert definition["dependencies"]["galaxy"] == ee["dependencies"]["galaxy"]
    assert definition["images"] == ee["images"]
    version = awx.load_yaml(os.path.join(awx.REPO, "galaxy.yml"))["version"]
    assert definition["options"]["tags"] == [f"segmented-registry-de:{version}"]
    with open(DE_FILE) as handle:
        assert re.search(r"segmented-registry-de:" + re.escape(version), handle.read()), "the build command's tag"
