"""From the built tarball to day 8, driven the way AWX drives it, on the lab (issue 23's proof).

Nothing of this checkout is on the jobs' paths:

- the collection is built (`ansible-galaxy collection build`) and installed with
  `ansible-galaxy collection install --offline` into an EMPTY collections path, beside its
  collection dependencies (galaxy.yml's `dependencies`, installed from their own directories: no
  Galaxy here), by the ansible-galaxy of a FRESH virtual environment (`python3 -m venv`) that has
  only what the execution environment has: ansible-core and ansible-runner in the ranges of
  awx/execution-environment.yml and the collection's requirements.txt, read from the tarball;
- each job is an `ansible-runner run` of that virtual environment (AWX's engine) in a private data
  directory laid out as AWX lays it: `project/` holds only the job template's playbook (the
  awx/playbooks wrapper, from the installed collection: it imports segmented.registry.<playbook>
  by FQCN), `env/` the files and variables that the credential type's injectors make from a
  credential whose inputs are the lab's kubeconfig and CA (tests/awx_as_code.py, as AWX does),
  `env/extravars` the survey's answers checked as AWX checks them, and the inventory is
  inventories/awx's form over the lab's clusters (hosts select their context of the injected
  kubeconfig, certificate paths come from the injected CA file);
- the environment of each job has no ANSIBLE_* variable of the suite, no PYTHONPATH, and its
  collections path is the installed one only.

Day 1: the site template; then the promote template test -> uat -> prod, each environment's
consumer cluster pulling the promoted digest as its nodes pull (`lab.pull`: the node's copy of
the global pull secret, the cluster's mirror configuration) in a loop from its promotion to the
end: no pull fails.

Day 8, in minutes: the inventory gives pull credentials a TTL of 10 minutes (credentials_duration
600, the TokenRequest API's least; renewed in their last 5), so day 1's are minutes from expiry.
The credentials template (the daily schedule's job) runs with survey answers that renew every
token now (credentials_renew_before one second under credentials_duration, TTL on a fresh lab;
longer only where an earlier run on a shared lab left longer-lived tokens, which site keeps): a new
generation of each consumer's pull credential is minted before the old one expires, for real. Then the rotate template (grace 2 s). At the end every
consumer's global pull secret (openshift-config/pull-secret) and its nodes' copy hold the newest
generation of its pull identity (found on the registry cluster by its labels, in whatever
namespace it lives): the token's bound Secret is that generation.

The fresh virtual environment is cached under the temporary directory, keyed by what it holds,
so a second session does not install it again.
"""
import base64
import datetime
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sysconfig
import tarfile
import tempfile
import threading
import time

import pytest
import yaml
from kubernetes import client as kclient

from ansible_collections.segmented.registry.plugins.module_utils.credentials import dockerconfig, labels
from lab import machine_config
from lab.labctl import LabError
from tests import awx_as_code as awx
from tests.integration import promotion_lab

REPO = awx.REPO
SMALL = 64 * 1024
PYTHON = shutil.which("python3")
CONSUMERS = ("test", "uat", "prod")
#: Day 8 in minutes: the inventory's pull credential lifetime (the TokenRequest API's least) and renewal window.
TTL, RENEW_BEFORE = 600, 300


def _galaxy():
    return awx.load_yaml(os.path.join(REPO, "galaxy.yml"))


