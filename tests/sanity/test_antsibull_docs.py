"""The collection's documentation renders as antsibull-docs renders every collection's:
`antsibull-docs lint-collection-docs --plugin-docs .` passes (module and role docs, the guides of
docs/docsite/extra-docs.yml, docs/docsite/links.yml).

antsibull-docs copies the collection and its dependencies (kubernetes.core, community.crypto) into a
temporary collections tree, each one the way its VCS sees it: a collection inside a Git work tree is
copied as `git ls-files` lists it. scripts/setup.sh installs the dependencies with the `ansible`
package into .venv, inside this checkout and ignored by Git, so they would be copied empty and every
module using kubernetes.core's doc fragment would fail ("unknown doc_fragment(s)"). The test stops
Git's repository search at the directory that holds the dependencies' `ansible_collections`
(GIT_CEILING_DIRECTORIES), and runs with an empty HOME, as on a fresh CI machine: nothing from a
~/.ansible of the developer's."""

import json
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
DEPENDENCIES = ("kubernetes.core", "community.crypto")


def collection_roots(env):
    """The directories holding `ansible_collections` where ansible-galaxy finds each dependency."""
    roots = []
    for name in DEPENDENCIES:
        process = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "list", name, "--format", "json"],
                                 cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 check=False, timeout=120)
        assert process.returncode == 0, process.stderr[-2000:]
        found = [path for path, collections in json.loads(process.stdout).items() if name in collections]
        assert found, f"{name} is not installed: run scripts/setup.sh"
        roots.append(os.path.dirname(found[0]))
    return roots


@pytest.mark.sanity
def test_lint_collection_docs(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    roots = collection_roots(env)
    env["GIT_CEILING_DIRECTORIES"] = os.pathsep.join(roots)
    process = subprocess.run([os.path.join(BIN, "antsibull-docs"), "lint-collection-docs", "--plugin-docs", "."],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             check=False, timeout=600)
    assert process.returncode == 0 and not process.stdout.strip(), process.stdout[-5000:]


#: Labels of the Ansible docsite, where the collection's pages link to kubernetes.core's and Ansible's own
#: pages; offline (no intersphinx inventories here or in CI) they cannot resolve, and only they may not.
EXTERNAL_LABELS = re.compile(r"undefined label: '(ansible_collections\.(?!segmented\.registry\.)[\w.]+|common_return_values|"
                             r"ansible_configuration_settings|action_plugins)'")


def unexpected_warnings(log):
    """The build's warnings other than links into the Ansible docsite."""
    return [line for line in log.splitlines() if "WARNING" in line and not EXTERNAL_LABELS.search(line)]


@pytest.mark.sanity
def test_the_docsite_builds_without_warnings(tmp_path):
    """The docsite as antsibull-docs builds it for every collection (sphinx-init, then `collection
    --use-current` and sphinx-build), from the installed collection (.venv/collections links this
    checkout in), offline: intersphinx is left out, and a warning is only allowed for a link into the
    Ansible docsite."""
    env = dict(os.environ, HOME=str(tmp_path / "home"), PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".venv", "collections"))
    (tmp_path / "home").mkdir()
    site = tmp_path / "site"
    site.mkdir()
    init = subprocess.run([os.path.join(BIN, "antsibull-docs"), "sphinx-init", "--use-current", "--fail-on-error",
                           "--dest-dir", str(site), "segmented.registry"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False, timeout=300)
    assert init.returncode == 0, init.stdout[-5000:]
    conf = site / "conf.py"
    conf.write_text(conf.read_text(encoding="utf-8").replace("'sphinx.ext.intersphinx', ", "")
                    + "\nintersphinx_mapping = {}\n", encoding="utf-8")
    (site / "rst").mkdir(exist_ok=True)
    (site / "rst").chmod(0o755)
    steps = [[os.path.join(BIN, "antsibull-docs"), "--config-file", "antsibull-docs.cfg", "collection", "--cleanup",
              "everything", "--fail-on-error", "--use-current", "--dest-dir", "rst", "segmented.registry"],
             [os.path.join(BIN, "sphinx-build"), "-M", "html", "rst", "build", "-c", ".", "-q"]]
    log = ""
    for step in steps:
        process = subprocess.run(step, cwd=site, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 check=False, timeout=600)
        log += process.stdout
        assert process.returncode == 0, process.stdout[-5000:]
    assert not unexpected_warnings(log), "\n".join(unexpected_warnings(log))[-5000:]
    assert (site / "build" / "html" / "collections" / "segmented" / "registry" / "docsite"
            / "guide_inventory_reference.html").exists()
