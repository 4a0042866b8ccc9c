#!/usr/bin/env python3
"""The lab's stand-in for the machine-config operator and daemon, limited to the global pull secret.

On OpenShift the machine-config operator renders ``openshift-config/pull-secret`` into every node's
``/var/lib/kubelet/config.json``, which CRI-O reads at pull time: a node pulls with its copy, not
with the API object. A change of the Secret makes the render controller point each
MachineConfigPool at a new rendered MachineConfig (``spec.configuration.name``, which bumps the
pool's ``metadata.generation``); the pool then reports ``Updating`` until the daemon on each of its
nodes has written the file, then ``Updated`` with ``updatedMachineCount == machineCount`` for that
``observedGeneration``. Since OpenShift 4.7 a pull-secret change is applied without a drain or a
reboot (the daemon writes the file and reloads CRI-O), but not at once: the render, then each
node's daemon in turn, take seconds to minutes.

This process does the same for every cluster of the lab:

- it watches ``openshift-config/pull-secret`` (a list, then a watch from its resourceVersion;
  any error or a closed watch relists, after a pause that grows to 10 s while the API server is
  away);
- on a change of its ``.dockerconfigjson`` it points the pools ``master`` and ``worker``
  (``machineconfiguration.openshift.io/v1``; made here when missing) at
  ``rendered-<pool>-<digest of the content>`` and reports them ``Updating`` (status conditions
  ``Updated``/``Updating``/``Degraded``/``NodeDegraded``/``RenderDegraded``, ``observedGeneration``,
  ``machineCount``, ``updatedMachineCount``, ``readyMachineCount``, ``unavailableMachineCount``,
  ``degradedMachineCount`` as the operator writes them; one machine per pool);
- ``lag`` seconds later (``SEGMENTED_REGISTRY_LAB_NODE_LAG``, default 4) it writes each pool's
  node copy, ``<state>/nodes/<cluster>/<pool>/config.json`` (mode 0600), and reports the pool
  ``Updated``. A change that comes while a rollout waits starts the lag again, for the newer
  content (the daemon goes on to the newest rendered config);
- a content its nodes hold already (a lab restart) is reported ``Updated`` without a lag.

``labctl pull`` pulls with the worker node's copy. Not modelled: MachineConfig objects themselves,
``maxUnavailable`` (one machine per pool), paused pools, MachineConfigNode objects (4.16+), and
everything else the operator renders.

  machine_config.py --config machine-config.json     (labctl writes the file and starts the process)
"""
import argparse
import base64
import datetime
import hashlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time

from kubernetes import config as kconfig
from kubernetes import watch
from kubernetes.client import CoreV1Api
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

LOG = logging.getLogger("machine-config")
POOLS = ("master", "worker")
MACHINES_PER_POOL = 1
NAMESPACE, NAME, KEY = "openshift-config", "pull-secret", ".dockerconfigjson"
LAG_ENV = "SEGMENTED_REGISTRY_LAB_NODE_LAG"
DEFAULT_LAG = 4.0
RESYNC_SECONDS = 60
NODE_FILE = "config.json"


# -- pure: what the operator writes ------------------------------------------------------------
def content_digest(content):
    """The part of a rendered MachineConfig's name that changes with the pull secret's bytes."""
    return hashlib.sha256(content).hexdigest()[:32]


def rendered_name(pool, digest):
    return f"rendered-{pool}-{digest}"


def pool_spec(pool, configuration):
    """The spec of a pool as the installer creates it, pointed at ``configuration``."""
    role = {"matchLabels": {"machineconfiguration.openshift.io/role": pool}}
    return {"machineConfigSelector": role,
            "nodeSelector": {"matchLabels": {f"node-role.kubernetes.io/{pool}": ""}},
            "paused": False,
            "configuration": {"name": configuration, "source": [
                {"apiVersion": "machineconfiguration.openshift.io/v1", "kind": "MachineConfig", "name": f"00-{pool}"}]}}


