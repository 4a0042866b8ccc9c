"""The fleet tier is separate from the normal suite: tests marked ``fleet`` are skipped unless pytest
gets ``--fleet`` (tests/conftest.py), which scripts/test-fleet.sh passes and scripts/test.sh (what
.ci/run calls) does not; the node-pull lifecycle test is one body run on the lab's three consumers
and, marked fleet, on every consumer."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_PULLS = "tests/integration/test_node_pull_lifecycle.py"


def _read(path):
    with open(os.path.join(REPO, path)) as handle:
        return handle.read()


def _pytest(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider",
                           "-c", os.path.join(REPO, "pytest.ini"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def suite(tmp_path):
    """A folder with tests/conftest.py's hooks, one test marked fleet and one not."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_addoption, pytest_collection_modifyitems  # noqa: F401\n")
    (tmp_path / "test_tier.py").write_text("import pytest\n\n\n@pytest.mark.fleet\ndef test_on_the_fleet():\n    pass\n\n\n"
                                           "def test_anywhere():\n    pass\n")
    return tmp_path


def test_without_the_option_the_fleet_tests_are_skipped_saying_how_to_run_them(suite):
    run = _pytest("-rs", str(suite))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 passed, 1 skipped" in run.stdout, run.stdout[-2000:]
    assert "the fleet tier: bash scripts/test-fleet.sh" in run.stdout


def test_with_the_option_they_run(suite):
    run = _pytest("--fleet", str(suite))
    assert "2 passed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    run = _pytest("--fleet", "-m", "fleet", str(suite))
    assert "1 passed, 1 deselected" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]


def test_the_normal_suite_never_asks_for_the_fleet_tier_and_the_fleet_script_does():
    assert "--fleet" not in _read("scripts/test.sh")
    assert _read(".ci/run").strip().endswith("bash scripts/test.sh")
    script = _read("scripts/test-fleet.sh")
    assert "lab/labctl up --consumers \"$consumers\"" in script and "consumers=16" in script
    assert "python -m pytest -n 0 --durations=10 --fleet -m fleet tests/integration" in script
    assert "lab/labctl down; lab/labctl up --consumers 3" in script  # how to return, printed at the end


def test_the_node_pull_lifecycle_is_one_test_on_the_labs_three_and_marked_fleet_on_every_consumer():
    listed = _pytest("--collect-only", "-q", NODE_PULLS)
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-2000:]
    assert f"{NODE_PULLS}::test_rotations_and_a_renewal_never_fail_a_node_pull[three]" in listed.stdout
    fleet = _pytest("--collect-only", "-q", "-m", "fleet", NODE_PULLS)
    assert [line for line in fleet.stdout.splitlines() if "::" in line] == [
        f"{NODE_PULLS}::test_rotations_and_a_renewal_never_fail_a_node_pull[fleet]"], fleet.stdout[-3000:]
