"""Drive `ansible-test sanity` from pytest: `pytest -m sanity tests/sanity`.

It takes one to two minutes and needs PyPI (each sanity test installs its own requirements
into a virtual environment of its own).
"""


import os
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run-sanity.sh")


@pytest.mark.sanity
def test_ansible_test_sanity():
    process = subprocess.run(["bash", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                             text=True, timeout=1800)
    lines = [line for line in process.stdout.splitlines()
             if line.startswith(("ERROR", "FATAL", "WARNING", "Running sanity test", "run-sanity"))]
    assert process.returncode == 0, "\n".join(lines) or process.stdout[-5000:]