def pool_status(pool, generation, target, current, updated, previous, now):
    """The status the pool controller writes for ``pool``: ``target`` is the rendered config the pool's spec
    names, ``current`` the one its machines have, ``updated`` whether they have ``target``.
    ``previous`` is the status there now (a condition keeps its lastTransitionTime while its status
    stays); ``now`` an RFC 3339 time."""
    old = {c.get("type"): c for c in (previous or {}).get("conditions") or []}

    def condition(kind, true, message=""):
        status = "True" if true else "False"
        since = old[kind].get("lastTransitionTime") if old.get(kind, {}).get("status") == status else now
        return {"type": kind, "status": status, "lastTransitionTime": since, "reason": "", "message": message}

    done = MACHINES_PER_POOL if updated else 0
    return {
        "observedGeneration": generation,
        "configuration": {"name": target if updated else current,
                          "source": [{"apiVersion": "machineconfiguration.openshift.io/v1", "kind": "MachineConfig",
                                      "name": f"00-{pool}"}]},
        "machineCount": MACHINES_PER_POOL,
        "updatedMachineCount": done,
        "readyMachineCount": done,
        "unavailableMachineCount": MACHINES_PER_POOL - done,
        "degradedMachineCount": 0,
        "conditions": [
            condition("RenderDegraded", False),
            condition("NodeDegraded", False),
            condition("Degraded", False),
            condition("Updated", updated, f"All nodes are updated with MachineConfig {target}" if updated else ""),
            condition("Updating", not updated, "" if updated else f"All nodes are updating to MachineConfig {target}"),
        ],
    }


def node_file(state, cluster, pool="worker"):
    """Where a node of ``pool`` of ``cluster`` keeps its copy of the pull secret."""
    return os.path.join(state, "nodes", cluster, pool, NODE_FILE)


def lag_from_env(environ):
    text = environ.get(LAG_ENV, "")
    if not text:
        return DEFAULT_LAG
    try:
        lag = float(text)
    except ValueError:
        lag = -1
    if lag < 0:
        raise ValueError(f"{LAG_ENV}={text!r}: give the node lag in seconds, a number >= 0 (default {DEFAULT_LAG:g})")
    return lag


