"""Run `ansible-lint` on the collection with the repository's .ansible-lint (profile production,
offline; lab/, tests/ and the other development folders excluded): `pytest -m sanity tests/sanity`.

It takes about half a minute and needs no network.
"""


import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.environ.get("VENV", os.path.join(REPO, ".venv"))  # as run-sanity.sh finds ansible-test
ANSIBLE_LINT = os.path.join(VENV, "bin", "ansible-lint")
CONFIG = os.path.join(REPO, ".ansible-lint")


@pytest.mark.sanity
def test_ansible_lint_production_profile():
    assert os.access(ANSIBLE_LINT, os.X_OK), f"{ANSIBLE_LINT} not found (pip install -r tests/requirements.txt)"
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(ANSIBLE_LINT), os.environ.get("PATH", "")]),
               NO_COLOR="1")
    process = subprocess.run([ANSIBLE_LINT, "--config-file", CONFIG, "--nocolor", "--format", "pep8"], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, text=True,
                             timeout=900)
    if process.returncode != 0:
        pytest.fail(f"ansible-lint exited {process.returncode}:\n{process.stdout[-10000:]}", pytrace=False)
