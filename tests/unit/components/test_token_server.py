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


def _go(*args):
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not on PATH: the token server's tests need Go 1.26 (scripts/setup.sh checks for it)")
    env = dict(os.environ, GOFLAGS="-buildvcs=false", CGO_ENABLED="0")
    return subprocess.run([go, *args], cwd=COMPONENT, env=env, capture_output=True, text=True, timeout=600)


def test_go_tests_pass():
    result = _go("test", "-count=1", "./...")
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]


def test_go_sources_are_formatted_and_vetted():
    fmt = subprocess.run([shutil.which("gofmt") or "gofmt", "-l", "."], cwd=COMPONENT, capture_output=True, text=True)
    assert fmt.returncode == 0 and fmt.stdout == "", f"gofmt -l lists: {fmt.stdout}{fmt.stderr}"
    vet = _go("vet", "./...")
    assert vet.returncode == 0, vet.stdout + vet.stderr
