"""Fixtures for tests that stand on the running lab (scripts/test.sh brings it up)."""
import base64
import copy
import json
import os
import shutil
import subprocess
import tempfile
import time
import types
import uuid

import ansible_runner
import pytest
import yaml
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import mint_token
from lab import fleet, image, labctl, node
from tests.conftest import FAILED_TASKS_SECTION, lane
from tests.integration import promotion_lab, runs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_INVENTORY = fleet.current(labctl.state_dir())  # inventories/lab, or the one labctl up --consumers wrote


# {test node id: the failed tasks of its playbook runs}, for the report of a test that fails
FAILED_TASKS = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report holds a section with the tasks that failed in the playbooks it ran
    (runs.failed_tasks: host, task, message), whatever its assertion printed; under pytest-xdist the
    section travels with the report, and the run's summary repeats it (tests/conftest.py)."""
    outcome = yield
    report = outcome.get_result()
    failed = FAILED_TASKS.get(item.nodeid, [])
    if report.when == "teardown":
        FAILED_TASKS.pop(item.nodeid, None)
    if report.failed and failed:
        report.sections.append((FAILED_TASKS_SECTION, "\n".join(failed)))


def pytest_collection_modifyitems(items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def lab():
    lab = labctl.Lab()
    status = lab.status()
    down = [c["component"] for c in status["components"] if not c["running"]]
    if down:
        pytest.fail(f"the lab is not running ({', '.join(down)} down): bring it up with lab/labctl up")
    return lab


@pytest.fixture(scope="session")
def environment_registries(lab, run_playbook):
    """The environment registries as a platform team has them: deployed by the role
    (playbooks/registry_cluster.yml; a run on a lab where they are deployed already changes
    nothing), each answering on its route host."""
    run = run_playbook("playbooks/registry_cluster.yml")
    if run.status != "successful":
        pytest.fail("playbooks/registry_cluster.yml failed on the lab:\n" + run.stdout_text[-4000:])
    for _env, endpoint in lab.layout.registries[1:]:  # the router admits the Routes on its own
        promotion_lab.wait_for_challenge(lab, endpoint)
    return dict(lab.layout.registries[1:])


@pytest.fixture(scope="module", autouse=True)
def registries_deployed(request):
    """Every file of the lab lane stands on the environment registries (deployed once per run);
    the files beside it (tests/conftest.py's BESIDE) do not, and deploy nothing."""
    if lane(request.node.nodeid) == "lab":
        request.getfixturevalue("environment_registries")


@pytest.fixture(scope="session")
def lab_node(lab):
    """The registry cluster's node (lab/node.py), running with its mirror registry."""
    rows = {row["component"]: row["running"] for row in lab.status()["components"]}
    down = [name for name in node.COMPONENTS + ("registry-mirror",) if not rows.get(name)]
    if down:
        pytest.fail(f"the registry cluster's node is not running ({', '.join(down)}): bring it up with lab/labctl up")
    return lab.node()


def unique_suffix():
    """A short unique DNS-1123 suffix so tests never collide with each other or earlier runs."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def unique():
    """unique_suffix(), one per test."""
    return unique_suffix()


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook with ansible-runner (as AWX does) against an inventory.

    Returns what the run left behind, read before its private data dir is removed:
    ``status``, ``rc``, ``stats``, ``events`` and ``stdout_text``."""
    def run(playbook, inventory=LAB_INVENTORY, extravars=None, envvars=None, **options):
        data_dir = tempfile.mkdtemp(prefix="runner-")
        try:
            runner = ansible_runner.run(
                private_data_dir=data_dir,
                playbook=os.path.join(REPO, playbook) if not os.path.isabs(playbook) else playbook,
                inventory=inventory,
                extravars=extravars or {},
                envvars=dict({"ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg")}, **(envvars or {})),
                quiet=True,
                **options
            )
            events = list(runner.events)
            failed = runs.failed_tasks(events)
            if failed and os.environ.get("PYTEST_CURRENT_TEST"):
                FAILED_TASKS.setdefault(os.environ["PYTEST_CURRENT_TEST"].split(" ")[0], []).extend(
                    f"{os.path.basename(playbook)}: {line}" for line in failed)
            return types.SimpleNamespace(status=runner.status, rc=runner.rc, stats=runner.stats,
                                         events=events, stdout_text=runner.stdout.read())
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    return run


