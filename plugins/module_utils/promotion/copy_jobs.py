# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Copies carried out by Kubernetes Jobs on the registry cluster (the option ``copy_jobs``), so that no
image byte passes through the machine that runs Ansible.

The plan is made as for an in-process run; its copies are sharded (``copy_plan``) by namespace (``shards``: a
namespace's copies, and so every ``requires`` between them, stay in one Job) over at most
``copy_jobs.jobs`` Jobs. Each Job runs the collection's copier (``components/copier``) as the
promotion job's service account, which the registry cluster role binds to push into the
environment registries and nothing else; its plan travels in a ConfigMap owned by the Job, its
registry credentials are projected service account tokens (never in the plan), and it reaches every
registry through its cluster Service: the integrated registry's Service, each environment's
``registry`` Service (plain HTTP behind an ``edge`` Route, else TLS), the token server's Service
for the environment registries' token realm. Services are named by their cluster IP in the pod's
``hostAliases``, so no cluster DNS is needed; TLS is verified against the service CA, injected
into the ConfigMap ``CA_CONFIG_MAP`` by OpenShift's service CA operator
(``service.beta.openshift.io/inject-cabundle``), and the inventory's ``ca_cert`` of an environment
whose pod serves a certificate of its own. The copier reports every copy as a JSON line of its log;
the results land on the plan's actions exactly as the in-process executor's do. A Job that ended
without reporting a copy (killed, out of time) leaves that copy failed, naming the Job; the
copier puts a manifest last, so no tag is ever left pointing at missing blobs.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any, Callable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.cluster import CONFIG_MAP, Cluster, Kind
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import parse_service_account
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, PromotionError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Environment
from ansible_collections.segmented.registry.plugins.module_utils.promotion.copy_plan import (
    CA_CONFIG_MAP,
    EXTRA_CA_KEY,
    RUN_LABEL,
    SERVICE_CA_KEY,
    SERVICE_HOST,
    PLAN_FILE,
    Settings,
    environment_endpoint,
    is_summary,
    job_manifest,
    job_outcome,
    pack,
    parse_report,
    plan_document,
    pod_outcome,
    shards,
)
from ansible_collections.segmented.registry.plugins.module_utils.promotion.plan import FAILED

JOB = Kind("batch/v1", "Job", "jobs", True)
POD = Kind("v1", "Pod", "pods", True)
SERVICE = Kind("v1", "Service", "services", True)
EVENT = Kind("v1", "Event", "events", True)
INJECT_ANNOTATION = "service.beta.openshift.io/inject-cabundle"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
#: How often the Jobs and their pods are read while they run (one LIST of each) unless a copier's
#: summary comes first, and the service CA's ConfigMap while the CA is injected.
POLL_SECONDS = 0.5
#: A Job of at most this many copies has its copier's log followed (``_follow``): it ends a second or
#: so sooner, which matters to a short Job. A longer one is not: every line of a followed log
#: travels through the kubelet and the API server as it is written, which cost the lab's 2 cores
#: about 60 CPU seconds (10 %) more for one Job of 30,000 copies (bench/run jobs, the scale part).
FOLLOW_AT_MOST = 200
#: A Job with no pod after this long has its events read: a pod the cluster refuses to create
#: (admission, quota) ends the Job's wait with the cluster's reason instead of its whole timeout.
POD_GRACE_SECONDS = 20


class CopyJobs:
    """Runs a plan's copies as Jobs on ``cluster`` (the registry cluster). ``environments``: the
    inventory's; ``realms``: the token realm each registry's challenge named, by registry
    (``source`` and environment names); ``ca_certs``: PEM of the inventory's ``ca_cert`` files."""

    def __init__(
        self,
        cluster: Cluster,
        settings: Settings,
        environments: Mapping[str, Environment],
        realms: Mapping[str, str | None],
        ca_certs: str,
        parallel_images: int,
        parallel_blobs: int,
        retries: int,
        registry_timeout: int,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.environments = environments
        self.realms = realms
        self.ca_certs = ca_certs
        self.parallel = (parallel_images, parallel_blobs, retries, registry_timeout)
        self.sleep = sleep
        self.clock = clock
        self.namespace = parse_service_account(settings.service_account)[0]
        self.jobs: dict[str, list[dict[str, Any]]] = {}  # Job name -> its copies
        #: Job name -> its copier's whole report, read from its log as it was written (``_follow``)
        self.summaries: dict[str, dict[int, dict[str, Any]]] = {}
        self.api_calls = 0  # requests to the registry cluster's API (the module's stats)

    def endpoints(self) -> dict[str, dict[str, Any]]:
        """How a Job reaches each registry: ``source`` (the integrated registry's Service) and every
        environment that is a promotion target (``environment_endpoint``)."""
        service = self.settings.integrated_service.rsplit(":", 1)[0]
        out = {"source": {"registry": self.settings.integrated_service, "ca": SERVICE_CA_KEY, "service": service, "host": service}}
        for name, env in self.environments.items():
            if env.is_present:
                out[name] = environment_endpoint(env)
        return out

    def realm_map(self) -> dict[str, str]:
        """Each registry's realm -> its in-cluster token endpoint: the integrated registry's own
        (``/openshift/token`` on its Service, as OpenShift's registry serves it), the token server's
        Service for the environment registries."""
        out = {}
        for registry, realm in self.realms.items():
            if not realm:
                continue
            if registry == "source":
                out[realm] = f"https://{self.settings.integrated_service}/openshift/token"
            else:
                out[realm] = f"https://{self.settings.token_server_service}/token"
        return out

    def host_aliases(self, endpoints: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
        """``{cluster IP: host names}``: every Service the Job talks to, by the name its certificate holds."""
        wanted = {(endpoint["service"], endpoint["host"]) for endpoint in endpoints.values()}
        wanted.add((self.settings.token_server_service.rsplit(":", 1)[0],) * 2)
        aliases: dict[str, set[str]] = {}
        for service, host in sorted(wanted):
            match = SERVICE_HOST.match(service)
            if match is None:  # pragma: no cover - endpoints are built from checked names
                continue
            found = self.cluster.get(SERVICE, match["name"], match["namespace"])
            self.api_calls += 1
            address = ((found or {}).get("spec") or {}).get("clusterIP")
            if not found or not address or address == "None":
                raise PromotionError(
                    f"copy_jobs: the Service {match['namespace']}/{match['name']} has no cluster IP on the registry cluster "
                    f"({'missing' if not found else 'headless'}); "
                    "the copy Jobs reach every registry through its Service (deploy the environment with roles/registry_cluster, or fix "
                    "copy_jobs.integrated_service / token_server_service)",
                    field="copy_jobs",
                )
            aliases.setdefault(address, set()).update({service, host})
        return aliases

    def ensure_ca(self) -> None:
        """The CA ConfigMap: the service CA injects its certificate; the inventory's ``ca_cert`` files
        are added. Waits (at most 60 s) for the injection."""

        def compute(current: dict[str, Any] | None) -> dict[str, Any] | None:
            meta = (current or {}).get("metadata") or {}
            data = dict((current or {}).get("data") or {})
            if (meta.get("annotations") or {}).get(INJECT_ANNOTATION) == "true" and data.get(EXTRA_CA_KEY, "") == self.ca_certs:
                return None
            data[EXTRA_CA_KEY] = self.ca_certs
            wanted = dict(current or {"apiVersion": "v1", "kind": "ConfigMap"})
            wanted["metadata"] = dict(
                meta, name=CA_CONFIG_MAP, namespace=self.namespace, annotations=dict(meta.get("annotations") or {}, **{INJECT_ANNOTATION: "true"})
            )
            wanted["data"] = data
            return wanted

        current = self.cluster.edit(CONFIG_MAP, CA_CONFIG_MAP, self.namespace, compute) or {}
        self.api_calls += 2
        deadline = self.clock() + 60
        while not ((current.get("data") or {}).get(SERVICE_CA_KEY) or "").strip():
            if self.clock() > deadline:
                raise PromotionError(
                    f"copy_jobs: the service CA did not put {SERVICE_CA_KEY} into ConfigMap {self.namespace}/{CA_CONFIG_MAP} within 60 s "
                    f'(annotation {INJECT_ANNOTATION}: "true"); is OpenShift\'s service CA operator running?',
                    field="copy_jobs",
                )
            self.sleep(POLL_SECONDS)
            current = self.cluster.get(CONFIG_MAP, CA_CONFIG_MAP, self.namespace) or {}
            self.api_calls += 1

    def execute(self, copies: list[dict[str, Any]], actual: Mapping[str, Mapping[str, Mapping[str, str]]]) -> None:
        """Run ``copies`` (the plan's copy actions) in Jobs and put each one's result on it."""
        if not copies:
            return
        for item in copies:
            item.update({"blobs_sent": 0, "blobs_mounted": 0, "blobs_present": 0, "manifests_put": 0, "bytes_sent": 0})
        endpoints = self.endpoints()
        self.ensure_ca()
        aliases = self.host_aliases(endpoints)
        realms = self.realm_map()
        images, blobs, retries, timeout = self.parallel
        numbered = list(enumerate(copies))
        index = {id(item): number for number, item in numbered}
        run = f"{int(time.time()):x}-{secrets.token_hex(3)}"
        started = self.clock()
        for number, shard in enumerate(shards(copies, self.settings.jobs)):
            name = f"segmented-registry-copy-{run}-{number}"
            document = plan_document([(index[id(item)], item) for item in shard], endpoints, realms, actual, images, blobs, retries, timeout)
            parts = pack(document)
            job = self.cluster.create(JOB, job_manifest(name, self.namespace, run, self.settings, aliases, len(parts)), self.namespace)
            owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job["metadata"]["uid"], "controller": False}
            for part, packed in enumerate(parts):
                configmap = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"{name}-{part}", "namespace": self.namespace, "labels": {RUN_LABEL: run}, "ownerReferences": [owner]},
                    "binaryData": {PLAN_FILE: packed},
                }
                self.cluster.create(CONFIG_MAP, configmap, self.namespace)
            self.api_calls += 1 + len(parts)
            self.jobs[name] = shard
            for item in shard:
                item["job"] = name
        try:
            outcomes = self._wait(run, started)
            for name, why in outcomes.items():
                results, problem = (self.summaries[name], "") if name in self.summaries else self._results(name)
                why = "; ".join(part for part in (why, problem) if part)
                for item in self.jobs[name]:
                    reported = results.get(index[id(item)])
                    if reported:
                        item.update(reported)
                    else:
                        item["result"] = FAILED
                        item["error"] = (
                            f"the copy Job {self.namespace}/{name} ended without reporting this copy ({why or 'no report in its log'}); "
                            "a tag is put only after its whole image, so none is left half-copied: run again"
                        )
        finally:
            for name in self.jobs:
                self.cluster.delete(JOB, name, self.namespace, missing_ok=True, propagation="Background")
                self.api_calls += 1

    def preview(self, copies: list[dict[str, Any]]) -> None:
        """Check mode: what a real run needs of the registry cluster, asked and nothing changed: the
        Services the Jobs would reach (each one read), and each Job created as a server-side dry
        run (its spec validated, the account's right to create it reviewed). Raises
        ``PromotionError`` or ``ClusterError`` naming what is missing."""
        if not copies:
            return
        if not self.cluster.dry_run:
            raise PromotionError("copy_jobs: a preview runs in check mode only", field="copy_jobs")
        aliases = self.host_aliases(self.endpoints())
        run = "check-mode"
        for number, _shard in enumerate(shards(copies, self.settings.jobs)):
            self.cluster.create(JOB, job_manifest(f"segmented-registry-copy-{run}-{number}", self.namespace, run, self.settings, aliases), self.namespace)
            self.api_calls += 1

    def _wait(self, run: str, started: float) -> dict[str, str]:
        """Every Job's ``why`` once all have finished (or ``copy_jobs.timeout`` passed). Each look is
        one LIST of the run's Jobs and one of their pods, however many they are, every
        ``POLL_SECONDS``, or at once when a followed copier's log ends in its summary (``_follow``,
        Jobs of at most ``FOLLOW_AT_MOST`` copies): that line comes a second or so before the kubelet
        reports the copier ended. A Job is over at its summary, when its copier ended
        (``pod_outcome``) or when the Job itself is (``job_outcome``: a pod retried, a deadline)."""
        pending = set(self.jobs)
        outcomes: dict[str, str] = {}
        deadline = started + self.settings.timeout + 60
        selector = f"{RUN_LABEL}={run}"
        woken = threading.Event()
        followed: set[str] = set()
        while pending:
            woken.clear()
            listed = {job["metadata"]["name"]: job for job in self.cluster.list(JOB, self.namespace, label_selector=selector)}
            pods = self.cluster.list(POD, self.namespace, label_selector=selector)
            self.api_calls += 2
            ended: dict[str, str] = {}
            for pod in pods:
                job = ((pod.get("metadata") or {}).get("labels") or {}).get(JOB_NAME_LABEL, "")
                finished, why = pod_outcome(pod)
                if finished:
                    ended[job] = why
                elif pod["metadata"]["name"] not in followed and _copier_started(pod) and len(self.jobs.get(job, ())) <= FOLLOW_AT_MOST:
                    followed.add(pod["metadata"]["name"])
                    self.api_calls += 1
                    threading.Thread(target=self._follow, args=(job, pod["metadata"]["name"], deadline, woken), daemon=True).start()
            for name in sorted(pending):
                if name in self.summaries:
                    finished, why = True, ""
                elif name in ended:
                    finished, why = True, ended[name]
                elif name in listed:
                    finished, why = job_outcome(listed[name])
                else:
                    finished, why = True, "the Job was deleted"
                if not finished and self.clock() - started > POD_GRACE_SECONDS and not _has_pods(listed[name]):
                    why = self._refused(name)
                    finished = bool(why)
                if finished:
                    outcomes[name] = why
                    pending.discard(name)
            if not pending:
                break
            if self.clock() > deadline:
                for name in pending:
                    outcomes[name] = f"not finished after copy_jobs.timeout ({self.settings.timeout} s)"
                break
            woken.wait(POLL_SECONDS)
        return outcomes

    def _follow(self, job: str, pod: str, deadline: float, woken: threading.Event) -> None:
        """Reads the log of ``pod`` (of ``job``) as its copier writes it; at the summary line, which
        the copier writes after every copy's, the Job's report is whole (``summaries``) and
        ``woken`` wakes ``_wait``. A log that ends or breaks before its summary leaves the Job to its
        status, and its logs are read again then (``_results``)."""
        lines: list[str] = []
        try:
            for line in self.cluster.follow_log(self.namespace, pod, "copier", max(1.0, deadline - self.clock())):
                lines.append(line)
                if is_summary(line):
                    self.summaries[job] = parse_report("\n".join(lines))
                    break
        except ClusterError:
            pass
        finally:
            woken.set()

    def _refused(self, name: str) -> str:
        """Why the cluster refuses to create the pods of Job ``name`` (its latest FailedCreate event), or ""."""
        events = self.cluster.list(EVENT, self.namespace, field_selector=f"involvedObject.kind=Job,involvedObject.name={name},reason=FailedCreate")
        self.api_calls += 1
        if not events:
            return ""
        latest = max(events, key=lambda event: event.get("lastTimestamp") or event.get("eventTime") or "")
        return f"the cluster refuses to create its pod: {latest.get('message')}"

    def _results(self, name: str) -> tuple[dict[int, dict[str, Any]], str]:
        """``(results, problem)``: what the Job's pods reported, oldest pod first (a retried pod's
        report wins), and why a log could not be read (its copies then stay unreported)."""
        pods = self.cluster.list(POD, self.namespace, label_selector=f"{JOB_NAME_LABEL}={name}")
        self.api_calls += 1
        results: dict[int, dict[str, Any]] = {}
        problem = ""
        for pod in sorted(pods, key=lambda p: ((p.get("metadata") or {}).get("creationTimestamp") or "", p["metadata"]["name"])):
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            if not any((status.get("state") or {}).get("terminated") for status in statuses):
                continue
            self.api_calls += 1
            try:
                results.update(parse_report(self.cluster.log(self.namespace, pod["metadata"]["name"], "copier")))
            except ClusterError as exc:
                problem = str(exc)
        return results, problem


def _copier_started(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's copier has started (its log can be read)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any(status.get("name") == "copier" and (status.get("state") or {}).get("running") for status in statuses)


def _has_pods(job: Mapping[str, Any]) -> bool:
    """Whether the Job made a pod (running, or ended)."""
    status = job.get("status") or {}
    return any(status.get(key) for key in ("active", "succeeded", "failed", "terminating", "ready"))
