"""Reachability and the kube seam's client builders, without a network: per-cluster configurations, error texts, what a failed review means.

No network: probes of real API servers are in tests/integration/test_validate_inventory.py.
"""


import json

import pytest
import yaml
from kubernetes.client.rest import ApiException

from ansible_collections.segmented.registry.plugins.module_utils import kube
from ansible_collections.segmented.registry.plugins.module_utils.inventory.reachability import (
    UNREACHABLE_FAIL,
    UNREACHABLE_LEAVE_OUT,
    ClusterUnreachable,
    left_out_consumers,
    probe,
    probe_all,
    review_error_user,
    unreachable_problems,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.validate import build_topology
from ansible_collections.segmented.registry.plugins.module_utils.kube import build_configuration

TOKEN = "sha256~not-for-your-eyes-42"


@pytest.fixture(autouse=True)
def no_k8s_auth_environment(monkeypatch, tmp_path):
    """kubernetes.core falls back to K8S_AUTH_* and ~/.kube/config: keep the tests hermetic."""
    import os
    for name in list(os.environ):
        if name.startswith("K8S_AUTH_") or name == "KUBECONFIG":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_probe_bad_kubeconfig(tmp_path):
    with pytest.raises(ClusterUnreachable) as info:
        probe({"kubeconfig": str(tmp_path / "missing"), "context": "nope"}, timeout=1)
    assert info.value.server is None
    assert str(info.value).startswith("cannot build a client:")


def test_probe_all_of_nothing():
    assert probe_all({}) == {}


def api_exception(status, reason, message=None):
    error = ApiException(status=status, reason=reason)
    if message is not None:
        error.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                                 "reason": reason, "code": status})
    return error


SERVER = "https://api.cluster.example.com:6443"
#: What kube-apiserver answers a SelfSubjectReview sent without credentials.
ANONYMOUS_FORBIDDEN = ('selfsubjectreviews.authentication.k8s.io is forbidden: User "system:anonymous" cannot create '
                       'resource "selfsubjectreviews" in API group "authentication.k8s.io" at the cluster scope')


def test_review_rejected_credentials_name_the_server_not_the_token():
    error = api_exception(401, "Unauthorized", "Unauthorized, token " + TOKEN)
    with pytest.raises(ClusterUnreachable) as info:
        review_error_user(error, SERVER, {"host": SERVER, "api_key": TOKEN})
    assert info.value.server == SERVER
    assert str(info.value).startswith(f"the API server at {SERVER} rejected the credentials: HTTP 401 Unauthorized")
    assert TOKEN not in str(info.value)


def test_review_forbidden_names_the_user():
    assert review_error_user(api_exception(403, "Forbidden", ANONYMOUS_FORBIDDEN), SERVER) == "system:anonymous"
    other = ANONYMOUS_FORBIDDEN.replace("system:anonymous", "system:serviceaccount:ops:automation")
    assert review_error_user(api_exception(403, "Forbidden", other), SERVER) == "system:serviceaccount:ops:automation"


@pytest.mark.parametrize("error", [
    api_exception(403, "Forbidden"),  # no Status body
    api_exception(403, "Forbidden", "forbidden by a webhook"),
    api_exception(404, "Not Found", "the server could not find the requested resource"),  # before Kubernetes 1.28
    api_exception(500, "Internal Server Error", "etcdserver: request timed out"),
])
def test_review_without_an_answer_leaves_the_user_unknown(error):
    assert review_error_user(error, SERVER) is None


def write_kubeconfig(path, server, ca_file, cert_file, key_file, context="lab"):
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": context, "user": {"client-certificate": str(cert_file), "client-key": str(key_file)}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
    }))


