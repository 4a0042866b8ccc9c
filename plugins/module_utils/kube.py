# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The one seam between this collection and kubernetes.core (and the kubernetes client beneath it).

Whatever this collection takes from kubernetes.core beyond its documented module interface is
reached here and nowhere else: its authentication options (``args_common.AUTH_ARG_SPEC``), its
client builders (the private ``_create_auth_spec``, ``_create_configuration``,
``_create_headers``, ``_set_header``: its ``get_api_client`` made without discovering), the no_log values of the
``AnsibleModule`` inside its ``AnsibleK8SModule``; and of the kubernetes client beneath it, the
``DynamicClient`` (whose ``request`` ``cluster.Cluster`` sends everything through, with the
``serializer`` it takes), its discoverer and the exceptions it raises.
``tests/unit/plugins/module_utils/test_kube.py`` fails when an upgrade moves any of them.

Several clusters in one module run need two precautions that kubernetes.core does not take:

- ``_create_configuration`` loads a kubeconfig by setting the kubernetes client's process-wide
  *default* ``Configuration`` and then copying it. Two clusters built at the same time (threads)
  could get each other's configuration, and a cluster given by ``host`` + ``api_key`` inherits
  whatever the previous kubeconfig left there (its CA, its client certificate). Every
  configuration is therefore built under one lock, from a reset default.
- kubernetes.core's ``get_api_client`` discovers the API (``/version``, ``/api``, ``/apis``)
  while it builds the client, without a timeout; ``api_client`` builds the same client without
  that, and ``dynamic_client`` discovers only when a kind outside ``cluster.FIXED`` is looked up
  (``inventory.reachability.probe`` checks a cluster with bounded requests first).
"""

from __future__ import annotations

import copy
import json
import threading
import traceback
from typing import Any, Mapping

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import (
    _create_auth_spec,
    _create_configuration,
    _create_headers,
    _set_header,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule as _AnsibleK8SModule
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, Module

KUBERNETES_IMPORT_ERROR: str | None
try:
    import kubernetes
    from kubernetes.client.rest import ApiException
    from kubernetes.dynamic import DynamicClient, LazyDiscoverer
    from kubernetes.dynamic.exceptions import ResourceNotFoundError
    from urllib3.exceptions import HTTPError as Urllib3Error
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

    class ApiException(Exception):  # type: ignore[no-redef]
        pass

    class ResourceNotFoundError(Exception):  # type: ignore[no-redef]
        pass

    class Urllib3Error(Exception):  # type: ignore[no-redef]
        pass

else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None

#: kubernetes.core's module class (check mode becomes a server-side dry run), for this collection's
#: modules that talk to one cluster.
AnsibleK8SModule = _AnsibleK8SModule

# ---------------------------------------------------------------------------------------------
# Authentication options (kubernetes.core's own, never a copy)
# ---------------------------------------------------------------------------------------------

#: canonical option name -> its aliases
AUTH_OPTIONS = {name: tuple(spec.get("aliases") or ()) for name, spec in AUTH_ARG_SPEC.items()}
AUTH_BOOL_OPTIONS = tuple(name for name, spec in AUTH_ARG_SPEC.items() if spec.get("type") == "bool")
AUTH_PROXY_HEADERS_KEYS = tuple(AUTH_ARG_SPEC["proxy_headers"]["options"])
#: Options whose values (or any of whose sub-values) are secrets: never repeated in a message.
AUTH_SECRET_OPTIONS = tuple(
    name for name, spec in AUTH_ARG_SPEC.items() if spec.get("no_log") or any(sub.get("no_log") for sub in (spec.get("options") or {}).values())
)


def auth_argument_spec() -> dict[str, Any]:
    """kubernetes.core's authentication options, for a module's argument spec."""
    return copy.deepcopy(AUTH_ARG_SPEC)


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------

_CONFIGURATION_LOCK = threading.RLock()


def _reset_default_configuration() -> None:
    kubernetes.client.Configuration.set_default(None)


def build_configuration(auth: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``(configuration, headers)`` for kubernetes.core auth options, as ``get_api_client`` builds them.

    Unset options fall back to the ``K8S_AUTH_*`` environment variables, then to the in-cluster
    configuration, then to ``~/.kube/config``, exactly as in kubernetes.core.
    """
    with _CONFIGURATION_LOCK:
        _reset_default_configuration()
        try:
            configuration = _create_configuration(_create_auth_spec(None, **auth))
        finally:
            _reset_default_configuration()
    return configuration, _create_headers(None, **auth)


def new_api_client(configuration: Any, headers: Mapping[str, Any]) -> Any:
    """A plain kubernetes ``ApiClient`` with kubernetes.core's extra headers (impersonation)."""
    api_client = kubernetes.client.ApiClient(configuration)
    for header, value in headers.items():
        _set_header(api_client, header, value)
    return api_client


