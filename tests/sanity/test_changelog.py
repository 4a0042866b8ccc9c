"""Release hygiene: the changelog fragments and changelogs/changelog.yaml pass `antsibull-changelog
lint`, and CHANGELOG.rst is exactly what `antsibull-changelog generate` makes of changelog.yaml (a
hand edit, or a release whose CHANGELOG.rst was not regenerated, fails)."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(os.path.dirname(sys.executable), "antsibull-changelog")


def run(*args, cwd=REPO):
    process = subprocess.run([TOOL, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             check=False, timeout=300)
    assert process.returncode == 0, process.stdout[-5000:]
    return process.stdout


@pytest.mark.sanity
def test_changelog_lints():
    assert os.path.isfile(os.path.join(REPO, "changelogs", "changelog.yaml"))
    output = run("lint")
    assert "ERROR" not in output, output


@pytest.mark.sanity
def test_changelog_rst_is_generated_from_changelog_yaml(tmp_path):
    for name in ("galaxy.yml", "CHANGELOG.rst"):
        shutil.copy(os.path.join(REPO, name), tmp_path / name)
    shutil.copytree(os.path.join(REPO, "changelogs"), tmp_path / "changelogs")
    run("generate", cwd=tmp_path)
    with open(os.path.join(REPO, "CHANGELOG.rst")) as mine, open(tmp_path / "CHANGELOG.rst") as generated:
        assert mine.read() == generated.read(), "CHANGELOG.rst differs from `antsibull-changelog generate`: run it"
