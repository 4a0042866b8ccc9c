"""Which integration tests may run beside each other on the one lab, and the locks that keep the
others alone.

scripts/test.sh runs pytest-xdist with two workers (tests/conftest.py schedules them). Most
integration tests work in namespaces, registries and proxies of their own: those of the files
not in ``EXCLUSIVE`` run beside each other, each file a unit of work for whichever worker is free.
The files in ``EXCLUSIVE`` change what every other test stands on: they roll out or remove the
environment registries, make them read-only, retire signing keys, restart the token servers,
upgrade the RBAC, rotate every credential, or run whole-cluster playbooks (site.yml, AWX's
templates) that meet the other tests' namespaces. They run in order, on one worker, and each of
them holds the lab alone while it runs.

The rule is a readers-writer lock over files (``fcntl.flock``), which both workers' processes see:
a shared file holds it shared while it runs, an exclusive file (and the session's deployment of
the registries) holds it exclusive. A turnstile in front of it lets a waiting exclusive file in
before the next shared file, so neither lane starves. Without xdist (``-n 0``) nothing waits."""
import contextlib
import fcntl
import json
import os
import tempfile

INTEGRATION = "tests/integration/"
EXCLUSIVE = frozenset(INTEGRATION + name for name in (
    "test_access_model.py",
    "test_awx.py",
    "test_consumer_cluster.py",
    "test_credentials.py",
    "test_module_examples.py",
    "test_molecule.py",
    "test_node_pull_lifecycle.py",
    "test_oldest_ansible.py",
    "test_registry_cluster.py",
    "test_registry_gc.py",
    "test_registry_rollout.py",
    "test_secret_leaks.py",
    "test_signing_key_retirement.py",
    "test_site.py",
    "test_tarball_awx.py",
    "test_token_server_tls.py",
))


def lane(nodeid):
    """The unit of work a test belongs to under xdist: the exclusive files are one lane, run in
    order; each shared integration file is a unit of its own; the unit and sanity tests are one."""
    path = nodeid.split("::", 1)[0]
    if not path.startswith(INTEGRATION):
        return "offline"
    return "lab-exclusive" if path in EXCLUSIVE else path


def exclusive(nodeid):
    return nodeid.split("::", 1)[0] in EXCLUSIVE


def _folder():
    """One folder per pytest run, shared by its workers (xdist gives them the run's id)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
    path = os.path.join(tempfile.gettempdir(), f"segmented-registry-tests-{run}")
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def _flock(name, mode):
    fd = os.open(os.path.join(_folder(), name), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def turn(alone):
    """Hold the lab: alone (exclusive) or beside the other shared tests."""
    with _flock("turnstile", fcntl.LOCK_EX):
        lab = os.open(os.path.join(_folder(), "lab"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lab, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
    try:
        yield
    finally:
        os.close(lab)


@contextlib.contextmanager
def session(first):
    """The part of a pytest session on the lab, across its workers: ``first()`` runs in the
    first worker to arrive and its result is kept (JSON); the context gives it to every worker and
    says, on leaving, whether this worker is the last one out (``leaving["last"]``), which then
    cleans up for all."""
    state = {}
    with _flock("session", fcntl.LOCK_EX):
        path = os.path.join(_folder(), "session.json")
        if os.path.exists(path):
            with open(path) as handle:
                state = json.load(handle)
        if not state.get("workers"):
            state = {"workers": 0, "first": first()}
        state["workers"] += 1
        with open(path, "w") as handle:
            json.dump(state, handle)
    leaving = {"first": state["first"], "last": False}
    try:
        yield leaving
    finally:
        with _flock("session", fcntl.LOCK_EX):
            with open(path) as handle:
                state = json.load(handle)
            state["workers"] -= 1
            leaving["last"] = state["workers"] == 0
            with open(path, "w") as handle:
                json.dump(state, handle)
