"""The promotion engine sends a registry credential only to a token realm on the registry's own host
(any port) or an allow-listed one (``token_realm_hosts``), never over plain HTTP but to the registry's
own plain-HTTP host (issue 22): ``auth.check_realm``, and a client whose registry later moves its
realm to another host."""

import json

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.oci import client as oci
from ansible_collections.segmented.registry.plugins.module_utils.oci.auth import check_realm
from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import OCI_MANIFEST
from tests.unit.plugins.module_utils.oci.test_client import DIGEST, PASSWORD, Server

REGISTRY = "prod-registry.apps.example.com"


def refused(registry, realm, scheme="https", allowed=()):
    with pytest.raises(RegistryError) as raised:
        check_realm(registry, realm, scheme, allowed)
    return str(raised.value)


def test_another_host_is_refused_naming_both_hosts_and_the_option():
    message = refused(REGISTRY, "https://auth.evil.example.net/token")
    assert "on host auth.evil.example.net, not on the registry's host prod-registry.apps.example.com" in message
    assert "token_realm_hosts" in message


def test_allow_listed_host_is_accepted_in_any_case():
    check_realm(REGISTRY, "https://Registry-Token.apps.example.com/token", allowed=["registry-token.apps.example.com"])


def test_own_host_on_another_port_is_accepted():
    check_realm(f"{REGISTRY}:5000", "https://prod-registry.apps.example.com:8443/token")
    check_realm("127.0.0.1:5100", "https://127.0.0.1:5110/token")


@pytest.mark.parametrize("realm, scheme, allowed", [
    (f"http://{REGISTRY}/token", "https", ()),  # an HTTPS registry: no plain HTTP, even to itself
    ("http://registry-token.apps.example.com/token", "https", ["registry-token.apps.example.com"]),
    ("http://registry-token.apps.example.com/token", "http", ["registry-token.apps.example.com"]),  # another host
])
def test_plain_http_realm_is_refused(realm, scheme, allowed):
    assert "is plain HTTP" in refused(REGISTRY, realm, scheme, allowed)


def test_plain_http_realm_of_a_plain_http_registrys_own_host_is_accepted():
    check_realm(f"{REGISTRY}:5000", f"http://{REGISTRY}:5001/token", scheme="http")


@pytest.mark.parametrize("realm", ["file:///etc/passwd", "/token", "https:///token"])
def test_realm_without_a_host_is_refused(realm):
    assert "not an http(s) URL with a host" in refused(REGISTRY, realm)


def test_a_later_challenge_that_moves_the_realm_is_refused_before_the_credential_is_sent():
    """The first challenge names the registry's own host (a token is fetched, the manifest read);
    a later 401 moves the realm to another host: the client fails naming both hosts, and sends no
    request there (the realm host does not even resolve to a server of the test)."""
    answers = {"moved": False}

    def token(handler):
        handler.answer(200, {"Content-Type": "application/json"}, json.dumps({"token": "t1"}).encode())

    auth = Server({("GET", "/token"): token})
    own_realm = f"http://{auth.endpoint}/token"
    moved_realm = "https://auth.elsewhere.invalid/token"

    def challenge(handler, realm=None):
        handler.answer(401, {"WWW-Authenticate": f'Bearer realm="{realm or own_realm}",service="svc"'})

    def manifest(handler):
        if answers["moved"]:
            return challenge(handler, moved_realm)
        handler.answer(200, {"Docker-Content-Digest": DIGEST, "Content-Type": OCI_MANIFEST, "Content-Length": "2"})

    registry = Server({("GET", "/v2/"): challenge, ("HEAD", "/v2/ns/app/manifests/v1"): manifest})
    client = oci.RegistryClient(registry.endpoint, password=PASSWORD, scheme="http", retries=0)
    try:
        assert client.head_manifest("ns/app", "v1")["digest"] == DIGEST
        answers["moved"] = True
        with pytest.raises(RegistryError) as raised:
            client.head_manifest("ns/app", "v1")
    finally:
        client.close()
        registry.close()
        auth.close()
    assert "on host auth.elsewhere.invalid, not on the registry's host 127.0.0.1" in str(raised.value)
    assert PASSWORD not in str(raised.value)
    assert auth.count("GET", "/token") == 1
