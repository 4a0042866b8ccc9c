"""Fixtures shared by every test, the lanes the tests run in, and the scratch namespaces removed
when the whole run ends."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTEGRATION = "tests/integration/"
# Integration tests that share nothing with the rest of the lab lane: their own namespaces on the
# first consumer cluster (test_tag_environments.py, test_objects_action.py), the lab's own checks
# that change nothing (test_lab_openshift_defaults.py, test_lab_node.py), the inventory checks
# (test_validate_inventory.py). They run in order in a lane of their own, beside the lab lane.
BESIDE = {INTEGRATION + name for name in (
    "test_tag_environments.py", "test_objects_action.py", "test_validate_inventory.py", "test_lab_openshift_defaults.py",
    "test_lab_node.py")}

# the report section of a failed lab test that names the tasks that failed in its playbook runs
# (tests/integration/conftest.py adds it)
FAILED_TASKS_SECTION = "failed tasks of its playbook runs"

NAMESPACES_BEFORE = pytest.StashKey()


def lane(nodeid):
    """The lane of a test (or of a test file) by its node id: "lab" (the integration tests that
    share the lab's registries, in order), "beside" (BESIDE, in order) or the node id itself (a
    test that shares nothing, run wherever a worker is free)."""
    path = nodeid.split("::")[0]
    if not path.startswith(INTEGRATION):
        return nodeid
    return "beside" if path in BESIDE else "lab"


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
    """The lanes under pytest-xdist (scripts/test.sh runs ``-n 2``): each of "lab" and "beside" is
    one unit of work, run in order on one worker; every other test is a unit of its own, spread over
    the workers. The largest units go out first, so the two lanes start at once on the two workers.
    (pytest-xdist's ``xdist_group`` marks do not reach its scheduler under pytest 9: the node ids it
    rewrites are cached.)"""
    from xdist.scheduler import LoadScopeScheduling

    class Lanes(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return lane(nodeid)

    return Lanes(config, log)


def pytest_runtest_setup(item):
    """Under pytest-xdist, a worker running a test outside the lab lane yields the CPU to the lab
    lane (nice 10, its playbooks too): the lab lane is the run's longest path."""
    if os.environ.get("PYTEST_XDIST_WORKER") and lane(item.nodeid) != "lab" and os.nice(0) < 10:
        os.nice(10 - os.nice(0))


def _registry_cluster_namespaces():
    """The registry cluster's namespaces ({name: labels}), or None when no lab runs."""
    from kubernetes import client as kclient

    from lab import labctl

    lab = labctl.Lab()
    if any(not row["running"] for row in lab.status()["components"]):
        return None
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
    return {item.metadata.name: item.metadata.labels or {} for item in core.list_namespace().items}


def pytest_sessionstart(session):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the run's own process (the controller under pytest-xdist) keeps the list
    try:
        session.config.stash[NAMESPACES_BEFORE] = _registry_cluster_namespaces()
    except Exception:  # no lab here (a checkout without .state): nothing to clean later
        session.config.stash[NAMESPACES_BEFORE] = None


def pytest_sessionfinish(session):
    """The namespaces the tests created on the registry cluster are gone when the whole run ends
    (in the run's own process, after every worker: a lane that ends early removes nothing the
    other still uses), not those the registry-cluster role made (labelled managed-by
    segmented.registry) nor the lab inventory's build namespace (labctl.BUILD_NAMESPACE: main.sh
    pushes there and site.yml mints its builder's credential, right after the suite too). Their
    ImageStreams go first, at once, so a reconcile of the whole cluster right after the suite (as
    scripts/main.sh's site.yml runs it) does not meet the tests' deliberately broken tags while the
    namespace controller is still at work: a lab the suite has used is a lab main.sh runs on."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    before = session.config.stash.get(NAMESPACES_BEFORE, None)
    if before is None:
        return
    from lab import labctl
    from tests.integration.promotion_lab import remove_namespace

    now = _registry_cluster_namespaces()
    if now is None:
        return  # a test left the lab down: nothing to clean on it
    lab = labctl.Lab()
    for name, labels in now.items():
        if (name not in before and name != labctl.BUILD_NAMESPACE
                and labels.get("app.kubernetes.io/managed-by") != "segmented.registry"):
            remove_namespace(lab.api_client(lab.layout.registry_cluster), name)


@pytest.fixture(scope="session")
def collections_path():
    """The folder to give ansible-playbook as ANSIBLE_COLLECTIONS_PATH to find this checkout as
    segmented.registry (scripts/setup.sh links it there)."""
    return os.path.join(REPO, ".venv", "collections")


def pytest_terminal_summary(terminalreporter):
    """At the end of the run (the part of a CI log that is always shown): each failed lab test's
    failed playbook tasks, one line each."""
    for report in terminalreporter.stats.get("failed", []):
        for name, text in report.sections:
            if name == FAILED_TASKS_SECTION:
                terminalreporter.write_sep("-", f"{FAILED_TASKS_SECTION}: {report.nodeid}")
                terminalreporter.write_line(text)
