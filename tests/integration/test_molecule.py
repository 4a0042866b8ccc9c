"""The molecule scenarios of the collection's roles, run against the lab as a role author runs
them (`molecule test` in the role's folder): destroy, converge, idempotence, verify, destroy."""
import os
import re
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(r for r in os.listdir(os.path.join(REPO, "roles"))
               if os.path.isdir(os.path.join(REPO, "roles", r, "molecule")))


def test_every_role_has_a_scenario():
    assert ROLES == sorted(os.listdir(os.path.join(REPO, "roles")))


@pytest.mark.parametrize("role", ROLES)
def test_molecule_scenario(lab, role):
    venv = os.path.join(REPO, ".venv", "bin")
    run = subprocess.run(
        [os.path.join(venv, "molecule"), "test"], cwd=os.path.join(REPO, "roles", role),
        capture_output=True, text=True, timeout=1200, check=False,
        env=dict(os.environ, PATH=venv + os.pathsep + os.environ["PATH"], SEGMENTED_REGISTRY_LAB_STATE=lab.state,
                 ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), NO_COLOR="1", ANSIBLE_FORCE_COLOR="0"))
    output = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout + run.stderr)
    assert run.returncode == 0, output[-5000:]
    for action in ("converge", "idempotence", "verify", "destroy"):
        assert f"{action}: Executed: Successful" in output, output[-3000:]
