# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Copies carried out by Kubernetes Jobs on the registry cluster (the option ``copy_jobs``), so that no
image byte passes through the machine that runs Ansible.

The plan is made as for an in-process run; its copies are sharded by namespace (``shards``: a
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

import base64
import gzip
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.cluster import CONFIG_MAP, Cluster, Kind
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import TOKEN_SERVER_AUDIENCE, parse_service_account
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, PromotionError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Environment
from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import TERMINATION_EDGE, TERMINATION_REENCRYPT
from ansible_collections.segmented.registry.plugins.module_utils.promotion.plan import FAILED

JOB = Kind("batch/v1", "Job", "jobs", True)
POD = Kind("v1", "Pod", "pods", True)
SERVICE = Kind("v1", "Service", "services", True)

#: The ConfigMap in the Jobs' namespace that the service CA fills with its certificate.
CA_CONFIG_MAP = "segmented-registry-copier-ca"
INJECT_ANNOTATION = "service.beta.openshift.io/inject-cabundle"
SERVICE_CA_KEY = "service-ca.crt"
EXTRA_CA_KEY = "extra-ca.crt"
RUN_LABEL = "segmented.registry/copy-run"
#: How often the Jobs' status is read while they run (one GET per running Job).
POLL_SECONDS = 0.5
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
REGISTRY_SERVICE = "registry"
REGISTRY_PORT = 5000
#: A ConfigMap holds at most 1 MiB; a plan (gzip) over this is split over several.
PLAN_LIMIT_BYTES = 1000 * 1024
#: What the copier reports per copy (its README), carried onto the action.
REPORTED = ("result", "error", "reason", "bytes_sent", "blobs_sent", "blobs_mounted", "blobs_present", "manifests_put", "seconds")
PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
SERVICE_HOST = re.compile(r"^(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$")

#: The option ``copy_jobs`` (documented in the ``promotion`` doc fragment).
OPTION_SPEC = {
    "type": "dict",
    "options": {
        "image": {"type": "str", "required": True},
        "jobs": {"type": "int", "default": 1},
        "integrated_service": {"type": "str", "default": "image-registry.openshift-image-registry.svc:5000"},
        "token_server_service": {"type": "str", "default": "token-server.segmented-registry.svc:8443", "no_log": False},
        "timeout": {"type": "int", "default": 1800},
    },
}


@dataclass(frozen=True)
class Settings:
    """The option ``copy_jobs``, checked; ``service_account`` is the promotion job's (``namespace/name``)."""

    image: str
    jobs: int
    integrated_service: str
    token_server_service: str
    timeout: int
    service_account: str

    @classmethod
    def of(cls, option: Mapping[str, Any], service_account: str | None) -> Settings:
        """Raise ``PromotionError`` naming the field of ``copy_jobs`` that is wrong, and the fix."""
        if not PINNED.match(option["image"] or ""):
            raise PromotionError(
                f"copy_jobs.image {option['image']!r} is not pinned by digest: give the copier image as <repository>@sha256:<digest> "
                "(the digest the build printed), so every Job runs the same bytes",
                field="copy_jobs.image",
            )
        if option["jobs"] < 1:
            raise PromotionError(f"copy_jobs.jobs must be at least 1, not {option['jobs']}", field="copy_jobs.jobs")
        if option["timeout"] < 30:
            raise PromotionError(f"copy_jobs.timeout must be at least 30 seconds, not {option['timeout']}", field="copy_jobs.timeout")
        for name in ("integrated_service", "token_server_service"):
            host = str(option[name]).rsplit(":", 1)[0]
            if not SERVICE_HOST.match(host):
                raise PromotionError(
                    f"copy_jobs.{name} {option[name]!r} is not a Service's in-cluster name: give <service>.<namespace>.svc[:port]", field=f"copy_jobs.{name}"
                )
        if not service_account:
            raise PromotionError(
                "copy_jobs needs service_account: the Jobs run as the promotion job's service account (a registry_token cannot be given to a Job)",
                field="service_account",
            )
        parse_service_account(service_account)
        return cls(option["image"], option["jobs"], option["integrated_service"], option["token_server_service"], option["timeout"], service_account)


# -- pure: shards, the copier's plan, the Job ------------------------------------------------------


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0]


