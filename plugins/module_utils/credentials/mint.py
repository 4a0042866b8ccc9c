# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Registry credentials: service account tokens of the registry cluster.

OpenShift's integrated registry takes an API token of the registry cluster (the API server's
default audience) as the basic-auth password. The collection's token server, in front of the
environment registries, takes only tokens minted for its own audience, ``TOKEN_SERVER_AUDIENCE``:
such a token is no key to the registry cluster's API (the API server refuses it with 401). Three
ways to get a token, all for a service account named ``namespace/name``:

- ``mint_token``: a TokenRequest token, valid for minutes (a promotion job uses it for one run);
- ``mint_bound_token``: a TokenRequest token bound to a Secret (``boundObjectRef``): the API server
  accepts it only while that Secret exists with the same uid, so deleting the Secret revokes the
  token before it expires (a TokenRequest token cannot be revoked by itself);
- ``long_lived_token``: the token the token controller writes into a
  ``kubernetes.io/service-account-token`` Secret annotated with the account's name; it never
  expires and is revoked by deleting the Secret.

A token is only returned to the caller: never logged, never part of an error text or a report.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any, Iterable


from ansible_collections.segmented.registry.plugins.module_utils.cluster import Cluster
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, CredentialsError
from ansible_collections.segmented.registry.plugins.module_utils.names import split_namespaced
from ansible_collections.segmented.registry.plugins.module_utils.text import show

#: The TokenRequest API refuses expirationSeconds below 10 minutes.
MIN_TOKEN_SECONDS = 600

#: The audience the token server accepts for the environment registries (and nothing else does):
#: the TokenReview it makes names this audience, so the API server takes such a token for the
#: token server only. None in ``audiences``: the API server's default audience (its own API, and
#: the integrated registry).
TOKEN_SERVER_AUDIENCE = "segmented.registry/token-server"


def parse_service_account(value: str) -> tuple[str, str]:
    """``(namespace, name)`` from ``namespace/name``."""
    found = split_namespaced(value)
    if found is None:
        raise CredentialsError(f"service_account {show(value)} is not namespace/name, like segmented-registry/promoter")
    return found


def token_request_spec(seconds: int, audiences: Iterable[str] | None = None, bound_secret: tuple[str, str] | None = None) -> dict[str, Any]:
    """The ``spec`` of a TokenRequest (pure): ``audiences`` (a list; None or empty: the API
    server's default audience), bound to ``bound_secret`` (``(name, uid)``) when given."""
    spec: dict[str, Any] = {"expirationSeconds": int(seconds)}
    if audiences:
        spec["audiences"] = list(audiences)
    if bound_secret:
        name, uid = bound_secret
        spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Secret", "name": name, "uid": uid}
    return spec


def mint_token(cluster: Cluster | Any, service_account: str, seconds: int = MIN_TOKEN_SECONDS, audiences: Iterable[str] | None = None) -> str:
    """A TokenRequest token of ``namespace/name`` on ``cluster`` (a ``Cluster``, or the kubernetes
    ``ApiClient`` of one, as the lab and the bench hold), for ``audiences``
    (None: the API server's; ``[TOKEN_SERVER_AUDIENCE]``: the environment registries' token
    server). Needs ``create`` on ``serviceaccounts/token`` in that namespace."""
    return _token_request(cluster, service_account, token_request_spec(seconds, audiences))[0]


def mint_bound_token(
    cluster: Cluster, service_account: str, seconds: int, secret_name: str, secret_uid: str, audiences: Iterable[str] | None = None
) -> tuple[str, int | None]:
    """``(token, expiration timestamp as epoch seconds)``: a TokenRequest token of ``namespace/name``
    for ``audiences`` (as ``mint_token``), bound to the Secret ``secret_name`` (uid ``secret_uid``)
    in the same namespace. Deleting that Secret revokes the token."""
    return _token_request(cluster, service_account, token_request_spec(seconds, audiences, (secret_name, secret_uid)))


def long_lived_token(secret: dict, service_account: str) -> str | None:
    """The token of a ``kubernetes.io/service-account-token`` Secret (a dict as the API returns
    it), or None while the token controller has not filled it in yet."""
    if (
        secret.get("type") != "kubernetes.io/service-account-token"
        or ((secret.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/service-account.name") != parse_service_account(service_account)[1]
    ):
        raise CredentialsError("Secret {} is not a token Secret of service account {}".format((secret.get("metadata") or {}).get("name"), service_account))
    value = (secret.get("data") or {}).get("token")
    return base64.b64decode(value).decode() if value else None


def epoch_of(timestamp: object) -> int:
    """Epoch seconds of an RFC 3339 time as the API server writes it (``2026-01-02T03:04:05Z``), or
    as the kubernetes client serializes one (``2026-01-02T03:04:05+00:00``)."""
    text = str(timestamp)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return int(datetime.datetime.fromisoformat(text).timestamp())


def _token_request(cluster: Cluster | Any, service_account: str, spec: dict[str, Any]) -> tuple[str, int | None]:
    namespace, name = parse_service_account(service_account)
    if not isinstance(cluster, Cluster):
        cluster = Cluster.of_api_client(cluster)
    try:
        answer = cluster.create_token(namespace, name, spec)
    except ClusterError as exc:
        if exc.status == 404:
            raise CredentialsError(
                "service account {}/{} does not exist on the registry cluster: create it "
                "(roles/registry_cluster makes the promoter, registry_cluster_pushers) or "
                "name another with service_account".format(namespace, name)
            )
        if exc.status == 403:
            raise CredentialsError(
                "no permission to mint a token for service account {0}/{1} (create "
                "serviceaccounts/token in namespace {0}); grant it to the credentials the job "
                "runs with, or pass registry_token".format(namespace, name)
            )
        raise CredentialsError(str(exc))
    token_status = (answer or {}).get("status") or {}
    token = token_status.get("token")
    if not token:
        raise CredentialsError(f"the TokenRequest for {namespace}/{name} returned no token")
    expires = token_status.get("expirationTimestamp")
    return token, (epoch_of(expires) if expires else None)
