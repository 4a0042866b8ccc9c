# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""One cluster: the one object every module and module_util talks to an API server through.

A ``Cluster`` is built from kubernetes.core's authentication options (``kube.module_api_client``:
options -> configuration -> ApiClient) and sends every request through the kubernetes client's
dynamic ``request``; answers are the server's JSON as plain dicts, never typed models. Kinds are
looked up once per Cluster; the core and RBAC kinds the collection uses (``NAMESPACE``,
``SECRET``, ``SERVICE_ACCOUNT``, ``ROLE_BINDING``, ``SELF_SUBJECT_ACCESS_REVIEW``) have fixed
paths and need no discovery.

``Cluster.fail`` is the one place where an API error becomes the collection's: a 409 (or a
JSON patch whose ``test`` failed) is a ``Conflict``, a 410 is ``Gone``, everything else (401, 403,
404, timeouts, no answer) a ``ClusterError`` with its HTTP status and ``kube.api_problem``'s
sentence (which server, what was being done, the fix). ``edit`` reads, computes and writes
conditionally (resourceVersion), retrying with back-off on ``Conflict``.

In check mode (``dry_run``) every write is a server-side dry run: permissions and validation are
checked and nothing changes. A TokenRequest and a SelfSubjectAccessReview change nothing and are
always sent as they are.
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Generator, Iterator, NoReturn, TypeVar

from ansible_collections.segmented.registry.plugins.module_utils import kube
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, Conflict, Gone, Module
from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff

FIELD_MANAGER = "segmented.registry"

#: The content types of a PATCH: JSON merge patch, Kubernetes strategic merge patch, JSON patch.
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (MERGE, STRATEGIC, JSON_PATCH)

#: Attempts of ``edit`` (read, compute, conditional write) before it gives up on an object that
#: keeps changing.
MAX_ATTEMPTS = 5

#: The longest a watch request stays open beyond the ``timeoutSeconds`` the server was asked for.
WATCH_GRACE_SECONDS = 10

T = TypeVar("T")


@dataclass(frozen=True)
class Kind:
    """A kind of object and where the API serves it."""

    api_version: str
    kind: str
    #: The resource's name in its path (``secrets``).
    plural: str
    namespaced: bool

    def path(self, name: str | None = None, namespace: str | None = None, subresource: str | None = None) -> str:
        """The API path of the collection (``name`` None) or of one object, in ``namespace``."""
        parts = ["/api" if "/" not in self.api_version else "/apis", self.api_version]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


