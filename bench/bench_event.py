"""Event-driven promotion against promote.yml run by hand, on the running lab, side by side in one
run. Figures, not asserts.

    bench/run event [--runs 20] [--json out.json]

Each of ``--runs`` rounds (at least 20) promotes a tiny image (one 16 KiB layer, one digest for
every round) into the test registry twice, one after the other:

- through the rulebook: ansible-rulebook runs segmented.registry.promote_on_approval (watching a
  namespace of its own) for the whole benchmark; a fresh stream of the image is approved for
  ``test`` by writing its approval annotation; the latency runs from that write's answer until the
  test registry serves the tag by the digest (a manifest HEAD every 100 ms). It holds the throttle
  window (2 s), ansible-playbook's start and the reconcile of the whole namespace (every earlier
  round's tag checked again, and skipped);
- by hand: a fresh stream of the same image in another namespace (the rulebook does not watch it),
  ``ansible-playbook playbooks/promote.yml -e project=... -e image=<stream>:v1 -e env=test``, which
  writes the annotation and copies; the latency runs from its start until the same HEAD answers.

A round waits for the rulebook's run to end before the hand run starts, so that the two never share
the machine. Printed: p50 and p95 of each (nearest rank), the difference and the ratio of the p50s,
and whether the event path's p50 is within the direct run's p50 + 3 s (issue 25's goal).
It needs the lab up (lab/labctl up); its namespaces and copies are removed at the end.
"""
import argparse
import math
import os
import signal
import subprocess
import tempfile
import time
import uuid

import yaml
from kubernetes import client as kclient

from bench.bench_promote import PROMOTE, cleanup, loadavg
from bench.labkit import LAB_INVENTORY, REPO, VENV_BIN, Bench, log, report, run_playbook

RULEBOOK = "segmented.registry.promote_on_approval"
ENV = "test"
POLL = 0.1  # seconds between two HEADs of the tag being waited for
GOAL = 3.0  # seconds: the event path's p50 may exceed the direct run's by this much (issue 25)


def percentile(values, share):
    """The nearest-rank percentile ``share`` (0-100) of ``values``."""
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)], 3)


class Rulebook:
    """ansible-rulebook on RULEBOOK watching ``namespace`` of the lab's registry cluster, with the
    lab inventory and a localhost entry (ansible-rulebook limits its runs to the ruleset's hosts);
    its output (the playbook runs') in ``folder``/rulebook.log."""

    def __init__(self, bench, namespace, folder):
        self.log = os.path.join(folder, "rulebook.log")
        inventory = os.path.join(folder, "inventory")
        os.makedirs(os.path.join(inventory, "group_vars"))
        with open(os.path.join(LAB_INVENTORY, "hosts.yml")) as handle:
            hosts = yaml.safe_load(handle)
        hosts["all"]["hosts"] = {"localhost": {"ansible_connection": "local"}}
        with open(os.path.join(inventory, "hosts.yml"), "w") as handle:
            yaml.safe_dump(hosts, handle)
        with open(os.path.join(LAB_INVENTORY, "group_vars", "all.yml")) as source, \
                open(os.path.join(inventory, "group_vars", "all.yml"), "w") as copy:
            copy.write(source.read())
        variables = os.path.join(folder, "eda-vars.yml")
        with open(variables, "w") as handle:
            yaml.safe_dump({"segmented_registry_eda_namespaces": [namespace],
                            "segmented_registry_eda_environments": sorted(bench.environments)}, handle)
        env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ["PATH"], ANSIBLE_NOCOLOR="1",
                   ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                   SEGMENTED_REGISTRY_LAB_STATE=bench.lab.state,  # the copied inventory finds the lab
                   K8S_AUTH_KUBECONFIG=bench.lab.kubeconfig, K8S_AUTH_CONTEXT=bench.lab.layout.registry_cluster)
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(
                [os.path.join(VENV_BIN, "ansible-rulebook"), "-r", RULEBOOK, "-i", inventory, "--vars", variables],
                cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def text(self):
        if self.process.poll() is not None:
            with open(self.log, errors="replace") as handle:
                raise RuntimeError(f"ansible-rulebook ended ({self.process.returncode}):\n{handle.read()[-3000:]}")
        with open(self.log, errors="replace") as handle:
            return handle.read()

    def runs(self):
        """(runs started, runs ended) so far."""
        text = self.text()
        return text.count("PLAY [Say which change this run answers]"), text.count("PLAY RECAP")

    def wait_idle(self, started_at_least, timeout=300):
        """Until ``started_at_least`` runs have started and every run started has ended."""
        deadline = time.monotonic() + timeout
        while True:
            started, ended = self.runs()
            if started >= started_at_least and started == ended:
                return started
            if time.monotonic() > deadline:
                raise RuntimeError(f"the rulebook's runs: {started} started, {ended} ended after {timeout} s")
            time.sleep(POLL)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)


