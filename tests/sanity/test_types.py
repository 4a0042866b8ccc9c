"""One dialect, types and layout: mypy (mypy.ini) passes on plugins/, every function of module_utils
has annotated arguments and every public one a return type (ruff's ANN001 and ANN201), and the
formatted paths are exactly as ``ruff format`` writes them."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)

COLLECTION = "ansible_collections.segmented.registry"

#: module_utils is annotated throughout: ruff's ANN001 and ANN201 hold there, and mypy checks it.
ANNOTATED = ["plugins/module_utils"]

#: The rest of plugins/, checked by mypy as well (an unannotated function's body is not checked).
PLUGINS = ["plugins/action", "plugins/doc_fragments", "plugins/filter", "plugins/lookup", "plugins/modules"]

#: Kept as ``ruff format`` writes it (every plugin).
FORMATTED = ["plugins"]


def run(*command):
    process = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             check=False, timeout=600)
    return process.returncode, process.stdout


def mypy_targets(paths):
    """``-p package`` or ``-m module`` of the collection for each path of the repository."""
    targets = []
    for path in paths:
        name = ".".join([COLLECTION] + path.removesuffix(".py").split("/"))
        targets += ["-m", name] if path.endswith(".py") else ["-p", name]
    return targets


@pytest.mark.sanity
def test_mypy_passes():
    # what plugins/ imports from outside it (ansible-core, kubernetes.core) is read for its types, its
    # errors not shown
    returncode, output = run(sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--no-incremental",
                             "--follow-imports", "silent", *mypy_targets(ANNOTATED + PLUGINS))
    assert returncode == 0, output[-5000:]


@pytest.mark.sanity
def test_every_function_annotated():
    returncode, output = run(os.path.join(BIN, "ruff"), "check", "--no-cache", "--output-format", "concise",
                             "--select", "ANN001,ANN201", *ANNOTATED)
    assert returncode == 0, output[-5000:]


@pytest.mark.sanity
def test_formatted():
    returncode, output = run(os.path.join(BIN, "ruff"), "format", "--no-cache", "--diff", *FORMATTED)
    assert returncode == 0, output[-5000:]
