"""Event-driven promotion on the lab: a real ansible-rulebook process runs the rulebook
segmented.registry.promote_on_approval with the event source segmented.registry.approvals, found
in this checkout as ansible-rulebook finds a collection (ansible-galaxy, ANSIBLE_CONFIG). An edit of
an ImageStream tag's approval annotation is promoted: the environment registry serves the digest,
and the run names the change and its field manager. Then the rulebook is stopped, another
environment approved while it is down, and started again: the start-up reconcile promotes it
(restart safety); the test consumer, asking for ImageStreams in the namespace, gets the tag by
digest from the same runs, and loses it with the demotion from test. A storm of 100 edits over 20
tags within 10 s ends with every tag where its last edit put it, after at most 10 runs (the
namespace's changes throttled together). An approval list that cannot be read is logged, recorded
as a failed promotion in the history ConfigMap and copied nowhere, and the source goes on: the fixed
list is promoted. Stopped (SIGSTOP) while its watch is open, past the watch's timeout, while a tag is
approved and etcd compacted past that write, then continued: the source resumes from a
resourceVersion etcd no longer holds, gets 410 Gone, lists again and the missed change is promoted."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml
from kubernetes import client as kclient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import DEFAULT_ANNOTATION_KEY
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import tag_patch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)
MANAGER = "eda-integration-test"
LOGICAL = "registry.apps.lab.local"  # the consumers' one logical registry name
SMALL = 64 * 1024
ENVIRONMENTS = ("test", "uat", "prod")
WINDOW = 2  # seconds: the rulebooks' throttle (once_after) of a namespace's changes
# the storm: every tag edited in each round, one edit every STORM_SECONDS / edits; the last round is
# each tag's final state, and each round adds and removes environments
STORM_TAGS = [f"t{i:02}" for i in range(20)]
STORM_ROUNDS = ["test,uat", "test", "test,uat,prod", "uat"]
STORM_FINAL = ["test", "test,prod", "uat,prod", "prod"]
STORM_SECONDS = 9.5


@pytest.fixture
def namespace(lab, unique):
    """A namespace of its own on the registry cluster (removed with the session's scratch namespaces)."""
    name = "ev-" + unique
    kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def streams(lab):
    return DynamicClient(lab.api_client(lab.layout.registry_cluster)).resources.get(api_version="image.openshift.io/v1", kind="ImageStream")


@pytest.fixture
def rulebook(lab, namespace, inventory, tmp_path):
    """rulebook(asking, variables, verbose) starts ansible-rulebook on promote_on_approval, watching
    ``namespace`` only, with the lab inventory and a localhost entry, the consumers ``asking`` asking
    for ImageStreams in ``namespace``, ``variables`` added to its --vars (``verbose``: -v, the
    source's INFO lines in the log); returns (process, log path). Every process started is stopped
    at the end."""

    def folder_for(asking):
        def edit(hosts, _group_vars):
            for cluster in asking:
                hosts[cluster]["consumer_cluster_image_stream_namespaces"] = [namespace]
        folder = inventory(edit)
        with open(os.path.join(folder, "hosts.yml")) as handle:
            hosts = yaml.safe_load(handle)
        hosts["all"]["hosts"] = {"localhost": {"ansible_connection": "local"}}
        with open(os.path.join(folder, "hosts.yml"), "w") as handle:
            yaml.safe_dump(hosts, handle)
        return folder

    base = {"segmented_registry_eda_namespaces": [namespace], "segmented_registry_eda_environments": ["test", "uat", "prod"]}
    env = dict(
        os.environ,
        PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        K8S_AUTH_KUBECONFIG=lab.kubeconfig,
        K8S_AUTH_CONTEXT=lab.layout.registry_cluster,
    )
    started = []

    def start(asking=(), variables=None, verbose=False):
        log = tmp_path / f"rulebook-{len(started)}.log"
        folder = folder_for(asking)
        path = tmp_path / f"eda-vars-{len(started)}.yml"
        path.write_text(yaml.safe_dump(dict(base, **(variables or {}))))
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [os.path.join(VENV_BIN, "ansible-rulebook"), "-r", "segmented.registry.promote_on_approval", "-i", folder, "--vars", str(path)]
                + (["-v"] if verbose else []),
                cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(process)
        return process, log

    yield start
    for process in started:
        stop(process)


def stop(process):
    """Stop ansible-rulebook and what it started (its session: the playbook runs)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


def words(path):
    """The log as one line of words (the callback wraps long messages)."""
    return " ".join(path.read_text(errors="replace").split())


def logged(process, log, text):
    """A probe for ``eventually``: ansible-rulebook still runs and ``text`` is in its log."""
    def probe():
        assert process.poll() is None, f"ansible-rulebook ended ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}"
        assert text in words(log), f"not yet: {text}"
    return probe


def approve(streams, namespace, stream, tag, value):
    """Set the tag's approval annotation with a conditional JSON patch, as field manager MANAGER."""
    current = streams.get(name=stream, namespace=namespace).to_dict()
    streams.patch(body=tag_patch(current, tag, DEFAULT_ANNOTATION_KEY, value), name=stream, namespace=namespace,
                  content_type="application/json-patch+json", field_manager=MANAGER)


def test_an_approval_edit_is_promoted_and_a_restart_promotes_what_changed_while_down(lab, namespace, streams, rulebook, eventually):
    pushed = lab.push(namespace, "app", "v1", 1, SMALL)
    served = f"{namespace}/app:v1"
    # the test consumer asks for ImageStreams in the namespace (which it has)
    consumer = kclient.CustomObjectsApi(lab.api_client("test"))
    kclient.CoreV1Api(lab.api_client("test")).create_namespace({"metadata": {"name": namespace}})
    process, log = rulebook(asking=("test",))

    def on_consumer():
        """The tags of the test consumer's ImageStream app: {tag: from name}."""
        found = consumer.list_namespaced_custom_object("image.openshift.io", "v1", namespace, "imagestreams")["items"]
        return {tag["name"]: tag["from"]["name"] for stream in found for tag in stream["spec"].get("tags") or []}

    try:
        # the start-up reconcile of the namespace, then the watch: the edit is a changed event
        eventually(logged(process, log, f"initial {namespace} (the whole namespace)"), timeout=90, interval=0.5)
        approve(streams, namespace, "app", "v1", "test")
        eventually(logged(process, log, f"changed {served}: default -> test by {MANAGER}"), timeout=90, interval=0.5)

        def in_registry(environment):
            def probe():
                assert process.poll() is None, log.read_text(errors="replace")[-3000:]
                assert lab.where(namespace)[environment]["tags"].get(served) == pushed["digest"], environment
            return probe

        eventually(in_registry("test"), timeout=90, interval=0.5)

        # the same run writes the consumer's ImageStream tag (after the copies): the logical name by digest
        def on_test_consumer():
            assert on_consumer() == {"v1": f"{LOGICAL}/{namespace}/app@{pushed['digest']}"}

        eventually(on_test_consumer, timeout=60, interval=0.5)

        # killed, then uat approved while nothing watches: the next start reconciles it
        stop(process)
        approve(streams, namespace, "app", "v1", "test,uat")
        process, log = rulebook(asking=("test",))
        eventually(in_registry("uat"), timeout=90, interval=0.5)
        assert lab.where(namespace)["test"]["tags"] == {served: pushed["digest"]}

        # demoted from test: gone from the test registry and from the test consumer's ImageStreams
        approve(streams, namespace, "app", "v1", "uat")

        def demoted():
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert served not in lab.where(namespace)["test"]["tags"]
            assert on_consumer() == {}

        eventually(demoted, timeout=90, interval=0.5)
    finally:
        kclient.CoreV1Api(lab.api_client("test")).delete_namespace(namespace)


def storm_edits():
    """The storm's 100 edits, in order: (tag, value) for every tag in each round; the last round
    sets tag i to STORM_FINAL[i % 4]."""
    rounds = STORM_ROUNDS + [None]
    return [(tag, value or STORM_FINAL[i % len(STORM_FINAL)]) for value in rounds for i, tag in enumerate(STORM_TAGS)]


def runs_for_changes(text, namespace):
    """The runs the throttled rule started, from the rulebook's log: each says which change it
    answers ("changed <namespace>/<stream>:<tag>: ..." or "deleted ...", playbooks/reconcile_event.yml;
    the callback prints it as YAML, so not after '"msg": "')."""
    return re.findall(r"(?:changed|deleted) " + re.escape(namespace) + r"/([^:;\s]+:[^:;\s]+)[:;]", text)


def test_a_storm_of_edits_over_twenty_tags_ends_right_after_at_most_ten_runs(lab, namespace, streams, rulebook, eventually):
    # one small digest shared by every tag (and by the sentinel below): copies cost little
    digests = {lab.push(namespace, "app", tag, 1, SMALL, seed="storm")["digest"] for tag in STORM_TAGS + ["sentinel"]}
    assert len(digests) == 1
    [digest] = digests
    process, log = rulebook()

    def alive():
        assert process.poll() is None, f"ansible-rulebook ended ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}"

    eventually(logged(process, log, f"initial {namespace} (the whole namespace)"), timeout=90, interval=0.5)
    edits = storm_edits()
    assert len(edits) == 100
    started = time.monotonic()
    for number, (tag, value) in enumerate(edits):
        # paced over STORM_SECONDS: edits keep arriving while runs go
        time.sleep(max(0.0, started + number * STORM_SECONDS / len(edits) - time.monotonic()))
        approve(streams, namespace, "app", tag, value)
    ended = time.monotonic()
    print(f"the storm: {len(edits)} edits in {ended - started:.1f} s")

    final = {tag: STORM_FINAL[i % len(STORM_FINAL)].split(",") for i, tag in enumerate(STORM_TAGS)}
    wanted = {env: {f"{namespace}/app:{tag}": digest for tag, envs in final.items() if env in envs} for env in ENVIRONMENTS}

    def converged(expected):
        def probe():
            alive()
            where = lab.where(namespace)
            assert {env: where[env]["tags"] for env in ENVIRONMENTS} == expected
        return probe

    eventually(converged(wanted), timeout=240, interval=1)

    # every run the storm queued has started once a sentinel edit's own run shows: the sentinel
    # opens a window of its own only after the storm's last one closed (at most WINDOW after the
    # last edit), and runs go one at a time, in order
    time.sleep(max(0.0, ended + WINDOW + 0.5 - time.monotonic()))
    approve(streams, namespace, "app", "sentinel", "test")
    eventually(logged(process, log, f"changed {namespace}/app:sentinel: "), timeout=120, interval=0.5)
    text = words(log)
    runs = runs_for_changes(text[:text.index(f"changed {namespace}/app:sentinel: ")], namespace)
    print(f"{len(runs)} runs for the storm, first events: {runs}")
    assert 1 <= len(runs) <= 10, runs
    # the sentinel's run promotes it and leaves the storm's tags as they were
    wanted["test"][f"{namespace}/app:sentinel"] = digest
    eventually(converged(wanted), timeout=120, interval=1)


def test_an_unreadable_approval_list_is_logged_recorded_as_failed_and_copied_nowhere(lab, namespace, streams, rulebook, eventually):
    pushed = lab.push(namespace, "app", "v1", 1, SMALL)
    served = f"{namespace}/app:v1"
    process, log = rulebook()

    eventually(logged(process, log, f"initial {namespace} (the whole namespace)"), timeout=90, interval=0.5)
    approve(streams, namespace, "app", "v1", "[test")  # neither a comma-separated nor a JSON/YAML list
    # the source's error event: its message in the rulebook's log, then the reconcile of that tag
    eventually(logged(process, log, 'has the value "[test", which cannot be read as a list of environments'), timeout=90, interval=0.5)
    eventually(logged(process, log, f"error {served}"), timeout=90, interval=0.5)

    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))

    def failed_records():
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            data = core.read_namespaced_config_map("segmented-registry-history-app", namespace).data or {}
        except ApiException as exc:
            assert exc.status == 404, exc
            raise AssertionError("no history ConfigMap yet")
        for environment in ("test", "uat", "prod"):
            [entry] = json.loads(data[f"v1.{environment}"])
            assert (entry["action"], entry["result"], entry["digest_before"], entry["digest_after"]) == ("promote", "failed", None, None), entry
            assert entry["message"].startswith("the approval list cannot be read, so nothing was copied or removed for this tag "
                                               f"(the source serves {pushed['digest']})"), entry

    eventually(failed_records, timeout=90, interval=0.5)
    registries = lab.where(namespace)
    assert all(served not in registries[environment]["tags"] for environment in ("test", "uat", "prod")), registries

    # the source is still watching: the fixed list is promoted
    approve(streams, namespace, "app", "v1", "test")

    def in_test():
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        assert lab.where(namespace)["test"]["tags"].get(served) == pushed["digest"]

    eventually(in_test, timeout=90, interval=0.5)


