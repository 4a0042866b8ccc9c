# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Reach several clusters from one module run, on top of kubernetes.core's client layer.

kubernetes.core builds one client per module run. This collection talks to several clusters
in one run, which needs two precautions:

- kubernetes.core's ``_create_configuration`` loads a kubeconfig by setting the kubernetes
  client's process-wide *default* ``Configuration`` and then copying it. Two clusters built
  at the same time (threads) could get each other's configuration, and a cluster given by
  ``host`` + ``api_key`` inherits whatever the previous kubeconfig left there (its CA, its
  client certificate). Every configuration is therefore built under one lock, from a reset
  default.
- ``get_api_client`` discovers the API (``/version``, ``/api``, ``/apis``) while it builds the
  client, without a timeout. ``probe`` checks a cluster with bounded requests first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import (
    _create_auth_spec,
    _create_configuration,
    _create_headers,
    _set_header,
    get_api_client,
)
from ansible_collections.segmented.registry.plugins.module_utils.topology import K8S_AUTH_SECRET_OPTIONS

try:
    import kubernetes
    from kubernetes.client.rest import ApiException
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

    class ApiException(Exception):  # type: ignore[no-redef]
        pass

else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None

_CONFIGURATION_LOCK = threading.RLock()
#: Options whose values are scrubbed from error texts, in case a library repeats them.
DEFAULT_TIMEOUT = 10
#: The user a Forbidden Status names: ``<resource> is forbidden: User "<name>" cannot <verb> ...``.
_FORBIDDEN_USER = re.compile(r'\bUser "([^"]*)" cannot ')


class ClusterUnreachable(Exception):
    """A cluster could not be reached; ``server`` is its API URL when known."""

    def __init__(self, message, server=None):
        super(ClusterUnreachable, self).__init__(message)
        self.server = server


def _reset_default_configuration():
    kubernetes.client.Configuration.set_default(None)


def build_configuration(auth):
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


def get_client(auth):
    """kubernetes.core's ``K8SClient`` for one cluster, safe to call for several clusters.

    Call it after ``probe`` succeeded: it discovers the API without a timeout.
    """
    with _CONFIGURATION_LOCK:
        _reset_default_configuration()
        try:
            return get_api_client(**auth)
        finally:
            _reset_default_configuration()


def _scrub(text, auth):
    """Mask every secret of ``auth`` in ``text``: tokens, passwords, proxy credentials, the
    values of an inline kubeconfig (a kubeconfig path is not a secret and stays readable)."""
    secrets = []
    for name in K8S_AUTH_SECRET_OPTIONS:
        value = auth.get(name)
        if isinstance(value, dict):
            secrets.extend(_strings(value))
        elif name != "kubeconfig":
            secrets.append(value)
    for secret in secrets:
        if isinstance(secret, str) and secret:
            text = text.replace(secret, "********")
    return text


def _strings(value):
    """Every string inside a nested dict/list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def describe_error(error):
    """A one-line description of a client error (never the request headers)."""
    if isinstance(error, ApiException):
        text = "HTTP {0} {1}".format(getattr(error, "status", "?"), getattr(error, "reason", "") or "")
        message = _status_message(error)
        if message:
            text += ": {0}".format(message)
        return text.strip()
    reason = getattr(error, "reason", None)  # urllib3's MaxRetryError
    if reason is not None and not isinstance(reason, str):
        return "{0}: {1}".format(type(reason).__name__, reason)
    return "{0}: {1}".format(type(error).__name__, error)


def _status_message(error):
    body = getattr(error, "body", None)
    if not body:
        return None
    try:
        return json.loads(body).get("message")
    except (ValueError, AttributeError, TypeError):
        return None


def review_error_user(error, server, auth=None):
    """Who a failed SelfSubjectReview says we are, from its error alone.

    - 401: the server rejected the credentials: raises ``ClusterUnreachable``;
    - 403: RBAC forbids the review, which every authenticated user may create by default
      (ClusterRole ``system:basic-user``), so it is normally an anonymous request; the user the
      Status message names (``User "system:anonymous" cannot create resource ...``), or None;
    - anything else (404: a server older than the API, ...): None, the user is unknown.
    """
    status = getattr(error, "status", None)
    if status == 401:
        raise ClusterUnreachable(_scrub("the API server at {0} rejected the credentials: {1}".format(
            server, describe_error(error)), auth or {}), server=server)
    if status == 403:
        match = _FORBIDDEN_USER.search(_status_message(error) or "")
        if match:
            return match.group(1)
    return None


def probe(auth, timeout=DEFAULT_TIMEOUT):
    """Check that one cluster answers, with bounded requests.

    ``GET /version`` (a rejected token already fails there with 401), then a SelfSubjectReview
    to learn who we are (best effort: older servers do not serve it; a review forbidden to
    ``system:anonymous`` means no credentials were sent, see ``review_error_user``). Returns
    ``{"server", "version", "user"}``; raises ``ClusterUnreachable``.
    """
    try:
        configuration, headers = build_configuration(auth)
    except Exception as error:  # kubeconfig missing, context unknown, ...
        raise ClusterUnreachable(_scrub("cannot build a client: {0}".format(describe_error(error)), auth))
    server = getattr(configuration, "host", None)
    if hasattr(configuration, "retries"):
        configuration.retries = 1
    api_client = kubernetes.client.ApiClient(configuration)
    try:
        for header, value in headers.items():
            _set_header(api_client, header, value)
        try:
            version = kubernetes.client.VersionApi(api_client).get_code(_request_timeout=timeout)
        except Exception as error:
            raise ClusterUnreachable(_scrub("GET {0}/version failed: {1}".format(server, describe_error(error)), auth),
                                     server=server)
        user = None
        review_class = getattr(kubernetes.client, "V1SelfSubjectReview", None)
        if review_class is not None:
            try:
                review = kubernetes.client.AuthenticationV1Api(api_client).create_self_subject_review(
                    body=review_class(), _request_timeout=timeout)
                user = review.status.user_info.username
            except ApiException as error:
                user = review_error_user(error, server, auth)
            except Exception:  # pylint: disable=broad-except
                user = None
        if user == "system:anonymous":
            raise ClusterUnreachable("the API server at {0} answered, but as system:anonymous: no credentials were "
                                     "sent; check the token, the client certificate or the kubeconfig user".format(server),
                                     server=server)
        return {"server": server, "version": getattr(version, "git_version", None), "user": user}
    finally:
        close = getattr(api_client, "close", None)
        if close is not None:
            close()


def probe_all(clusters, timeout=DEFAULT_TIMEOUT, max_workers=8):
    """Probe several clusters in parallel.

    ``clusters`` maps a name to its auth options. Returns ``{name: result}`` where result is
    ``probe``'s dict plus ``reachable: True``, or ``{"reachable": False, "server", "error"}``.
    """
    results = {}
    if not clusters:
        return results

    def one(item):
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