@pytest.fixture(scope="session")
def make_token(lab):
    """make_token(namespace, name, roles={namespace: cluster_role}) -> a TokenRequest token of a
    service account on the registry cluster with those role bindings."""
    def make(namespace, name, roles=None, cluster=None):
        api = lab.api_client(cluster or lab.layout.registry_cluster)
        core, rbac = kclient.CoreV1Api(api), kclient.RbacAuthorizationV1Api(api)
        namespaces = {namespace, *(roles or {})}
        for ns in namespaces:
            try:
                core.create_namespace({"metadata": {"name": ns}})
            except ApiException as exc:
                if exc.status != 409:
                    raise
        try:  # OpenShift's defaults (lab/openshift_defaults.py) make `builder` and `deployer` in every namespace
            core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        for ns, role in (roles or {}).items():
            rbac.create_namespaced_role_binding(ns, {
                "metadata": {"name": f"{role.replace(':', '-')}-{namespace}-{name}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]})
        return mint_token(api, f"{namespace}/{name}", 3600)
    return make


@pytest.fixture(scope="session")
def oci_layout(tmp_path_factory):
    """A real three-layer image as an OCI layout on disk, and its manifest digest."""
    path = str(tmp_path_factory.mktemp("image") / "oci")
    digest = image.build_oci_layout(path, layers=3, layer_size=256 * 1024, seed="integration")
    return path, digest


@pytest.fixture(scope="session")
def skopeo(lab, tmp_path_factory):
    """skopeo(subcommand, *args, token=None, registry=None, trust=True) -> CompletedProcess.

    The token goes through a 0600 auth file (never argv); ``trust`` adds the lab CA."""
    def run(subcommand, *args, token=None, registry=None, trust=True):
        flags = []
        if token is not None:
            auth = str(tmp_path_factory.mktemp("auth") / "auth.json")
            fd = os.open(auth, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({"auths": {registry: {"auth": base64.b64encode(("sa:" + token).encode()).decode()}}},
                          handle)
            flags.append("--authfile=" + auth)
        if trust:
            if subcommand == "copy":
                flags += ["--src-cert-dir=" + lab.trust_dir, "--dest-cert-dir=" + lab.trust_dir]
            else:
                flags.append("--cert-dir=" + lab.trust_dir)
        argv = ["skopeo", "--command-timeout", "60s", subcommand] + flags + list(args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    return run


@pytest.fixture(scope="session")
def eventually():
    """eventually(probe, timeout) -> the first result of probe() that raises nothing (controllers
    act asynchronously); re-raises the last error at the deadline."""
    def wait(probe, timeout=30, interval=0.2):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return probe()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(interval)
    return wait


def inventory_maker(lab, folder):
    """make(edit=None) -> the path of a copy of the lab inventory under ``folder``, with its templated
    paths resolved and ``edit(hosts, group_vars)`` applied to it."""
    with open(os.path.join(LAB_INVENTORY, "hosts.yml")) as handle:
        hosts = yaml.safe_load(handle)
    with open(os.path.join(LAB_INVENTORY, "group_vars", "all.yml")) as handle:
        group_vars = yaml.safe_load(handle)
    group_vars.update(segmented_registry_lab_state=lab.state, segmented_registry_lab_kubeconfig=lab.kubeconfig,
                      segmented_registry_lab_ca=lab.ca.cert_path)

    def make(edit=None):
        h, g = copy.deepcopy(hosts), copy.deepcopy(group_vars)
        if edit:
            edit(h["all"]["children"]["clusters"]["hosts"], g)
        path = folder / (f"inventory-{len(list(folder.iterdir()))}")
        (path / "group_vars").mkdir(parents=True)
        (path / "hosts.yml").write_text(yaml.safe_dump(h))
        (path / "group_vars" / "all.yml").write_text(yaml.safe_dump(g))
        return str(path)
    return make


@pytest.fixture
def inventory(lab, tmp_path):
    """inventory(edit) -> inventory_maker's inventory, in the test's own folder."""
    return inventory_maker(lab, tmp_path)


@pytest.fixture(scope="module")
def module_inventory(lab, tmp_path_factory):
    """inventory, for a module-scoped fixture (one folder for the module's tests)."""
    return inventory_maker(lab, tmp_path_factory.mktemp("inventories"))