def _clean_env(path_first=None, **extra):
    """A job's process environment: none of the suite's ANSIBLE_* or Python path settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ANSIBLE_", "SEGMENTED_REGISTRY_")) and key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    if path_first:
        env["PATH"] = path_first + os.pathsep + env["PATH"]
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    process = subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(out), REPO],
                             cwd=str(out), env=_clean_env(), capture_output=True, text=True, timeout=300, check=False)
    assert process.returncode == 0, process.stdout + process.stderr
    galaxy = _galaxy()
    return out / f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"


@pytest.fixture(scope="module")
def venv(tarball):
    """A fresh virtual environment with what the execution environment installs: ansible-core and
    ansible-runner (awx/execution-environment.yml) and the tarball's requirements.txt."""
    ee = awx.load_yaml(os.path.join(awx.AWX, "execution-environment.yml"))["dependencies"]
    pins = [ee["ansible_core"]["package_pip"], ee["ansible_runner"]["package_pip"]]
    with tarfile.open(tarball) as archive:
        requirements = archive.extractfile("requirements.txt").read()
    key = hashlib.sha256(requirements + json.dumps(pins).encode()).hexdigest()[:12]
    folder = os.path.join(tempfile.gettempdir(), f"segmented-registry-e2e-venv-{key}")
    done = os.path.join(folder, ".complete")
    if not os.path.exists(done):
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([PYTHON, "-m", "venv", folder], check=True, timeout=300)
        with tempfile.NamedTemporaryFile("wb", suffix=".txt") as handle:
            handle.write(requirements)
            handle.flush()
            process = subprocess.run([os.path.join(folder, "bin", "pip"), "install", "-q", "-r", handle.name, *pins],
                                     env=_clean_env(), capture_output=True, text=True, timeout=900, check=False)
        assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
        open(done, "w").close()
    # ansible-core only: no collection comes with the environment itself
    site = subprocess.run([os.path.join(folder, "bin", "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert not os.path.exists(os.path.join(site, "ansible_collections")), site
    return folder


@pytest.fixture(scope="module")
def collections(tarball, venv, tmp_path_factory):
    """The tarball installed into an empty collections path with its collection dependencies, from
    their own directories (those of the suite's ansible package), offline."""
    root = tmp_path_factory.mktemp("collections")
    sources = os.path.join(sysconfig.get_paths()["purelib"], "ansible_collections")
    requirements = {"collections": [{"name": str(tarball), "type": "file"}] + [
        {"name": os.path.join(sources, *name.split(".")), "type": "dir"} for name in _galaxy()["dependencies"]]}
    (root / "requirements.yml").write_text(yaml.safe_dump(requirements))
    path = root / "path"
    process = subprocess.run([os.path.join(venv, "bin", "ansible-galaxy"), "collection", "install", "--offline",
                              "-r", "requirements.yml", "-p", str(path)], cwd=str(root), env=_clean_env(),
                             capture_output=True, text=True, timeout=600, check=False)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    installed = sorted(os.path.relpath(p, path / "ansible_collections")
                       for p in glob.glob(str(path / "ansible_collections" / "*" / "*")))
    assert installed == sorted(["segmented/registry"] + [n.replace(".", "/") for n in _galaxy()["dependencies"]])
    return path


@pytest.fixture
def awx_lab_inventory(lab, inventory):
    """inventories/awx's form over the lab's clusters: inventories/awx's `all` variables (the
    interpreter, the kubeconfig and the CA bundle from the injected files), each host's context,
    every certificate path from the CA bundle; the lab's images as values; pull credentials of a
    TTL of minutes (TTL, RENEW_BEFORE). No path of the lab's kubeconfig, CA or state is left in it."""
    awx_vars = awx.load_yaml(os.path.join(awx.AWX_INVENTORY, "hosts.yml"))["all"]["vars"]
    images = lab.image_references()

    def edit(hosts, group_vars):
        group_vars.update(awx_vars)
        for hostvars in hosts.values():
            hostvars["segmented_registry_k8s_auth"] = {"kubeconfig": "{{ segmented_registry_awx_kubeconfig }}",
                                                       "context": hostvars["segmented_registry_k8s_auth"]["context"]}
        for environment in group_vars["segmented_registry_environments"]:
            environment["ca_cert"] = "{{ segmented_registry_ca_bundle }}"
        group_vars["segmented_registry_reconcile_integrated_ca_cert"] = "{{ segmented_registry_ca_bundle }}"
        group_vars["segmented_registry_lab_images"] = images
        group_vars.update(credentials_duration=TTL, credentials_renew_before=RENEW_BEFORE)
        for name in ("segmented_registry_lab_state", "segmented_registry_lab_kubeconfig", "segmented_registry_lab_ca"):
            del group_vars[name]

    path = inventory(edit)
    for root, _dirs, names in os.walk(path):
        for name in names:
            with open(os.path.join(root, name)) as handle:
                text = handle.read()
            assert lab.kubeconfig not in text and lab.ca.cert_path not in text and lab.state not in text, name
    return path


class Jobs:
    """Launch the job templates of awx/job_templates.yml as AWX launches them (see the module's
    docstring): ``launch(template, **answers)`` returns (status, events, stdout)."""

    def __init__(self, lab, venv, collections, inventory, root):
        self.venv, self.collections, self.inventory, self.root = venv, collections, inventory, root
        with open(lab.kubeconfig) as handle:
            kubeconfig = handle.read()
        with open(lab.ca.cert_path) as handle:
            ca_bundle = handle.read()
        self.inputs = {"kubeconfig": kubeconfig, "ca_bundle": ca_bundle}
        self.count = 0

    def launch(self, template_suffix, extra_vars=None, **answers):
        template = awx.job_template(template_suffix)
        extravars = awx.survey_extra_vars(template["survey"], answers)
        extravars.update(extra_vars or {})
        self.count += 1
        private = os.path.join(self.root, f"job-{self.count}")
        # the project: what the job template names, from the installed collection (the release)
        installed = os.path.join(self.collections, "ansible_collections", "segmented", "registry")
        os.makedirs(os.path.join(private, "project", os.path.dirname(template["playbook"])))
        shutil.copy(os.path.join(installed, template["playbook"]), os.path.join(private, "project", template["playbook"]))
        shutil.copytree(self.inventory, os.path.join(private, "inventory"))
        env, files = awx.inject(awx.credential_type(), self.inputs, private)
        assert set(files) == {"template.kubeconfig", "template.ca_bundle"}
        env["ANSIBLE_COLLECTIONS_PATH"] = str(self.collections)
        with open(os.path.join(private, "env", "envvars"), "w") as handle:
            json.dump(env, handle)
        with open(os.path.join(private, "env", "extravars"), "w") as handle:
            json.dump(extravars, handle)
        process = subprocess.run([os.path.join(self.venv, "bin", "ansible-runner"), "run", private, "--ident", "job",
                                  "-p", template["playbook"]],
                                 cwd=private, env=_clean_env(os.path.join(self.venv, "bin")),
                                 capture_output=True, text=True, timeout=900, check=False)
        artifacts = os.path.join(private, "artifacts", "job")
        with open(os.path.join(artifacts, "status")) as handle:
            status = handle.read().strip()
        events = []
        for path in sorted(glob.glob(os.path.join(artifacts, "job_events", "*.json")),
                           key=lambda p: int(os.path.basename(p).split("-")[0])):
            with open(path) as handle:
                events.append(json.load(handle))
        with open(os.path.join(artifacts, "stdout")) as handle:
            stdout = handle.read()
        return status, events, stdout + process.stderr[-2000:]


def _stats(events):
    return next(e["event_data"] for e in events if e["event"] == "playbook_on_stats")


def _task_files(events):
    """The files every task of the run came from (without the line number)."""
    return {e["event_data"]["task_path"].rsplit(":", 1)[0] for e in events
            if e["event"] == "playbook_on_task_start" and e["event_data"].get("task_path")}


class PullLoop:
    """Pulls ``reference`` on ``cluster`` as its nodes pull, again and again, until stopped."""

    def __init__(self, lab, cluster, reference):
        self.lab, self.cluster, self.reference = lab, cluster, reference
        self.ok, self.failed, self.digests, self.mirrors = 0, [], set(), set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                pulled = self.lab.pull(self.cluster, self.reference)
                self.digests.add(pulled["digest"])
                self.mirrors.add(tuple(pulled["mirrors"]))
                self.ok += 1
            except LabError as exc:
                self.failed.append(f"{datetime.datetime.now(datetime.timezone.utc):%H:%M:%S.%f} {str(exc)[-300:]}")

    def rounds(self, count):
        """Wait until ``count`` more pulls were made (or the loop died)."""
        target = self.ok + len(self.failed) + count
        while self.ok + len(self.failed) < target and self.thread.is_alive():
            self.thread.join(timeout=0.2)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=120)
        return self.ok, self.failed


def _generations(lab):
    """{consumer: its pull identity's generation Secrets on the registry cluster, newest last},
    found by their labels in any namespace."""
    found = {}
    secrets = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).list_secret_for_all_namespaces(
        label_selector=labels.selector(access=labels.ACCESS_PULL) + "," + labels.LABEL_IDENTITY).items
    for secret in secrets:
        identity = secret.metadata.labels[labels.LABEL_IDENTITY]
        number = labels.generation_number(secret.metadata.name, identity)
        if number is not None and secret.metadata.deletion_timestamp is None:
            found.setdefault(secret.metadata.labels[labels.LABEL_CLUSTER], []).append((number, secret))
    return {cluster: [secret for _number, secret in sorted(items, key=lambda item: item[0])]
            for cluster, items in found.items()}


def _bound_secret(auths_text, registry):
    """The namespace/name of the generation Secret the pull token for ``registry`` in a
    dockerconfigjson text is bound to (the JWT's kubernetes.io claim; the token itself is not kept)."""
    token = dockerconfig.parse(auths_text)[registry]["password"]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["kubernetes.io"]
    return f"{claims['namespace']}/{claims['secret']['name']}"


def _pull_secret_generations(lab, cluster):
    """{where: the generation Secret (namespace/name) its pull token for the cluster's environment
    registry is bound to} for ``cluster``'s global pull secret and its nodes' copy."""
    registry = dict(lab.layout.registries)[cluster]
    secret = kclient.CoreV1Api(lab.api_client(cluster)).read_namespaced_secret("pull-secret", "openshift-config")
    with open(machine_config.node_file(lab.state, cluster)) as handle:
        node_text = handle.read()
    return {"openshift-config/pull-secret": _bound_secret(base64.b64decode(secret.data[dockerconfig.DATA_KEY]).decode(),
                                                          registry),
            "nodes' copy": _bound_secret(node_text, registry)}


def _newest(generations, cluster):
    metadata = generations[cluster][-1].metadata
    return f"{metadata.namespace}/{metadata.name}"


@pytest.fixture
def namespace(lab, unique):
    """A namespace of this test on the registry cluster, removed at its end. Labelled as the
    run's cleanup (tests/conftest.py, pytest_sessionfinish) leaves alone: another pytest session on
    the shared lab that ends while this test runs would otherwise remove it under the test."""
    name = "e2e-" + unique
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
    core.create_namespace({"metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "segmented.registry"}}})
    yield name
    promotion_lab.remove_namespace(lab.api_client(lab.layout.registry_cluster), name)


def test_from_the_tarball_to_day_8_as_awx_runs_it_with_no_failed_node_pull(
        lab, namespace, venv, collections, awx_lab_inventory, tmp_path):
    jobs = Jobs(lab, venv, collections, awx_lab_inventory, str(tmp_path / "jobs"))
    pushed = lab.push(namespace, "app", "v1", 2, SMALL)
    logical = awx.load_yaml(os.path.join(awx_lab_inventory, "group_vars", "all.yml"))["consumer_cluster_logical_registry"]
    reference = f"{logical}/{namespace}/app@{pushed['digest']}"
    loops = []
    try:
        # day 1: the site template, its survey's answer
        status, events, stdout = jobs.launch("site", project=namespace)
        assert status == "successful", stdout[-4000:]
        stats = _stats(events)
        assert set(stats["ok"]) == {"localhost", "registry", "test", "uat", "prod"}, stats
        assert not stats["failures"] and not stats["dark"], stats
        # every task came from the installed collection (the wrapper imports it by FQCN)
        installed = os.path.join(str(collections), "ansible_collections", "segmented", "registry") + os.sep
        files = _task_files(events)
        assert os.path.join(installed, "playbooks", "tasks", "validate.yml") in files, files
        assert all(f.startswith(installed) for f in files), sorted(f for f in files if not f.startswith(installed))

        # promote test -> uat -> prod with the promote template; each consumer then pulls the
        # promoted digest as its nodes pull, in a loop to the end
        for env in CONSUMERS:
            status, events, stdout = jobs.launch("promote", project=namespace, image="app:v1", env=env)
            assert status == "successful", stdout[-4000:]
            # the consumer of env resolves the logical name to its environment registry only:
            # its pulls of the digest prove the copy is there
            loops.append(PullLoop(lab, env, reference))
        for loop in loops:  # a few rounds of every consumer's pulls after the last promotion
            loop.rounds(3)

        # day 8: the daily credentials job, before day 1's tokens expire; its survey's answers
        # renew every token now (renew_before above the longest life left: TTL - 1 on a fresh lab,
        # where site minted them; more where an earlier run on a shared lab left longer ones)
        day1 = _generations(lab)
        assert set(day1) >= set(CONSUMERS), sorted(day1)
        left = [labels.expires_epoch(day1[c][-1].metadata.annotations[labels.ANNOTATION_EXPIRES]) - time.time()
                for c in CONSUMERS]
        assert min(left) > 0, left  # none expired yet: the renewal comes before expiry
        duration = max(TTL, int(max(left)) + 60)
        started = time.monotonic()
        status, events, stdout = jobs.launch("credentials", credentials_duration=duration,
                                             credentials_renew_before=duration - 1)
        assert status == "successful", stdout[-4000:]
        renewed = _generations(lab)
        for cluster in CONSUMERS:  # renewed, and the renewal reached the global pull secret and the nodes
            assert _newest(renewed, cluster) != _newest(day1, cluster), cluster
            assert set(_pull_secret_generations(lab, cluster).values()) == {_newest(renewed, cluster)}, cluster
        for loop in loops:
            loop.rounds(3)
        # then a rotation, with a short grace: the renewed generation is revoked at its end
        status, events, stdout = jobs.launch("rotate credentials", grace=2)
        assert status == "successful", stdout[-4000:]
        for loop in loops:
            loop.rounds(3)
        print(f"day 8 (renewal and rotation): {time.monotonic() - started:.0f}s")
    finally:
        results = {loop.cluster: loop.finish() for loop in loops}
    for cluster, (ok, failed) in results.items():
        assert ok >= 9 and failed == [], (cluster, ok, len(failed), failed[:3])
    assert {loop.cluster: loop.digests for loop in loops} == {env: {pushed["digest"]} for env in CONSUMERS}
    # every consumer's global pull secret and its nodes' copy hold the newest generation, the rotation's
    current = _generations(lab)
    for cluster in CONSUMERS:
        assert _newest(current, cluster) not in (_newest(day1, cluster), _newest(renewed, cluster)), cluster
        assert _pull_secret_generations(lab, cluster) == dict.fromkeys(
            ("openshift-config/pull-secret", "nodes' copy"), _newest(current, cluster)), cluster
    endpoints = dict(lab.layout.registries)
    for loop in loops:  # each consumer's nodes pulled from its own environment registry only
        locations = {location for mirrors in loop.mirrors for location in mirrors}
        assert locations and all(location.split("/")[0] == endpoints[loop.cluster] for location in locations), \
            (loop.cluster, locations)
