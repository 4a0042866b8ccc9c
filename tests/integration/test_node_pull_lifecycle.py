"""Credential renewal, rotation and the move of the pull identities never break the pulls nodes
make (issues 23, 22).

Nodes pull mirrored images with their copy of the global pull secret, which lags the Secret
``openshift-config/pull-secret`` (lab/machine_config.py, the lab's machine-config stand-in, writes
it after a lag and reports the MachineConfigPools ``Updating`` meanwhile). Node-style pulls
(``lab.pull``, as ``labctl pull``) of a promoted image run on consumer clusters in a background
loop through a rotation with grace 3, a rotation with grace 0 and a forced renewal: no pull may
fail, and at the end every consumer's global pull secret, and its nodes' copy, hold the current
generation of its pull credential. That test runs twice: on the lab's three consumers (the normal
suite), and marked ``fleet`` on every consumer of the lab (``Layout.consumers``; the fleet tier,
scripts/test-fleet.sh, brings the lab to 16). Every playbook runs with one fork per cluster and one
for localhost, so no consumer waits for another. The same loop runs through an upgrade, on the
lab's three: the pull identities as earlier versions left them (in the environment namespaces),
then one credentials.yml run moves them to the collection's namespace.
"""
import base64
import collections
import functools
import hashlib
import json
import sys
import threading
import time
import uuid

import pytest
from kubernetes import client as kclient

from lab import machine_config

CONSUMERS = ("test", "uat", "prod")  # the lab's own three (inventories/lab)
LOGICAL = "registry.apps.lab.local"
CREDENTIAL = ("openshift-config", "segmented-registry-pull")
PULLS_PER_SECOND = 5  # in total: the token server limits reviews per user; a node does not pull faster
SMALL = 32 * 1024
PULL_NS = "segmented-registry-consumers"  # credentials_pull_namespace
MODULE_PLAYBOOK = "tests/integration/playbooks/registry_credential.yml"


def auths_of(lab, cluster, namespace, name):
    secret = kclient.CoreV1Api(lab.api_client(cluster)).read_namespaced_secret(name, namespace)
    return json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]


def node_copy(lab, cluster):
    with open(machine_config.node_file(lab.state, cluster), "rb") as handle:
        return handle.read()


class NodePulls:
    """One thread per consumer cluster pulls its reference through the node's copy of the pull
    secret, paced to PULLS_PER_SECOND in total; every failure is kept with the phase it happened in."""

    def __init__(self, lab, references):
        self.lab, self.references = lab, references
        self.phase = "start"
        self.failures, self.pulls, self.copies = [], {c: 0 for c in references}, {c: set() for c in references}
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(c,), daemon=True) for c in references]

    def _loop(self, cluster):
        interval = len(self.references) / PULLS_PER_SECOND
        while not self.stopping.is_set():
            started = time.monotonic()
            phase = self.phase
            try:
                self.copies[cluster].add(hashlib.sha256(node_copy(self.lab, cluster)).hexdigest())
                self.lab.pull(cluster, self.references[cluster])
            except Exception as exc:  # every failure counts, whatever its kind
                self.failures.append((phase, cluster, str(exc)[-400:]))
            with self.changed:
                self.pulls[cluster] += 1
                self.changed.notify_all()
            self.stopping.wait(max(0.0, interval - (time.monotonic() - started)))

    def after(self, phase, pulls=3, limit=120):
        """Enter ``phase`` once every cluster has pulled ``pulls`` more times (so every phase is
        pulled through, whatever the machine's speed)."""
        with self.changed:
            target = {c: n + pulls for c, n in self.pulls.items()}
            if not self.changed.wait_for(lambda: all(self.pulls[c] >= target[c] for c in target), limit):
                pytest.fail(f"the pull loop stalled in phase {self.phase}: {self.pulls}")
        self.phase = phase

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_):
        self.stopping.set()
        for thread in self.threads:
            thread.join(120)


@pytest.fixture(scope="module")
def run_forked(lab, run_playbook):
    """run_playbook with one fork per cluster of the lab and one for localhost (Ansible's default of
    5 would make consumers wait for each other on a fleet)."""
    return functools.partial(run_playbook, forks=len(lab.layout.clusters) + 1)