WATCH_TIMEOUT = 3  # seconds: the 410 test's watches (segmented_registry_eda_watch_timeout)


def test_a_watch_resumed_after_etcd_compacted_past_it_lists_again_and_promotes_what_it_missed(
        lab, namespace, streams, rulebook, eventually):
    pushed = lab.push(namespace, "app", "v1", 1, SMALL)
    served = f"{namespace}/app:v1"
    process, log = rulebook(variables={"segmented_registry_eda_watch_timeout": WATCH_TIMEOUT}, verbose=True)

    # the start-up reconcile has run to its end: the source watches, nothing else is at work
    eventually(logged(process, log, f"initial {namespace} (the whole namespace)"), timeout=90, interval=0.5)
    eventually(logged(process, log, "PLAY RECAP"), timeout=90, interval=0.5)
    resumed = words(log).count("too far behind")
    # stopped with its watch open; the API server ends that watch at its timeout while nothing reads,
    # so the approval below reaches no open watch, and etcd is compacted past it
    os.killpg(process.pid, signal.SIGSTOP)
    try:
        time.sleep(WATCH_TIMEOUT + 2)
        approve(streams, namespace, "app", "v1", "test")
        written = int(streams.get(name="app", namespace=namespace).metadata.resourceVersion)
        assert lab.compact() >= written
    finally:
        os.killpg(process.pid, signal.SIGCONT)

    def gone_then_listed():
        logged(process, log, f"changed {served}: default -> test by {MANAGER}")()
        assert words(log).count("too far behind") > resumed, "the resumed watch did not end with 410 Gone"

    eventually(gone_then_listed, timeout=90, interval=0.5)

    def in_test():
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        assert lab.where(namespace)["test"]["tags"].get(served) == pushed["digest"]

    eventually(in_test, timeout=90, interval=0.5)
