"""The token server's Go tests (components/token-server), run from the suite's pytest command.

Go is required: it builds the lab and the component, so a machine without it fails here rather
than skipping the component's tests.
"""

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COMPONENT = os.path.join(REPO, "components", "token-server")


def _run(tool, *args):
    """Run Go's ``tool`` (go, gofmt: from the Go installation on PATH) in the component."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not on PATH: the token server's tests need Go 1.26 (scripts/setup.sh checks for it)")
    binary = os.path.join(os.path.dirname(os.path.realpath(go)), tool)
    env = dict(os.environ, GOFLAGS="-buildvcs=false", CGO_ENABLED="0")
    return subprocess.run([binary, *args], cwd=COMPONENT, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def test_go_tests_pass():
    result = _run("go", "test", "-count=1", "./...")
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]


def test_go_sources_are_formatted_and_vetted():
    fmt = _run("gofmt", "-l", ".")
    assert fmt.returncode == 0 and fmt.stdout == "", f"gofmt -l lists: {fmt.stdout}{fmt.stderr}"
    vet = _run("go", "vet", "./...")
    assert vet.returncode == 0, vet.stdout + vet.stderr
