"""Fixtures shared by every test."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """The lanes under pytest-xdist (scripts/test.sh runs ``-n 2``; tests/integration/lanes.py):
    the unit and sanity tests are one unit of work, the integration files that change what the
    others stand on are one, run in order, and each other integration file is one, run beside the
    rest. (pytest-xdist's ``xdist_group`` marks do not reach its scheduler under pytest 9: the node
    ids it rewrites are cached.)"""
    from xdist.scheduler import LoadScopeScheduling

    from tests.integration import lanes

    class Lanes(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return lanes.lane(nodeid)

    return Lanes(config, log)


@pytest.fixture(scope="session")
def collections_path():
    """The folder to give ansible-playbook as ANSIBLE_COLLECTIONS_PATH to find this checkout as
    segmented.registry (scripts/setup.sh links it there)."""
    return os.path.join(REPO, ".venv", "collections")