# -- one cluster -------------------------------------------------------------------------------
class ClusterRollout:
    """Watches one cluster's pull secret and rolls it out to its pools' node copies."""

    def __init__(self, cluster, api_client, state, lag, stopping):
        self.cluster, self.state, self.lag, self.stopping = cluster, state, lag, stopping
        self.api_client = api_client
        self.core = CoreV1Api(api_client)
        self._pools = None
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.wanted = None  # the Secret's content as the watch saw it last
        self.target = None  # (digest, content) being rolled out
        self.deadline = 0.0

    # the watch: only keeps ``wanted`` up to date
    def watch(self):
        pause = 1
        while not self.stopping.is_set():
            try:
                listing = self.core.list_namespaced_secret(NAMESPACE, field_selector=f"metadata.name={NAME}")
                for item in listing.items:
                    self._saw(item.data)
                version = listing.metadata.resource_version
                pause = 1
                for event in watch.Watch().stream(self.core.list_namespaced_secret, NAMESPACE,
                                                  field_selector=f"metadata.name={NAME}", resource_version=version,
                                                  timeout_seconds=240):
                    if self.stopping.is_set():
                        return
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._saw(event["object"].data)
                    elif event["type"] == "DELETED":
                        LOG.warning("%s: %s/%s was deleted; the nodes keep their copy", self.cluster, NAMESPACE, NAME)
                    else:  # ERROR (410 Gone: the version is too old): relist
                        LOG.info("%s: watch ended: %s", self.cluster, (event.get("raw_object") or {}).get("message"))
                        break
            except Exception as exc:  # an API server restart, 410 Gone, a timeout: relist
                LOG.info("%s: watch of %s/%s ended (%s); relisting in %ds", self.cluster, NAMESPACE, NAME,
                         getattr(exc, "status", exc), pause)
                self.stopping.wait(pause)
                pause = min(pause * 2, 10)

    def _saw(self, data):
        content = base64.b64decode((data or {}).get(KEY, ""))
        with self.lock:
            changed = content != self.wanted
            self.wanted = content
        if changed:
            self.wake.set()

    # the controller and the daemon
    def run(self):
        threading.Thread(target=self.watch, name=f"watch-{self.cluster}", daemon=True).start()
        pause = 1
        while not self.stopping.is_set():
            try:
                wait = self.reconcile()
                pause = 1
            except Exception as exc:  # the API server is away, or a write met a conflict: again soon
                LOG.warning("%s: reconcile failed (%s); again in %ds", self.cluster,
                            getattr(exc, "status", None) or type(exc).__name__, pause)
                wait, pause = pause, min(pause * 2, 10)
            self.wake.wait(RESYNC_SECONDS if wait is None else max(wait, 0.05))
            self.wake.clear()

    @property
    def pools(self):
        """The MachineConfigPool resource (discovered on first use: the API server may be away)."""
        if self._pools is None:
            self._pools = DynamicClient(self.api_client).resources.get(
                api_version="machineconfiguration.openshift.io/v1", kind="MachineConfigPool")
        return self._pools

    def _applied(self, pool):
        try:
            with open(node_file(self.state, self.cluster, pool), "rb") as handle:
                return content_digest(handle.read())
        except FileNotFoundError:
            return None

    def _write_node_copy(self, pool, content):
        path = node_file(self.state, self.cluster, pool)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
        with os.fdopen(fd, "wb") as handle:  # mkstemp makes it 0600
            handle.write(content)
        os.replace(tmp, path)

    def reconcile(self):
        """One pass: render a new content, apply it to the nodes once its lag is over, report the
        pools. Returns seconds until the next step is due, or None."""
        with self.lock:
            wanted = self.wanted
        if wanted is None:
            return None
        digest = content_digest(wanted)
        if self.target is None or self.target[0] != digest:
            self.target = (digest, wanted)
            self.deadline = time.monotonic() + self.lag
            LOG.info("%s: pull secret changed: rendering %s", self.cluster, digest)
        due = None
        for pool in POOLS:
            applied = self._applied(pool)
            if applied != digest and time.monotonic() >= self.deadline:
                self._write_node_copy(pool, wanted)
                applied = digest
                LOG.info("%s: nodes of pool %s have %s", self.cluster, pool, digest)
            self._report(pool, digest, applied)
            if applied != digest:
                due = self.deadline - time.monotonic()
        return due

    def _report(self, pool, digest, applied):
        target = rendered_name(pool, digest)
        try:
            found = self.pools.get(name=pool).to_dict()
        except ApiException as exc:
            if exc.status != 404:
                raise
            found = self.pools.create(body={"apiVersion": "machineconfiguration.openshift.io/v1",
                                            "kind": "MachineConfigPool", "metadata": {"name": pool},
                                            "spec": pool_spec(pool, target)}).to_dict()
        if ((found.get("spec") or {}).get("configuration") or {}).get("name") != target:
            found = self.pools.patch(name=pool, body={"spec": pool_spec(pool, target)},
                                     content_type="application/merge-patch+json").to_dict()
        previous = found.get("status") or {}
        current = rendered_name(pool, applied) if applied else ((previous.get("configuration") or {}).get("name") or target)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        wanted = pool_status(pool, found["metadata"]["generation"], target, current, applied == digest, previous, now)
        if {k: previous.get(k) for k in wanted} != wanted:
            self.pools.status.patch(name=pool, body={"status": wanted}, content_type="application/merge-patch+json")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="JSON settings written by labctl")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with open(args.config) as handle:
        settings = json.load(handle)
    lag = lag_from_env(os.environ)
    stopping = threading.Event()

    def stop(*_):
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("node lag %gs; clusters %s", lag, ", ".join(settings["clusters"]))
    for cluster in settings["clusters"]:
        rollout = ClusterRollout(cluster, kconfig.new_client_from_config(config_file=settings["kubeconfig"], context=cluster),
                                 settings["state"], lag, stopping)
        threading.Thread(target=rollout.run, name=f"rollout-{cluster}", daemon=True).start()
    stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