def api_client(auth: dict[str, Any]) -> Any:
    """A kubernetes ``ApiClient`` for kubernetes.core auth options (``K8S_AUTH_*`` fallbacks),
    built as ``get_api_client`` builds one but without discovering the API first. Raises
    ``ClusterError``."""
    try:
        configuration, headers = build_configuration(auth)
    except kubernetes.config.ConfigException as exc:  # no usable configuration (kubeconfig missing, ...)
        raise ClusterError(f"could not set up the API client from the auth options: {exc}")
    return new_api_client(configuration, headers)


def module_auth(module: Module) -> dict[str, Any]:
    """The auth options a module was given (those set)."""
    return {name: module.params.get(name) for name in AUTH_OPTIONS if module.params.get(name) is not None}


class _DeferredDiscovery:
    """The dynamic client's discoverer, made on first use: the kubernetes client's
    ``LazyDiscoverer`` reads ``/version``, ``/api`` and ``/apis`` as soon as it is made, which a
    cluster that only reads Secrets or posts a TokenRequest (fixed paths) never needs."""

    def __init__(self, client: Any, cache_file: str | None) -> None:
        self._client = client
        self._cache_file = cache_file
        self._discoverer: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._discoverer is None:
            self._discoverer = LazyDiscoverer(self._client, self._cache_file)
        return getattr(self._discoverer, name)


def dynamic_client(api_client: Any) -> Any:
    """The kubernetes client's ``DynamicClient`` over ``api_client``, which discovers the API only
    when a kind is looked up (``resources.get``), not when it is made."""
    return DynamicClient(api_client, discoverer=_DeferredDiscovery)


def plain(_client: object, data: Any) -> Any:
    """A serializer for the dynamic client's requests (``request(..., serializer=kube.plain)``):
    the answer as the dict ``json.loads`` made of it. Without it, every answer is wrapped in a
    ``ResourceInstance`` field by field and unwrapped again by ``to_dict()``: about 1 s of a list
    of ImageStreams with 10,000 tags."""
    return data


def host_of(client: Any) -> str:
    """The API server URL of a client that carries its ``configuration`` (a ``DynamicClient``, a ``K8SClient``)."""
    return getattr(getattr(client, "configuration", None), "host", None) or "(unknown)"


def mask(module: Module, value: str) -> None:
    """Make Ansible mask ``value`` wherever the module's output would echo it (an
    ``AnsibleK8SModule`` wraps the ``AnsibleModule`` that keeps the no_log values)."""
    inner: Any = getattr(module, "_module", module)
    inner.no_log_values.add(value)


# ---------------------------------------------------------------------------------------------
# Errors of the kubernetes client
# ---------------------------------------------------------------------------------------------


def status_of(exc: object) -> int | None:
    """The HTTP status of an API error, or None."""
    return getattr(exc, "status", None)


def status_message(exc: object) -> str | None:
    """The message of the Status the API server answered, or None."""
    body: Any = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body).get("message")
    except (TypeError, ValueError, AttributeError):
        return None


def server_message(exc: BaseException) -> str:
    """The message of the Status the API server answered, else the error's reason or first line."""
    return status_message(exc) or getattr(exc, "reason", None) or str(exc).splitlines()[0]


def is_unreachable(exc: BaseException) -> bool:
    """No answer at all: connection refused, TLS failure, timeout."""
    return isinstance(exc, (Urllib3Error, OSError))


def is_missing_kind(exc: BaseException) -> bool:
    """Discovery found no such kind on the server (not an OpenShift cluster, a CRD missing)."""
    return isinstance(exc, ResourceNotFoundError)


def api_problem(exc: BaseException, doing: str, host: str | None) -> str:
    """One sentence for an API error: what failed while ``doing`` what, on which server, and the fix."""
    where = f" at {host}" if host else ""
    status = status_of(exc)
    if status == 401:
        return (
            f"the API server{where} did not accept the credentials (401 Unauthorized) while trying to {doing}: "
            "check api_key / kubeconfig / K8S_AUTH_* (an expired token?)"
        )
    if status == 403:
        return f"no permission to {doing} (403 Forbidden{where}): {server_message(exc)}"
    if status is not None:
        return f"the API server{where} refused to {doing} ({status}): {server_message(exc)}"
    if is_unreachable(exc):
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"cannot reach the API server{where} to {doing}: {reason}. Check host / kubeconfig / context (or K8S_AUTH_HOST) and that the cluster is up"
    return f"could not {doing}{where}: {type(exc).__name__}: {exc}"


def describe_error(error: BaseException) -> str:
    """A one-line description of a client error (never the request headers)."""
    if isinstance(error, ApiException):
        text = f"HTTP {getattr(error, 'status', '?')} {getattr(error, 'reason', '') or ''}"
        message = status_message(error)
        if message:
            text += f": {message}"
        return text.strip()
    reason = getattr(error, "reason", None)  # urllib3's MaxRetryError
    if reason is not None and not isinstance(reason, str):
        return f"{type(reason).__name__}: {reason}"
    return f"{type(error).__name__}: {error}"