@pytest.fixture(scope="module")
def promoted(lab, run_forked):
    """{cluster: the logical reference of an image promoted to its environment}, for every consumer
    of the lab: credentials and consumer configuration as site.yml makes them, then app:v1 pushed
    and promoted to every environment the consumers are assigned, in promotion order."""
    for playbook in ("playbooks/credentials.yml", "playbooks/consumer_cluster.yml"):
        started = time.monotonic()
        run = run_forked(playbook)
        assert run.status == "successful", f"{playbook}:\n{run.stdout_text[-4000:]}"
        print(f"{playbook}: {time.monotonic() - started:.0f}s")
    namespace = f"nodepull-{uuid.uuid4().hex[:8]}"  # a new name: nothing to find there already
    kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespace({"metadata": {"name": namespace}})
    digest = lab.push(namespace, "app", "v1", 2, SMALL, seed=f"{namespace}-v1")["digest"]
    started = time.monotonic()
    served = set(lab.layout.consumers.values())
    for env in [env for env, _endpoint in lab.layout.registries if env in served]:
        run = run_forked("playbooks/promote.yml", extravars={"project": namespace, "image": "app:v1", "env": env})
        assert run.status == "successful", run.stdout_text[-3000:]
    print(f"push and promotions: {time.monotonic() - started:.0f}s")
    return {cluster: f"{LOGICAL}/{namespace}/app@{digest}" for cluster in lab.layout.consumers}


@pytest.fixture
def consumers(request, lab):
    """The consumer clusters a test runs on: the lab's three (CONSUMERS), or with the parameter
    "fleet" every consumer of the lab as brought up (Layout.consumers), which must be a fleet."""
    if request.param != "fleet":
        return list(CONSUMERS)
    if len(lab.layout.consumers) <= len(CONSUMERS):
        pytest.fail(f"the fleet tier needs the lab at 16 consumer clusters; it runs {len(lab.layout.consumers)}: "
                    "bash scripts/test-fleet.sh (or lab/labctl down; lab/labctl up --consumers 16)")
    return sorted(lab.layout.consumers)


@pytest.mark.parametrize("consumers", ["three", pytest.param("fleet", marks=pytest.mark.fleet)], indirect=True)
def test_rotations_and_a_renewal_never_fail_a_node_pull(lab, promoted, run_forked, consumers):
    references = {cluster: promoted[cluster] for cluster in consumers}
    for cluster, reference in references.items():
        lab.pull(cluster, reference)  # pullable before the loop starts: a failure below is the lifecycle's
    runs = {}
    with NodePulls(lab, references) as loop:
        for phase, playbook, extravars in (
                ("rotation, grace 3", "playbooks/rotate_credentials.yml", {"grace": 3}),
                ("rotation, grace 0", "playbooks/rotate_credentials.yml", {"grace": 0}),
                # every generation is within renew_before of its expiry: a normal run renews it
                ("renewal", "playbooks/credentials.yml", {"credentials_renew_before": 604799})):
            loop.after(phase)
            started = time.monotonic()
            runs[phase] = run_forked(playbook, extravars=extravars)
            print(f"{phase}: {time.monotonic() - started:.0f}s")
            assert runs[phase].status == "successful", f"{phase}:\n{runs[phase].stdout_text[-4000:]}"
        loop.after("end")
    total = sum(loop.pulls.values())
    print(f"node pulls: {loop.pulls} ({total} in all), failures {len(loop.failures)}")
    assert loop.failures == [], sorted(collections.Counter((p, c, m[-160:]) for p, c, m in loop.failures).items())[:20]
    for cluster in consumers:
        # each change of the node's copy was pulled through: the first one and one per phase
        assert len(loop.copies[cluster]) >= 4, (cluster, len(loop.copies[cluster]))
        registry = dict(lab.layout.registries)[lab.layout.consumers[cluster]]  # its environment's
        current = auths_of(lab, cluster, *CREDENTIAL)[registry]
        assert auths_of(lab, cluster, "openshift-config", "pull-secret")[registry] == current, cluster
        assert json.loads(node_copy(lab, cluster))["auths"][registry] == current, cluster


