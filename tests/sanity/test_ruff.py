"""One dialect: ruff's checks (ruff.toml: pyflakes, pycodestyle's errors, flake8-bugbear) pass on every
Python file of the repository: the collection, the lab, the benchmarks, the scripts and the tests."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.sanity
def test_ruff_check_passes():
    process = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ruff"), "check", "--no-cache",
                              "--output-format", "concise", "."], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, check=False, timeout=300)
    assert process.returncode == 0, process.stdout[-5000:]
