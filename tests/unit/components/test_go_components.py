"""The Go components' own tests (components/token-server, components/copier), run from the suite's
pytest command: go test, gofmt and go vet in each.

Go is required: it builds the lab and the components, so a machine without it fails here rather
than skipping the components' tests. The copier's modules come through the Go module proxy (pinned
by its go.sum), as the lab's build fetches them.
"""

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COMPONENTS = ("token-server", "copier")


def _run(component, tool, *args):
    """Run Go's ``tool`` (go, gofmt: from the Go installation on PATH) in ``component``."""
    go = shutil.which("go")
    if go is None:
        pytest.fail(f"go is not on PATH: the {component}'s tests need Go 1.26 (scripts/setup.sh checks for it)")
    binary = os.path.join(os.path.dirname(os.path.realpath(go)), tool)
    env = dict(os.environ, GOFLAGS="-buildvcs=false", CGO_ENABLED="0")
    return subprocess.run([binary, *args], cwd=os.path.join(REPO, "components", component), env=env, capture_output=True, text=True,
                          timeout=900, check=False)


@pytest.mark.parametrize("component", COMPONENTS)
def test_go_tests_pass(component):
    result = _run(component, "go", "test", "-count=1", "./...")
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]


@pytest.mark.parametrize("component", COMPONENTS)
def test_go_sources_are_formatted_and_vetted(component):
    fmt = _run(component, "gofmt", "-l", ".")
    assert fmt.returncode == 0 and fmt.stdout == "", f"gofmt -l lists: {fmt.stdout}{fmt.stderr}"
    vet = _run(component, "go", "vet", "./...")
    assert vet.returncode == 0, vet.stdout + vet.stderr
