"""Fixtures shared by every test."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTEGRATION = "tests/integration/"


def pytest_addoption(parser):
    parser.addoption("--fleet", action="store_true",
                     help="run the tests marked fleet (the fleet tier, on a lab of more than 3 consumer clusters: "
                          "bash scripts/test-fleet.sh); without it they are skipped")


def pytest_collection_modifyitems(config, items):
    """The fleet tier runs only when asked for (``--fleet``; scripts/test-fleet.sh brings the lab to 16
    consumer clusters and passes it): scripts/test.sh and .ci/run, which pass no option, skip the tests
    marked ``fleet`` whatever the size of the lab."""
    if config.getoption("--fleet"):
        return
    skip = pytest.mark.skip(reason="the fleet tier: bash scripts/test-fleet.sh (pytest --fleet on a lab of 16 consumer clusters)")
    for item in items:
        if item.get_closest_marker("fleet"):
            item.add_marker(skip)


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
