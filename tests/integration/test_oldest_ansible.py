"""The oldest ansible-core the collection claims (``requires_ansible`` in meta/runtime.yml) runs
its jobs on the lab: .venv-oldest (scripts/setup.sh) holds that ansible-core, latest patch, with
the collection's Python requirements and no ``ansible`` package; kubernetes.core and
community.crypto are the ones .venv's ``ansible`` package carries. The rest of the suite runs the
newest ansible-core (.venv)."""
import json
import os
import re
import shlex
import subprocess
import sysconfig

import pytest
from kubernetes import client as kclient

from tests.integration import test_promote as promote_tests
from tests.integration.conftest import REPO
from tests.integration.runs import task_result

OLDEST = os.path.join(REPO, ".venv-oldest", "bin")
NEWEST = os.path.join(REPO, ".venv", "bin")
SITE = sysconfig.get_paths()["purelib"]  # .venv's (pytest runs there): the ansible package's ansible_collections
COLLECTIONS = os.pathsep.join([os.path.join(REPO, ".venv", "collections"), SITE])
ENV = {"ANSIBLE_COLLECTIONS_PATH": COLLECTIONS}

namespace = promote_tests.namespace  # the fixture: a fresh pm-<unique> namespace on the registry cluster


def floor():
    """The "2.17" of ``requires_ansible: ">=2.17.0"``."""
    with open(os.path.join(REPO, "meta", "runtime.yml")) as handle:
        found = re.search(r'^requires_ansible: *">=(\d+\.\d+)(\.\d+)?"', handle.read(), re.M)
    assert found, "meta/runtime.yml: no requires_ansible: \">=X.Y.Z\""
    return found.group(1)


def run(tool, *args, venv=OLDEST):
    """A command-line tool of .venv-oldest (or of .venv) with the collections path of ENV."""
    return subprocess.run([os.path.join(venv, tool), *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=REPO, env=dict(os.environ, **ENV))


def run_oldest(run_playbook, playbook, check=False, **options):
    """conftest's run_playbook (ansible-runner, as AWX runs a job) with .venv-oldest's
    ansible-playbook: ansible-runner runs a ``binary`` as given, so the playbook goes on its
    command line."""
    cmdline = " ".join(["--check"] * check + [shlex.quote(os.path.join(REPO, playbook))])
    return run_playbook(playbook, binary=os.path.join(OLDEST, "ansible-playbook"), cmdline=cmdline, envvars=ENV,
                        **options)


@pytest.fixture(scope="module")
def oldest():
    """The version of .venv-oldest's ansible-core, checked to be the floor's latest patch and to see
    the collections it is meant to see."""
    if not os.access(os.path.join(OLDEST, "ansible-playbook"), os.X_OK):
        pytest.fail(".venv-oldest is missing: run scripts/setup.sh")
    version = run("ansible", "--version")
    assert version.returncode == 0, version.stderr
    core = re.search(r"\[core (\d+\.\d+)\.(\d+)", version.stdout)
    assert core and core.group(1) == floor(), (floor(), version.stdout)
    listing = run("ansible-galaxy", "collection", "list", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    found = {name: info["version"] for path in json.loads(listing.stdout).values() for name, info in path.items()}
    for name in ("segmented.registry", "kubernetes.core", "community.crypto"):
        assert name in found, (name, found)
    return f"{core.group(1)}.{core.group(2)}"


def names(kind):
    folder = os.path.join(REPO, "plugins", kind)
    return sorted("segmented.registry." + name[:-3] for name in os.listdir(folder)
                  if name.endswith(".py") and name != "__init__.py")


def option_paths(options, prefix=""):
    paths = set()
    for name, spec in (options or {}).items():
        paths.add(prefix + name)
        paths |= option_paths(spec.get("suboptions"), prefix + name + ".")
    return paths


@pytest.mark.parametrize("kind,plugin_type", [("modules", "module"), ("lookup", "lookup")])
def test_every_plugin_doc_parses_under_the_oldest_ansible_core(oldest, kind, plugin_type):
    plugins = names(kind)
    docs = run("ansible-doc", "-t", plugin_type, "--json", *plugins)
    assert docs.returncode == 0 and not docs.stderr.strip(), (oldest, docs.stderr[-3000:])
    parsed = json.loads(docs.stdout)
    assert sorted(parsed) == plugins, (oldest, sorted(parsed))
    newest = run("ansible-doc", "-t", plugin_type, "--json", *plugins, venv=NEWEST)
    assert newest.returncode == 0, newest.stderr[-3000:]
    newest = json.loads(newest.stdout)
    for plugin in plugins:
        doc = parsed[plugin]["doc"]
        assert doc.get("short_description") and doc.get("options"), (oldest, plugin)
        # the doc fragments and YAML anchors resolve to the same options as under the newest one
        assert option_paths(doc["options"]) == option_paths(newest[plugin]["doc"]["options"]), (oldest, plugin)


def test_validate_and_promote_run_under_the_oldest_ansible_core(oldest, lab, namespace, run_playbook):
    pushed = lab.push(namespace, "app", "v1", 2, promote_tests.SMALL)
    validated = run_oldest(run_playbook, "playbooks/validate.yml")
    assert validated.status == "successful", (oldest, validated.stdout_text[-3000:])
    summary = task_result(validated, "Check the inventory and reach the clusters")
    reachable = {name: cluster["reachable"] for name, cluster in summary["clusters"].items()}
    assert reachable == dict.fromkeys(["registry", "test", "uat", "prod"], True), (oldest, summary["clusters"])

    promoted = run_oldest(run_playbook, "playbooks/promote.yml",
                          extravars={"project": namespace, "image": "app:v1", "env": "test"})
    assert promoted.status == "successful", (oldest, promoted.stdout_text[-3000:])
    result = task_result(promoted, "Promote: add test")
    assert result["changed"] and result["environments_after"] == ["test"], (oldest, result)
    assert lab.where(namespace)["test"]["tags"] == {f"{namespace}/app:v1": pushed["digest"]}


def test_registry_cluster_role_previews_a_key_rotation_under_the_oldest_ansible_core(oldest, lab, run_playbook):
    """The role in check mode, signing key rotation included: community.crypto's *_pipe modules
    run (they write nothing), every kubernetes.core task previews, the lab is left alone."""
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
    secret = core.read_namespaced_secret("token-server-signing", "segmented-registry").metadata.resource_version
    preview = run_oldest(run_playbook, "playbooks/registry_cluster.yml", check=True,
                         extravars={"registry_cluster_rotate_signing_key": True})
    assert preview.status == "successful", (oldest, preview.stdout_text[-3000:])
    ran = {(e["event_data"] or {}).get("task") for e in preview.events if e.get("event") == "runner_on_ok"}
    assert {"Make the private key", "Make the certificate signing request", "Self-sign the certificate"} <= ran
    assert core.read_namespaced_secret("token-server-signing",
                                       "segmented-registry").metadata.resource_version == secret, "check mode wrote"