def shards(copies: Iterable[dict[str, Any]], jobs: int) -> list[list[dict[str, Any]]]:
    """The copies in at most ``jobs`` groups, whole namespaces each (largest first onto the group
    with the fewest copies): a namespace's copies, and so the copies one ``requires``, share a Job."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for item in copies:
        by_namespace.setdefault(namespace_of(item["repository"]), []).append(item)
    groups: list[list[dict[str, Any]]] = [[] for _number in range(min(max(1, jobs), len(by_namespace)))]
    for namespace in sorted(by_namespace, key=lambda name: (-len(by_namespace[name]), name)):
        smallest = min(range(len(groups)), key=lambda index: (len(groups[index]), index))
        groups[smallest].extend(by_namespace[namespace])
    return [group for group in groups if group]


def environment_endpoint(env: Environment) -> dict[str, Any]:
    """How a Job reaches ``env``'s registry: its Service, over plain HTTP behind an ``edge`` Route
    (the pod serves HTTP), with the service CA's certificate behind ``reencrypt`` without a Secret of
    the inventory's, else by the Route's host (the name on the pod's own certificate) verified
    against the inventory's ``ca_cert``."""
    service = f"{REGISTRY_SERVICE}.{env.namespace}.svc"
    if env.tls.termination == TERMINATION_EDGE:
        # the token realm (the token server's Service) is HTTPS all the same
        return {"registry": f"{service}:{REGISTRY_PORT}", "insecure": True, "ca": SERVICE_CA_KEY, "service": service, "host": service}
    if env.tls.termination == TERMINATION_REENCRYPT and not env.tls.serving_cert_secret:
        return {"registry": f"{service}:{REGISTRY_PORT}", "ca": SERVICE_CA_KEY, "service": service, "host": service}
    return {"registry": f"{env.route_host}:{REGISTRY_PORT}", "ca": EXTRA_CA_KEY, "service": service, "host": env.route_host}


def plan_document(
    shard: list[tuple[int, dict[str, Any]]],
    endpoints: Mapping[str, Mapping[str, Any]],
    realms: Mapping[str, str],
    actual: Mapping[str, Mapping[str, Mapping[str, str]]],
    parallel_images: int,
    parallel_blobs: int,
    retries: int,
    timeout: int,
) -> dict[str, Any]:
    """The copier's plan (components/copier/README.md) for ``shard`` (``(id, action)`` pairs):
    ``endpoints`` has ``source`` and every environment's; ``actual`` is what the registries held
    when the plan was made (the copier's mount sources), narrowed to the shard's repositories."""

    def registry(endpoint: Mapping[str, Any], token: str) -> dict[str, Any]:
        return {
            "registry": endpoint["registry"],
            "insecure": bool(endpoint.get("insecure")),
            "ca_file": f"{CA_DIR}/{endpoint['ca']}",
            "token_file": f"{TOKEN_DIR}/{token}",
        }

    actions = [item for _number, item in shard]
    environments = sorted({item["environment"] for item in actions} | {item["requires"]["environment"] for item in actions if item.get("requires")})
    repositories = {item["repository"] for item in actions}
    items = []
    for number, item in shard:
        entry = {key: item[key] for key in ("environment", "repository", "tag", "digest") if key in item}
        entry["id"] = number
        if item.get("source_repository"):
            entry["source_repository"] = item["source_repository"]
        if item.get("pinned_from"):
            entry["by_digest"] = True
        if item.get("requires"):
            entry["requires"] = {key: item["requires"][key] for key in ("environment", "repository", "digest")}
        if item.get("artifact_of"):
            entry["artifact_of"] = item["artifact_of"]
        items.append(entry)
    present = {
        env: {repo: sorted(set(tags.values())) for repo, tags in (actual.get(env) or {}).items() if repo in repositories and tags}
        for env in environments
        if actual.get(env)
    }
    return {
        "source": registry(endpoints["source"], "integrated"),
        "destinations": {env: registry(endpoints[env], "registry") for env in environments},
        "realms": dict(realms),
        "parallel_images": parallel_images,
        "parallel_blobs": parallel_blobs,
        "retries": retries,
        "timeout_seconds": timeout,
        "present": present,
        "items": items,
    }


PLAN_DIR = "/etc/copier/plan"
CA_DIR = "/etc/copier/ca"
TOKEN_DIR = "/var/run/secrets/segmented-registry"
PLAN_FILE = "plan.json.gz"


def pack(document: Mapping[str, Any]) -> list[str]:
    """The plan as ConfigMap binaryData values (gzip, base64), one per ConfigMap: split by items
    into parts that each hold the plan's settings and fit in a ConfigMap (the copier reads every
    part of its folder as one plan)."""
    data = gzip.compress(json.dumps(document, separators=(",", ":"), sort_keys=True).encode(), mtime=0)
    if len(data) <= PLAN_LIMIT_BYTES:
        return [base64.b64encode(data).decode("ascii")]
    items = document["items"]
    if len(items) < 2:
        raise PromotionError(f"one copy's plan is {len(data)} bytes compressed, more than a ConfigMap holds", field="copy_jobs")
    half = len(items) // 2
    return pack(dict(document, items=items[:half])) + pack(dict(document, items=items[half:]))


def job_manifest(name: str, namespace: str, run: str, settings: Settings, host_aliases: Mapping[str, Iterable[str]], parts: int = 1) -> dict[str, Any]:
    """The Job of one shard: the pinned copier as the promotion job's service account, non-root,
    read-only root filesystem, no capability; a copy that failed (exit 1) or a bad plan (exit 2)
    fails the Job at once, a pod that died otherwise (killed, evicted) is tried again (the copier is
    idempotent). Its plan is in the ConfigMaps ``<name>-<part>`` (``parts`` of them)."""
    account = parse_service_account(settings.service_account)[1]
    labels = {"app.kubernetes.io/name": "copier", "app.kubernetes.io/managed-by": "segmented.registry", RUN_LABEL: run}
    token_lifetime = max(3600, settings.timeout + 600)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": settings.timeout,
            "ttlSecondsAfterFinished": 3600,
            "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "copier", "operator": "In", "values": [1, 2]}}]},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": account,
                    "automountServiceAccountToken": False,
                    "hostAliases": [{"ip": ip, "hostnames": sorted(names)} for ip, names in sorted(host_aliases.items())],
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [
                        {
                            "name": "copier",
                            "image": settings.image,
                            "args": ["--plan", PLAN_DIR],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "plan", "mountPath": PLAN_DIR, "readOnly": True},
                                {"name": "ca", "mountPath": CA_DIR, "readOnly": True},
                                {"name": "tokens", "mountPath": TOKEN_DIR, "readOnly": True},
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "plan",
                            "projected": {
                                "sources": [
                                    {"configMap": {"name": f"{name}-{part}", "items": [{"key": PLAN_FILE, "path": f"plan-{part}.json.gz"}]}}
                                    for part in range(parts)
                                ]
                            },
                        },
                        {"name": "ca", "configMap": {"name": CA_CONFIG_MAP}},
                        {
                            "name": "tokens",
                            "projected": {
                                "sources": [
                                    # the environment registries' token server accepts only its audience
                                    {"serviceAccountToken": {"path": "registry", "audience": TOKEN_SERVER_AUDIENCE, "expirationSeconds": token_lifetime}},
                                    # the integrated registry takes an API token of the cluster
                                    {"serviceAccountToken": {"path": "integrated", "expirationSeconds": token_lifetime}},
                                ]
                            },
                        },
                    ],
                },
            },
        },
    }


