# -*- coding: utf-8 -*-
"""cluster_client: bounded probes, per-cluster configurations, no secret in errors.

Uses a stand-in API server on loopback (tests/unit/fake_apiserver.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import time

import pytest
import yaml

from fake_apiserver import FakeAPIServer

from ansible_collections.segmented.registry.plugins.module_utils import cluster_client
from ansible_collections.segmented.registry.plugins.module_utils.cluster_client import (
    ClusterUnreachable,
    build_configuration,
    get_client,
    probe,
    probe_all,
)

TOKEN = "sha256~not-for-your-eyes-42"


@pytest.fixture(autouse=True)
def no_k8s_auth_environment(monkeypatch, tmp_path):
    """kubernetes.core falls back to K8S_AUTH_* and ~/.kube/config: keep the tests hermetic."""
    import os
    for name in list(os.environ):
        if name.startswith("K8S_AUTH_") or name == "KUBECONFIG":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_probe_reports_version_and_user():
    with FakeAPIServer(token=TOKEN, username="system:serviceaccount:ops:automation") as server:
        result = probe({"host": server.url, "api_key": TOKEN}, timeout=5)
    assert result == {"server": server.url, "version": "v1.36.3", "user": "system:serviceaccount:ops:automation"}
    assert [(method, path) for method, path, _headers in server.requests] == [
        ("GET", "/version/"), ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews")]


def test_probe_rejected_token_names_server_not_token():
    with FakeAPIServer(token="the-right-one") as server:
        with pytest.raises(ClusterUnreachable) as info:
            probe({"host": server.url, "api_key": TOKEN}, timeout=5)
    text = str(info.value)
    assert info.value.server == server.url
    assert "GET {0}/version failed: HTTP 401".format(server.url) in text
    assert "Unauthorized" in text
    assert TOKEN not in text


def test_probe_anonymous_is_a_problem():
    with FakeAPIServer(token=TOKEN, username="system:anonymous") as server:
        with pytest.raises(ClusterUnreachable) as info:
            probe({"host": server.url, "api_key": TOKEN}, timeout=5)
    assert "as system:anonymous" in str(info.value)


@pytest.mark.parametrize("status", [403, 404])
def test_probe_without_self_subject_review(status):
    with FakeAPIServer(token=TOKEN, review_status=status) as server:
        result = probe({"host": server.url, "api_key": TOKEN}, timeout=5)
    assert result["user"] is None and result["version"] == "v1.36.3"


def test_probe_review_rejected_credentials():
    with FakeAPIServer(token=TOKEN, review_status=401) as server:
        with pytest.raises(ClusterUnreachable) as info:
            probe({"host": server.url, "api_key": TOKEN}, timeout=5)
    assert "rejected the credentials" in str(info.value)


def test_probe_connection_refused():
    url = "http://127.0.0.1:{0}".format(closed_port())
    with pytest.raises(ClusterUnreachable) as info:
        probe({"host": url, "api_key": TOKEN}, timeout=2)
    assert "GET {0}/version failed".format(url) in str(info.value)
    assert "refused" in str(info.value).lower()


def test_probe_is_bounded_by_the_timeout():
    with FakeAPIServer(token=TOKEN, hang=True) as server:
        started = time.monotonic()
        with pytest.raises(ClusterUnreachable) as info:
            probe({"host": server.url, "api_key": TOKEN}, timeout=1)
        elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed
    assert "timed out" in str(info.value).lower() or "timeout" in str(info.value).lower()


def test_probe_bad_kubeconfig(tmp_path):
    with pytest.raises(ClusterUnreachable) as info:
        probe({"kubeconfig": str(tmp_path / "missing"), "context": "nope"}, timeout=1)
    assert info.value.server is None
    assert str(info.value).startswith("cannot build a client:")


def test_probe_all_in_parallel():
    with FakeAPIServer(token="a-token") as first, FakeAPIServer(token="b-token", hang=True) as second:
        refused = "http://127.0.0.1:{0}".format(closed_port())
        started = time.monotonic()
        results = probe_all({
            "one": {"host": first.url, "api_key": "a-token"},
            "two": {"host": second.url, "api_key": "b-token"},
            "three": {"host": refused, "api_key": "c-token"},
        }, timeout=1)
        elapsed = time.monotonic() - started
    assert results["one"]["reachable"] is True and results["one"]["server"] == first.url
    assert results["two"]["reachable"] is False and results["two"]["server"] == second.url
    assert results["three"]["reachable"] is False and "refused" in results["three"]["error"].lower()
    assert elapsed < 8, elapsed
    assert probe_all({}) == {}


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


def test_impersonation_headers_are_sent():
    with FakeAPIServer(token=TOKEN) as server:
        probe({"host": server.url, "api_key": TOKEN, "impersonate_user": "someone"}, timeout=5)
    headers = server.requests[0][2]
    assert headers.get("Impersonate-User") == "someone"


def test_get_client_for_several_clusters():
    with FakeAPIServer(token="a-token") as first, FakeAPIServer(token="b-token") as second:
        client_a = get_client({"host": first.url, "api_key": "a-token"})
        client_b = get_client({"host": second.url, "api_key": "b-token"})
    assert client_a.configuration.host == first.url
    assert client_b.configuration.host == second.url


def test_describe_error_uses_the_status_message():
    from kubernetes.client.rest import ApiException
    error = ApiException(status=403, reason="Forbidden")
    error.body = '{"message": "namespaces is forbidden: User \\"x\\" cannot list"}'
    assert cluster_client.describe_error(error) == 'HTTP 403 Forbidden: namespaces is forbidden: User "x" cannot list'
    assert cluster_client.describe_error(ValueError("boom")) == "ValueError: boom"
