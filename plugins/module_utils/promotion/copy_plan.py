# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The copy Jobs' plan (pure; the option ``copy_jobs``): the option checked (``Settings``), the copies
sharded by namespace (``shards``: a namespace's copies, and so every ``requires`` between them, share
a Job), how a Job reaches each registry (``environment_endpoint``), the copier's plan
(``plan_document``, components/copier/README.md) packed into ConfigMaps (``pack``), the Job itself
(``job_manifest``: the pinned copier as the promotion job's service account, non-root, a read-only
root filesystem, projected tokens, never a credential in the plan), and the copier's report read
back (``parse_report``, ``is_summary``; ``pod_outcome`` and ``job_outcome``: when a Job is over). ``copy_jobs`` runs them on the registry cluster.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import TOKEN_SERVER_AUDIENCE, parse_service_account
from ansible_collections.segmented.registry.plugins.module_utils.errors import PromotionError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Environment
from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import TERMINATION_EDGE, TERMINATION_REENCRYPT

#: The ConfigMap in the Jobs' namespace that the service CA fills with its certificate.
CA_CONFIG_MAP = "segmented-registry-copier-ca"
SERVICE_CA_KEY = "service-ca.crt"
EXTRA_CA_KEY = "extra-ca.crt"
RUN_LABEL = "segmented.registry/copy-run"
#: The copier's exit codes that end its Job (the Job's ``podFailurePolicy``): 1, a copy failed; 2, a bad plan.
EXIT_ENDS_JOB = {1: "a copy failed", 2: "the plan was refused"}
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
            "podFailurePolicy": {
                "rules": [{"action": "FailJob", "onExitCodes": {"containerName": "copier", "operator": "In", "values": sorted(EXIT_ENDS_JOB)}}]
            },
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


def is_summary(line: str) -> bool:
    """Whether a line of the copier's log is its summary, the line it writes after every copy's."""
    line = line.strip()
    if not line.startswith('{"summary"'):
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and isinstance(record.get("summary"), dict)


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


def pod_outcome(pod: Mapping[str, Any]) -> tuple[bool, str]:
    """``(finished, why)`` of a Job from one of its pods, as soon as the kubelet reports the copier
    ended, a second or two before the Job controller marks the Job: exit 0 completes the Job (one
    completion, ``restartPolicy: Never``), 1 and 2 fail it (its ``podFailurePolicy``). Any other end
    (killed, evicted) is retried by the Job: not finished, the Job decides (``job_outcome``)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        ended = (status.get("state") or {}).get("terminated")
        if status.get("name") != "copier" or not ended:
            continue
        code = ended.get("exitCode")
        if code == 0:
            return True, ""
        if code in EXIT_ENDS_JOB:
            return True, f"its copier exited with code {code}: {EXIT_ENDS_JOB[code]}"
    return False, ""