def pull_identities(lab, namespace):
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
    return sorted(sa.metadata.name for sa in core.list_namespaced_service_account(
        namespace, label_selector="segmented.registry/credential=pull").items)


def test_an_upgrade_moves_the_pull_identities_without_failing_a_node_pull(lab, promoted, run_playbook, tmp_path):
    """The pull identities as earlier versions left them (in each environment's namespace, where
    an editor of that namespace can mint their tokens; the nodes hold their tokens), then one
    credentials.yml run, with node pulls in a loop: 0 failed pulls; the identities live in
    PULL_NS only, granted in their environment's namespace; the old ones revoked and removed."""
    def auth(cluster):
        return {"kubeconfig": lab.kubeconfig, "context": cluster}
    registries = dict(lab.layout.registries)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    old = [{"registry_cluster": auth(lab.layout.registry_cluster), "cluster": auth(cluster), "cluster_name": cluster,
            "access": "pull", "namespace": cluster, "registry": registries[cluster],
            "targets": [{"namespace": CREDENTIAL[0], "secret_name": CREDENTIAL[1]}]} for cluster in CONSUMERS]
    new = [{"registry_cluster": auth(lab.layout.registry_cluster), "cluster_name": cluster, "access": "pull",
            "namespace": PULL_NS, "grant_namespace": cluster, "state": "absent"} for cluster in CONSUMERS]
    run = run_playbook(MODULE_PLAYBOOK, inventory=str(inventory), extravars={"credential_list": old + new})
    assert run.status == "successful", run.stdout_text[-4000:]
    run = run_playbook("playbooks/consumer_cluster.yml")  # the nodes hold the old identities' tokens
    assert run.status == "successful", run.stdout_text[-4000:]
    assert [pull_identities(lab, cluster) for cluster in CONSUMERS] == [[f"segmented-pull-{c}"] for c in CONSUMERS]

    preview = run_playbook("playbooks/credentials.yml", cmdline="--check --diff")
    assert preview.status == "successful", preview.stdout_text[-4000:]
    planned = json.dumps([(event.get("event_data") or {}).get("res") for event in preview.events])
    for cluster in CONSUMERS:  # check mode names the new identity, and the old one a real run revokes
        assert f"create ServiceAccount {PULL_NS}/segmented-pull-{cluster}" in planned, cluster
        assert f"{cluster}/segmented-pull-{cluster}" in planned, cluster
    assert [pull_identities(lab, cluster) for cluster in CONSUMERS] == [[f"segmented-pull-{c}"] for c in CONSUMERS]

    references = {cluster: promoted[cluster] for cluster in CONSUMERS}
    for cluster, reference in references.items():
        lab.pull(cluster, reference)
    with NodePulls(lab, references) as loop:
        loop.after("upgrade")
        started = time.monotonic()
        run = run_playbook("playbooks/credentials.yml")
        print(f"upgrade: {time.monotonic() - started:.0f}s")
        assert run.status == "successful", run.stdout_text[-4000:]
        loop.after("end")
    print(f"node pulls: {loop.pulls}, failures {len(loop.failures)}")
    assert loop.failures == [], sorted(collections.Counter((p, c, m[-160:]) for p, c, m in loop.failures).items())[:20]
    rbac = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster))
    assert pull_identities(lab, PULL_NS) >= [f"segmented-pull-{c}" for c in sorted(CONSUMERS)]
    for cluster in CONSUMERS:
        assert pull_identities(lab, cluster) == [], cluster
        assert kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).list_namespaced_secret(
            cluster, label_selector="segmented.registry/credential=pull").items == [], cluster
        binding = rbac.read_namespaced_role_binding(f"segmented-pull-{cluster}.{PULL_NS}", cluster)
        assert [(item.namespace, item.name) for item in binding.subjects] == [(PULL_NS, f"segmented-pull-{cluster}")]
        registry = registries[cluster]
        current = auths_of(lab, cluster, *CREDENTIAL)[registry]
        assert auths_of(lab, cluster, "openshift-config", "pull-secret")[registry] == current, cluster
        assert json.loads(node_copy(lab, cluster))["auths"][registry] == current, cluster
