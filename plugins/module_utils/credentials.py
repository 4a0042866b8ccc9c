# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Registry credentials: short-lived service account tokens (TokenRequest).

OpenShift's registry (and the lab's token server) takes an API token of the registry cluster as
the basic-auth password. Instead of a long-lived token Secret, a job mints a TokenRequest token
of a service account it names, valid for minutes, and uses it for the run. The token is only
returned to the caller: never logged, never part of an error text or a report.
"""


from ansible_collections.segmented.registry.plugins.module_utils import kube
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label, is_dns1123_subdomain
from ansible_collections.segmented.registry.plugins.module_utils.text import show

#: The TokenRequest API refuses expirationSeconds below 10 minutes.
MIN_TOKEN_SECONDS = 600


class CredentialsError(Exception):
    """A token could not be minted; the message says why and how to fix it."""


def parse_service_account(value):
    """``(namespace, name)`` from ``namespace/name``."""
    parts = (value or "").split("/")
    if len(parts) != 2 or not is_dns1123_label(parts[0]) or not is_dns1123_subdomain(parts[1]):
        raise CredentialsError(f"service_account {show(value)} is not namespace/name, like segmented-registry/promoter")
    return parts[0], parts[1]


def mint_token(api_client, service_account, seconds=MIN_TOKEN_SECONDS):
    """A TokenRequest token of ``namespace/name`` on the cluster of ``api_client`` (a kubernetes
    ApiClient). Needs ``create`` on ``serviceaccounts/token`` in that namespace."""
    from kubernetes import client as kclient

    namespace, name = parse_service_account(service_account)
    spec = {"expirationSeconds": int(seconds)}
    try:
        answer = kclient.CoreV1Api(api_client).create_namespaced_service_account_token(name, namespace, {"spec": spec})
    except Exception as exc:
        status = kube.status_of(exc)
        if status == 404:
            raise CredentialsError("service account {}/{} does not exist on the registry cluster: create it (the "
                                   "promoter of lab/promoter.yml, or your own) or name another with "
                                   "service_account".format(namespace, name))
        if status == 403:
            raise CredentialsError("no permission to mint a token for service account {0}/{1} (create "
                                   "serviceaccounts/token in namespace {0}); grant it to the credentials the job "
                                   "runs with, or pass registry_token".format(namespace, name))
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise CredentialsError(f"could not mint a token for service account {namespace}/{name}: {(f'HTTP {status} ' if status else '')}{reason}")
    token = getattr(getattr(answer, "status", None), "token", None)
    if not token:
        raise CredentialsError(f"the TokenRequest for {namespace}/{name} returned no token")
    return token