def parse_report(log: str) -> dict[int, dict[str, Any]]:
    """The copier's results by item id, from its log (JSON lines; other lines are ignored)."""
    results: dict[int, dict[str, Any]] = {}
    for line in log.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("id"), int) and record.get("result"):
            results[record["id"]] = {key: record[key] for key in REPORTED if key in record}
    return results


def job_outcome(job: Mapping[str, Any]) -> tuple[bool, str]:
    """``(finished, why)`` of a Job: finished once Complete or Failed; ``why`` its failure's reason and message."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return True, ""
        if condition.get("type") == "Failed":
            return True, f"{condition.get('reason') or 'Failed'}: {condition.get('message') or ''}".rstrip(": ")
    return False, ""


# -- I/O: the Jobs on the registry cluster ----------------------------------------------------------


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
        self.jobs: list[str] = []
        self.api_calls = 0  # requests to the registry cluster's API (the module's stats)

    def endpoints(self) -> dict[str, dict[str, Any]]:
        out = {"source": {"registry": self.settings.integrated_service, "ca": SERVICE_CA_KEY, "host": self.settings.integrated_service.rsplit(":", 1)[0]}}
        out["source"]["service"] = out["source"]["host"]
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

        self.cluster.edit(CONFIG_MAP, CA_CONFIG_MAP, self.namespace, compute)
        self.api_calls += 2
        deadline = self.clock() + 60
        while True:
            current = self.cluster.get(CONFIG_MAP, CA_CONFIG_MAP, self.namespace) or {}
            self.api_calls += 1
            if ((current.get("data") or {}).get(SERVICE_CA_KEY) or "").strip():
                return
            if self.clock() > deadline:
                raise PromotionError(
                    f"copy_jobs: the service CA did not put {SERVICE_CA_KEY} into ConfigMap {self.namespace}/{CA_CONFIG_MAP} within 60 s "
                    f'(annotation {INJECT_ANNOTATION}: "true"); is OpenShift\'s service CA operator running?',
                    field="copy_jobs",
                )
            self.sleep(1)

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
            self.jobs.append(name)
            for item in shard:
                item["job"] = name
        try:
            outcomes = self._wait(started)
            for name, why in outcomes.items():
                results, problem = self._results(name)
                why = "; ".join(part for part in (why, problem) if part)
                for item in (item for item in copies if item.get("job") == name):
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

    def _wait(self, started: float) -> dict[str, str]:
        """Every Job's ``why`` once all have finished (or ``copy_jobs.timeout`` passed)."""
        pending = set(self.jobs)
        outcomes: dict[str, str] = {}
        deadline = started + self.settings.timeout + 60
        while pending:
            for name in sorted(pending):
                job = self.cluster.get(JOB, name, self.namespace)
                self.api_calls += 1
                if job is None:
                    outcomes[name] = "the Job was deleted"
                    pending.discard(name)
                    continue
                finished, why = job_outcome(job)
                if finished:
                    outcomes[name] = why
                    pending.discard(name)
            if not pending:
                break
            if self.clock() > deadline:
                for name in pending:
                    outcomes[name] = f"not finished after copy_jobs.timeout ({self.settings.timeout} s)"
                break
            self.sleep(POLL_SECONDS)
        return outcomes

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