def served(registry, repository, digest, timeout=300):
    """Seconds (monotonic) at which ``registry`` serves ``repository``:v1 by ``digest``, polled."""
    deadline = time.monotonic() + timeout
    while True:
        found = registry.head_manifest(repository, "v1")
        if found and found["digest"] == digest:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{repository}:v1 not served by {digest} in the {ENV} registry after {timeout} s")
        time.sleep(POLL)


def bench_event(bench, runs):
    suffix = uuid.uuid4().hex[:8]
    watched, by_hand = f"bench-event-{suffix}", f"bench-hand-{suffix}"
    digests = {namespace: bench.lab.push(namespace, "small", "v1", 1, 16 * 1024, seed="bench event")["digest"]
               for namespace in (watched, by_hand)}
    digest = digests[watched]
    folder = tempfile.mkdtemp(prefix="bench-event-")
    rulebook = Rulebook(bench, watched, folder)
    registry = bench.client(ENV)
    rows = []
    try:
        started = rulebook.wait_idle(1)  # the start-up reconcile of the namespace
        for number in range(runs):
            stream = f"small-{number:03}"
            bench.tag_in_source(watched, stream, ["v1"], digest, from_stream="small")
            bench.tag_in_source(by_hand, stream, ["v1"], digests[by_hand], from_stream="small")
            written = time.monotonic()
            bench.approve_all(watched, stream, ["v1"], ENV)
            event = served(registry, f"{watched}/{stream}", digest) - written
            started = rulebook.wait_idle(started + 1)
            begun = time.monotonic()
            run_playbook(PROMOTE, {"project": by_hand, "image": stream + ":v1", "env": ENV})
            hand = served(registry, f"{by_hand}/{stream}", digests[by_hand]) - begun
            rows.append((event, hand))
            log(f"round {number + 1}: through the rulebook {event:.2f} s, promote.yml by hand {hand:.2f} s")
    finally:
        registry.close()
        rulebook.stop()
        cleanup(bench, ENV, [watched + "/", by_hand + "/"], digest)
        core = kclient.CoreV1Api(bench.api())
        for namespace in (watched, by_hand):
            core.delete_namespace(namespace)
    event, hand = [r[0] for r in rows], [r[1] for r in rows]
    figures = {
        "runs": len(rows), "rulebook_runs_with_the_start_up_one": started,
        "event_seconds": [round(x, 3) for x in event], "hand_seconds": [round(x, 3) for x in hand],
        "event_p50": percentile(event, 50), "event_p95": percentile(event, 95),
        "hand_p50": percentile(hand, 50), "hand_p95": percentile(hand, 95),
    }
    figures["p50_difference"] = round(figures["event_p50"] - figures["hand_p50"], 3)
    figures["p50_ratio"] = round(figures["event_p50"] / figures["hand_p50"], 2)
    figures["goal_p50_within_hand_plus_3s"] = figures["p50_difference"] <= GOAL
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="promotions of each kind (at least 20)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.runs < 20:
        parser.error("--runs must be at least 20: a p95 of fewer is the largest value")
    bench = Bench()
    figures = {"machine": {"cpus": os.cpu_count(), "load_before": loadavg()}, "event": bench_event(bench, args.runs)}
    figures["machine"]["load_after"] = loadavg()
    report(figures, args.json)


if __name__ == "__main__":
    main()
