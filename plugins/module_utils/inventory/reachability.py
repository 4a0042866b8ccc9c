# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Can each managed cluster be reached? Bounded requests, in parallel, before anything changes.

``GET /version`` (a rejected token already fails there with 401), then a SelfSubjectReview to
learn who we are. Credentials never appear in a result or an error: every secret of the auth
options is masked in the texts of the client's errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import VAR_K8S_AUTH, Problem, Topology
from ansible_collections.segmented.registry.plugins.module_utils.kube import (
    AUTH_SECRET_OPTIONS,
    ApiException,
    build_configuration,
    describe_error,
    new_api_client,
    status_message,
)

try:
    import kubernetes
except ImportError:  # reported by the module (kube.HAS_KUBERNETES)
    pass

DEFAULT_TIMEOUT = 10
#: The user a Forbidden Status names: ``<resource> is forbidden: User "<name>" cannot <verb> ...``.
_FORBIDDEN_USER = re.compile(r'\bUser "([^"]*)" cannot ')


class ClusterUnreachable(ClusterError):
    """A cluster could not be reached; ``server`` is its API URL when known."""

    def __init__(self, message: str, server: Optional[str] = None) -> None:
        super().__init__(message)
        self.server = server


def _scrub(text: str, auth: Mapping[str, Any]) -> str:
    """Mask every secret of ``auth`` in ``text``: tokens, passwords, proxy credentials, the
    values of an inline kubeconfig (a kubeconfig path is not a secret and stays readable)."""
    secrets: list[object] = []
    for name in AUTH_SECRET_OPTIONS:
        value = auth.get(name)
        if isinstance(value, dict):
            secrets.extend(_strings(value))
        elif name != "kubeconfig":
            secrets.append(value)
    for secret in secrets:
        if isinstance(secret, str) and secret:
            text = text.replace(secret, "********")
    return text


def _strings(value: Any) -> list[str]:
    """Every string inside a nested dict/list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def review_error_user(error: BaseException, server: Optional[str], auth: Optional[Mapping[str, Any]] = None) -> Optional[str]:
    """Who a failed SelfSubjectReview says we are, from its error alone.

    - 401: the server rejected the credentials: raises ``ClusterUnreachable``;
    - 403: RBAC forbids the review, which every authenticated user may create by default
      (ClusterRole ``system:basic-user``), so it is normally an anonymous request; the user the
      Status message names (``User "system:anonymous" cannot create resource ...``), or None;
    - anything else (404: a server older than the API, ...): None, the user is unknown.
    """
    status = getattr(error, "status", None)
    if status == 401:
        raise ClusterUnreachable(_scrub(f"the API server at {server} rejected the credentials: {describe_error(error)}", auth or {}), server=server)
    if status == 403:
        match = _FORBIDDEN_USER.search(status_message(error) or "")
        if match:
            return match.group(1)
    return None


def probe(auth: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Check that one cluster answers, with bounded requests.

    ``GET /version`` (a rejected token already fails there with 401), then a SelfSubjectReview
    to learn who we are (best effort: older servers do not serve it; a review forbidden to
    ``system:anonymous`` means no credentials were sent, see ``review_error_user``). Returns
    ``{"server", "version", "user"}``; raises ``ClusterUnreachable``.
    """
    try:
        configuration, headers = build_configuration(auth)
    except Exception as error:  # kubeconfig missing, context unknown, ...
        raise ClusterUnreachable(_scrub(f"cannot build a client: {describe_error(error)}", auth))
    server = getattr(configuration, "host", None)
    if hasattr(configuration, "retries"):
        configuration.retries = 1
    api_client = new_api_client(configuration, headers)
    try:
        try:
            version = kubernetes.client.VersionApi(api_client).get_code(_request_timeout=timeout)
        except Exception as error:
            raise ClusterUnreachable(_scrub(f"GET {server}/version failed: {describe_error(error)}", auth), server=server)
        user = None
        review_class = getattr(kubernetes.client, "V1SelfSubjectReview", None)
        if review_class is not None:
            try:
                review = kubernetes.client.AuthenticationV1Api(api_client).create_self_subject_review(body=review_class(), _request_timeout=timeout)
                user = review.status.user_info.username
            except ApiException as error:
                user = review_error_user(error, server, auth)
            except Exception:  # pylint: disable=broad-except
                user = None
        if user == "system:anonymous":
            raise ClusterUnreachable(
                "the API server at {} answered, but as system:anonymous: no credentials were "
                "sent; check the token, the client certificate or the kubeconfig user".format(server),
                server=server,
            )
        return {"server": server, "version": getattr(version, "git_version", None), "user": user}
    finally:
        close = getattr(api_client, "close", None)
        if close is not None:
            close()


def probe_all(clusters: Mapping[str, dict[str, Any]], timeout: float = DEFAULT_TIMEOUT, max_workers: int = 8) -> dict[str, dict[str, Any]]:
    """Probe several clusters in parallel.

    ``clusters`` maps a name to its auth options. Returns ``{name: result}`` where result is
    ``probe``'s dict plus ``reachable: True``, or ``{"reachable": False, "server", "error"}``.
    """
    results: dict[str, dict[str, Any]] = {}
    if not clusters:
        return results

    def one(item: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        name, auth = item
        try:
            result = probe(auth, timeout=timeout)
            result["reachable"] = True
        except ClusterUnreachable as error:
            result = {"reachable": False, "server": error.server, "error": str(error)}
        return name, result

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(clusters)))) as pool:
        for name, result in pool.map(one, list(clusters.items())):
            results[name] = result
    return results


def unreachable_problems(topology: Topology, results: Mapping[str, Mapping[str, Any]]) -> list[Problem]:
    """Problems for the managed clusters that did not answer.

    ``results`` maps a cluster name to ``{"reachable": bool, "server": url, "error": text}``.
    """
    problems = []
    for cluster in topology.managed_clusters:
        result = results.get(cluster.name)
        if result and not result.get("reachable"):
            problems.append(
                Problem(
                    cluster.name,
                    VAR_K8S_AUTH,
                    "cannot reach the cluster at {} (credentials from {}): {}; check that the API server is up and that {} points at it".format(
                        result.get("server") or "an unknown API server", cluster.auth.source, result.get("error"), VAR_K8S_AUTH
                    ),
                )
            )
    return problems


#: What an unreachable consumer cluster does to validation (validate_inventory's unreachable_consumers):
#: fail it, or leave that cluster out of the run. An unreachable registry cluster fails either way.
UNREACHABLE_FAIL = "fail"
UNREACHABLE_LEAVE_OUT = "leave_out"


def left_out_consumers(topology: Topology, problems: Sequence[Problem], unreachable_consumers: str = UNREACHABLE_FAIL) -> tuple[list[Problem], dict[str, str]]:
    """``(the problems that fail validation, {consumer cluster: why it is left out})`` from the
    problems of the clusters that did not answer (``unreachable_problems``).

    With ``UNREACHABLE_FAIL`` every problem fails. With ``UNREACHABLE_LEAVE_OUT`` a consumer cluster's
    problem leaves that cluster out instead (the why is the problem's text, naming the cluster, the
    variable and the error); the registry cluster's fails either way, since every stage needs it.
    """
    if unreachable_consumers != UNREACHABLE_LEAVE_OUT:
        return list(problems), {}
    consumers = {cluster.name for cluster in topology.consumers}
    failing = [problem for problem in problems if problem.host not in consumers]
    left_out = {problem.host: str(problem) for problem in problems if problem.host in consumers}
    return failing, left_out
