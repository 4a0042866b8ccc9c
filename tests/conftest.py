"""Fixtures shared by every test."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTEGRATION = "tests/integration/"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Two lanes under pytest-xdist (scripts/test.sh runs ``-n 2``): the integration tests share
    one lab, so they are one unit of work, run in order on one worker; every other test is a unit
    of its own, spread over the workers beside them. (pytest-xdist's ``xdist_group`` marks do not
    reach its scheduler under pytest 9: the node ids it rewrites are cached.)"""
    from xdist.scheduler import LoadScopeScheduling

    class Lanes(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return "lab" if nodeid.startswith(INTEGRATION) else nodeid

    return Lanes(config, log)


@pytest.fixture(scope="session")
def collections_path():
    """The folder to give ansible-playbook as ANSIBLE_COLLECTIONS_PATH to find this checkout as
    segmented.registry (scripts/setup.sh links it there)."""
    return os.path.join(REPO, ".venv", "collections")
