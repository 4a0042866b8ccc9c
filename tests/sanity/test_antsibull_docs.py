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