def test_configurations_do_not_leak_between_clusters(tmp_path):
    """A host + api_key cluster built after a kubeconfig one gets none of its CA or client cert."""
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_text("placeholder\n")
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, "https://127.0.0.1:16443", tmp_path / "ca.crt", tmp_path / "client.crt",
                     tmp_path / "client.key")
    first, _headers = build_configuration({"kubeconfig": str(kubeconfig), "context": "lab"})
    assert first.host == "https://127.0.0.1:16443"
    assert first.ssl_ca_cert == str(tmp_path / "ca.crt")
    second, _headers = build_configuration({"host": "https://api.other.example.com:6443", "api_key": TOKEN})
    assert second.host == "https://api.other.example.com:6443"
    assert second.ssl_ca_cert is None and second.cert_file is None and second.key_file is None
    assert first.host == "https://127.0.0.1:16443"  # not changed by the second build


def test_impersonation_options_become_request_headers():
    configuration, headers = build_configuration({"host": "https://api.other.example.com:6443", "api_key": TOKEN,
                                                  "impersonate_user": "system:serviceaccount:ops:automation",
                                                  "impersonate_groups": ["ops"]})
    assert headers == {"Impersonate-User": "system:serviceaccount:ops:automation", "Impersonate-Group": ["ops"]}
    assert configuration.api_key == {"authorization": "Bearer " + TOKEN}


def test_describe_error_uses_the_status_message():
    error = ApiException(status=403, reason="Forbidden")
    error.body = '{"message": "namespaces is forbidden: User \\"x\\" cannot list"}'
    assert kube.describe_error(error) == 'HTTP 403 Forbidden: namespaces is forbidden: User "x" cannot list'
    assert kube.describe_error(ValueError("boom")) == "ValueError: boom"


LEFT_OUT_ENVIRONMENTS = [
    {"name": "test", "route_host": "test-registry.apps.registry.example.com"},
    {"name": "uat", "route_host": "uat-registry.apps.registry.example.com", "policy": {"after": "test"}},
]
LEFT_OUT_HOSTS = {
    "registry": {"segmented_registry_role": "registry", "segmented_registry_k8s_auth": {"kubeconfig": "/k", "context": "registry"}},
    "test": {"segmented_registry_environment": "test", "segmented_registry_k8s_auth": {"kubeconfig": "/k", "context": "test"}},
    "uat": {"segmented_registry_environment": "uat", "segmented_registry_k8s_auth": {"host": "https://127.0.0.1:1"}},
}
DOWN = {"reachable": False, "server": "https://127.0.0.1:1", "error": "GET https://127.0.0.1:1/version failed: connection refused"}


def split(results, mode):
    topology = build_topology(LEFT_OUT_ENVIRONMENTS, LEFT_OUT_HOSTS)
    return left_out_consumers(topology, unreachable_problems(topology, results), mode)


def test_fail_fails_every_unreachable_cluster_and_leaves_nothing_out():
    failing, left_out = split({"registry": {"reachable": True}, "test": {"reachable": True}, "uat": DOWN}, UNREACHABLE_FAIL)
    assert [problem.host for problem in failing] == ["uat"]
    assert left_out == {}


def test_leave_out_names_the_consumer_with_why_and_fails_nothing():
    failing, left_out = split({"registry": {"reachable": True}, "test": {"reachable": True}, "uat": DOWN}, UNREACHABLE_LEAVE_OUT)
    assert failing == []
    assert list(left_out) == ["uat"]
    assert left_out["uat"].startswith("uat: segmented_registry_k8s_auth: cannot reach the cluster at https://127.0.0.1:1 "
                                      "(credentials from host https://127.0.0.1:1): GET https://127.0.0.1:1/version failed: connection refused")


def test_an_unreachable_registry_cluster_fails_even_with_leave_out():
    failing, left_out = split({"registry": DOWN, "test": DOWN, "uat": {"reachable": True}}, UNREACHABLE_LEAVE_OUT)
    assert [problem.host for problem in failing] == ["registry"]
    assert "cannot reach the cluster" in str(failing[0])
    assert list(left_out) == ["test"]


def test_every_cluster_answering_leaves_nothing_out():
    assert split({"registry": {"reachable": True}, "test": {"reachable": True}, "uat": {"reachable": True}}, UNREACHABLE_LEAVE_OUT) == ([], {})