NAMESPACE = Kind("v1", "Namespace", "namespaces", False)
SECRET = Kind("v1", "Secret", "secrets", True)
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps", True)
SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts", True)
ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True)
SELF_SUBJECT_ACCESS_REVIEW = Kind("authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False)
FIXED = {(kind.api_version, kind.kind): kind for kind in (NAMESPACE, SECRET, CONFIG_MAP, SERVICE_ACCOUNT, ROLE_BINDING, SELF_SUBJECT_ACCESS_REVIEW)}


def describe(kind: str, name: str, namespace: str | None = None) -> str:
    """``Kind namespace/name`` as messages name an object."""
    return f"{kind} {namespace + '/' if namespace else ''}{name}"


def _patch_did_not_apply(exc: BaseException) -> bool:
    """A 422 answer to a JSON patch that the API server could not apply (a failed ``test``): it
    carries no details, where a 422 for an invalid object names it (``details.kind``, ``name``)."""
    if kube.status_of(exc) != 422:
        return False
    body: Any = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        details = json.loads(body).get("details") or {}
    except (TypeError, ValueError, AttributeError):
        return False
    return not details.get("kind") and not details.get("name")


def _lines(response: Any) -> Iterator[bytes]:
    """The lines of a streamed HTTP answer (a watch sends one JSON event per line)."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk
        if b"\n" not in chunk:
            continue
        # one split per chunk: a chunk of many lines (a long log) is not copied once per line
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _log_path(namespace: str, pod: str) -> str:
    return Kind("v1", "Pod", "pods", True).path(pod, namespace, "log")


def _log_query(container: str | None, follow: bool = False) -> list[tuple[str, str]]:
    """The query of a pod's log: its container (a pod of several needs it), and whether to follow."""
    return ([("container", container)] if container else []) + ([("follow", "true")] if follow else [])


class Cluster:
    """One API server. ``dynamic`` is a kubernetes ``DynamicClient`` (``kube.dynamic_client``);
    ``where`` names the cluster in messages (its URL unless given, like ``the registry cluster``);
    ``dry_run`` sends every write as a server-side dry run (check mode); ``timeout`` bounds every
    request (seconds, None: the client's default)."""

    def __init__(self, dynamic: Any, where: str | None = None, dry_run: bool = False, timeout: float | None = None) -> None:
        self.dynamic = dynamic
        self.host = kube.host_of(dynamic)
        self.where = where or self.host
        self.dry_run = dry_run
        self.timeout = timeout
        self.sleep: Callable[[float], object] = time.sleep
        self._kinds: dict[tuple[str, str], Kind] = {}

    @classmethod
    def of_auth(cls, auth: dict[str, Any], where: str | None = None, dry_run: bool = False) -> Cluster:
        """The cluster named by kubernetes.core auth options (``K8S_AUTH_*`` fallbacks). Raises ``ClusterError``."""
        return cls.of_api_client(kube.api_client(auth), where, dry_run)

    @classmethod
    def of_module(cls, module: Module, where: str | None = None) -> Cluster:
        """The cluster named by a module's auth options; check mode makes every write a dry run."""
        return cls.of_auth(kube.module_auth(module), where, dry_run=module.check_mode)

    @classmethod
    def of_api_client(cls, api_client: Any, where: str | None = None, dry_run: bool = False) -> Cluster:
        """The cluster of a kubernetes ``ApiClient`` (``kube.api_client``, or the lab's)."""
        return cls(kube.dynamic_client(api_client), where, dry_run=dry_run)

    # -- errors ---------------------------------------------------------------------------------

    def fail(self, exc: BaseException, doing: str) -> NoReturn:
        """Raise the collection's error for ``exc``, met while ``doing`` (``read Secret ns/name``)."""
        status = kube.status_of(exc)
        if status == 409:
            raise Conflict(kube.server_message(exc))
        if _patch_did_not_apply(exc):
            raise Conflict("a test of the patch failed (422)", lost_race=True)
        if status == 410:
            raise Gone(f"the API server at {self.where} no longer keeps the resourceVersion asked for while trying to {doing} (410 Gone): list again")
        raise ClusterError(kube.api_problem(exc, doing, self.where), status=status)

    def _request(self, method: str, path: str, doing: str, body: Any = None, **params: Any) -> Any:
        try:
            return self.dynamic.request(method, path, body=body, serializer=kube.plain, _request_timeout=self.timeout, **params)
        except Exception as exc:
            self.fail(exc, doing)

    def _write(self, method: str, path: str, doing: str, body: Any = None, **params: Any) -> Any:
        if self.dry_run:
            params["dry_run"] = "All"
        return self._request(method, path, doing, body, **params)

    # -- kinds ----------------------------------------------------------------------------------

    def kind(self, api_version: str, kind: str, missing: str | None = None) -> Kind:
        """Where the cluster serves ``kind`` (looked up once per Cluster; the fixed kinds never).
        ``missing`` is the message when the cluster does not serve it."""
        key = (api_version, kind)
        found = FIXED.get(key) or self._kinds.get(key)
        if found is not None:
            return found
        try:
            resource = self.dynamic.resources.get(prefix="apis" if "/" in api_version else "api", api_version=api_version, kind=kind)
        except Exception as exc:
            if kube.is_missing_kind(exc):
                raise ClusterError(
                    missing or f"the cluster at {self.where} does not serve {api_version} {kind}: it is not an OpenShift cluster; check the auth options",
                    status=404,
                )
            self.fail(exc, f"discover the {kind} API")
        self._kinds[key] = Kind(api_version, kind, resource.name, bool(resource.namespaced))
        return self._kinds[key]

    # -- reads ----------------------------------------------------------------------------------

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._request("get", kind.path(name, namespace), "read " + describe(kind.kind, name, namespace))
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None, field_selector: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` (None: all namespaces), one LIST call."""
        return self.list_from(kind, namespace, label_selector, field_selector)[0]

    def list_from(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None, field_selector: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """``(items, resourceVersion)``: the objects and the version to ``watch`` from."""
        where = f" in namespace {namespace}" if namespace else " in all namespaces (cluster-wide)" if kind.namespaced else ""
        answer = self._request(
            "get", kind.path(namespace=namespace), f"list {kind.plural}{where}", label_selector=label_selector, field_selector=field_selector
        )
        return list(answer.get("items") or []), str((answer.get("metadata") or {}).get("resourceVersion") or "")

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
        allow_bookmarks: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """The events ``{"type", "object"}`` on ``kind`` in ``namespace`` (None: everywhere) after
        ``resource_version``, until the server ends the watch (after ``timeout_seconds``) or the
        caller stops reading (the stream is then closed, never handed back half read). Raises
        ``Gone`` when the version is too old (list again)."""
        doing = f"watch {kind.plural}" + (f" in namespace {namespace}" if namespace else "")
        try:
            response = self.dynamic.request(
                "get",
                kind.path(namespace=namespace),
                serialize=False,
                watch=True,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                allow_watch_bookmarks=allow_bookmarks or None,
                _request_timeout=timeout_seconds + WATCH_GRACE_SECONDS,
            )
        except Exception as exc:
            self.fail(exc, doing)
        try:
            for line in self._stream(response, doing):
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone(f"the API server at {self.where} no longer keeps resourceVersion {resource_version} ({doing}): list again")
                    raise ClusterError(f"the API server at {self.where} ended the watch ({doing}): {obj.get('message')}", status=obj.get("code"))
                yield {"type": event.get("type"), "object": obj}
        except ClusterError:
            raise
        except Exception as exc:
            self.fail(exc, doing)

    def log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """The log of a pod's container (the whole of it, as text)."""
        doing = f"read the log of pod {namespace}/{pod}"
        try:
            response = self.dynamic.request(
                "get", _log_path(namespace, pod), serialize=False, query_params=_log_query(container), _request_timeout=self.timeout
            )
        except Exception as exc:
            self.fail(exc, doing)
        try:
            return bytes(response.data).decode("utf-8", "replace")
        finally:
            response.release_conn()

    def follow_log(self, namespace: str, pod: str, container: str | None, timeout_seconds: float) -> Generator[str, None, None]:
        """The lines of a running pod's container log, from its first, as the container writes
        them, until it ends (or ``timeout_seconds`` pass, or the caller stops reading: the stream
        is then closed, never handed back half read)."""
        doing = f"follow the log of pod {namespace}/{pod}"
        try:
            response = self.dynamic.request(
                "get", _log_path(namespace, pod), serialize=False, query_params=_log_query(container, follow=True), _request_timeout=timeout_seconds
            )
        except Exception as exc:
            self.fail(exc, doing)
        for line in self._stream(response, doing):
            yield line.decode("utf-8", "replace")

    def _stream(self, response: Any, doing: str) -> Generator[bytes, None, None]:
        """The lines of a streamed answer (a watch, a followed log), its connection handed back at
        the end. A caller that stops reading first (or fails) has it closed instead: the rest of the
        stream is still coming, and a connection handed back half read would give the next request
        this stream's lines."""
        ended = False
        try:
            yield from _lines(response)
            ended = True
        except Exception as exc:
            self.fail(exc, doing)
        finally:
            if not ended:
                response.close()
            response.release_conn()

    # -- writes ---------------------------------------------------------------------------------

    def create(self, kind: Kind, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create ``body`` (in ``namespace``, else its own); the object as stored (or as the dry run answered)."""
        namespace = namespace or (body.get("metadata") or {}).get("namespace")
        name = (body.get("metadata") or {}).get("name") or (body.get("metadata") or {}).get("generateName") or ""
        return self._write("post", kind.path(namespace=namespace), "create " + describe(kind.kind, name, namespace), body, field_manager=FIELD_MANAGER)

    def replace(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the object ``body`` names; the resourceVersion it carries makes it conditional."""
        metadata = body["metadata"]
        name, namespace = metadata["name"], metadata.get("namespace")
        return self._write("put", kind.path(name, namespace), "replace " + describe(kind.kind, name, namespace), body, field_manager=FIELD_MANAGER)

    def patch(self, kind: Kind, name: str, namespace: str | None, body: Any, content_type: str) -> dict[str, Any]:
        """Patch one object with ``body`` of ``content_type`` (``MERGE``, ``STRATEGIC`` or ``JSON_PATCH``)."""
        if content_type not in PATCH_TYPES:
            raise ClusterError(f"patch content type {content_type} is none of {', '.join(PATCH_TYPES)}")
        return self._write(
            "patch", kind.path(name, namespace), "update " + describe(kind.kind, name, namespace), body, content_type=content_type, field_manager=FIELD_MANAGER
        )

    def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        missing_ok: bool = False,
        resource_version: str | None = None,
        propagation: str | None = None,
    ) -> dict[str, Any] | None:
        """Delete one object (only at ``resource_version`` when given); ``missing_ok``: one already
        gone is fine (None); ``propagation``: how its dependents go (``Background``, ``Foreground``)."""
        body: dict[str, Any] | None = {"preconditions": {"resourceVersion": resource_version}} if resource_version else None
        if propagation:
            body = dict(body or {}, propagationPolicy=propagation)
        try:
            return self._write("delete", kind.path(name, namespace), "delete " + describe(kind.kind, name, namespace), body)
        except ClusterError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def retry(self, attempt: Callable[[], T], what: str) -> T:
        """Run ``attempt()`` (read, compute, conditional writes) until it meets no ``Conflict``,
        with back-off, at most ``MAX_ATTEMPTS`` times; ``what`` names the object(s) in the error."""
        number = 1
        while True:
            try:
                return attempt()
            except Conflict as exc:
                if number >= MAX_ATTEMPTS:
                    raise ClusterError(f"{what} kept changing while it was being edited ({exc}); run again", status=409)
                self.sleep(backoff(number, 0.2, 2.0))
                number += 1

    def edit(self, kind: Kind, name: str, namespace: str | None, compute: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> dict[str, Any] | None:
        """Read the object (None when absent), ``compute(current)`` the new one (None: no change)
        and write it conditionally (create, or replace at the resourceVersion read); on ``Conflict``
        read and compute again (``retry``). Returns the object as written, or as read when nothing
        changed."""

        def attempt() -> dict[str, Any] | None:
            current = self.get(kind, name, namespace)
            wanted = compute(current)
            if wanted is None:
                return current
            if current is None:
                return self.create(kind, wanted, namespace)
            wanted.setdefault("metadata", {})["resourceVersion"] = current["metadata"].get("resourceVersion")
            return self.replace(kind, wanted)

        return self.retry(attempt, describe(kind.kind, name, namespace))

    # -- tokens and rights ------------------------------------------------------------------------

    def create_token(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """POST a TokenRequest with ``spec`` for service account ``namespace/name``; the answer
        (``status.token``, ``status.expirationTimestamp``). Never a dry run: it changes nothing."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = SERVICE_ACCOUNT.path(name, namespace, "token")
        return self._request("post", path, f"mint a token for service account {namespace}/{name}", body)

    def access_review(self, attributes: dict[str, Any]) -> tuple[bool, str]:
        """``(allowed, reason)`` of a SelfSubjectAccessReview of ``attributes`` (its ``resourceAttributes``)."""
        body = {"apiVersion": SELF_SUBJECT_ACCESS_REVIEW.api_version, "kind": SELF_SUBJECT_ACCESS_REVIEW.kind, "spec": {"resourceAttributes": attributes}}
        answer = self._request("post", SELF_SUBJECT_ACCESS_REVIEW.path(), "review its own rights (SelfSubjectAccessReview)", body)
        status = answer.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or "")
