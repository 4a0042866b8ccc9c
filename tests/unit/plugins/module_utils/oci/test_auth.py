"""oci.auth.Authentication is a part a RegistryClient has, not a base class: it works with only what
the client hands it (a ``send`` retry path, ``where``/``error`` for messages, ``stats``), and the
client's requests and pipelined HEADs take their Authorization header from it."""

import base64

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.oci import client as oci
from ansible_collections.segmented.registry.plugins.module_utils.oci.auth import Authentication
from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError
from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import Stats, scope

HOST = "registry.example.com"
PASSWORD = "not-a-real-token-9c2e"


class Answer:
    def __init__(self, status, headers=None, body=None):
        self.status_code = status
        self.headers = headers or {}
        self.body = body
        self.attempts = 1

    def close(self):
        pass

    def json(self):
        return self.body


def authentication(answers, sent, stats=None):
    def send(method, url, doing, repository, headers, retry=True):
        sent.append((method, url, dict(headers)))
        return answers(method, url)

    def error(doing, response=None):
        return RegistryError(f"registry {HOST}: {doing} failed: HTTP {response.status_code}", registry=HOST)

    return Authentication(HOST, "https", send=send, where=lambda repository=None: f"registry {HOST}", error=error,
                          stats=stats or Stats(), username="user", password=PASSWORD)


def bearer(method, url):
    if url == f"https://{HOST}/v2/":
        return Answer(401, {"WWW-Authenticate": f'Bearer realm="https://{HOST}/token",service="svc"'})
    return Answer(200, body={"token": "t-" + str(url.count("scope=")), "expires_in": 300})


def test_one_challenge_one_token_per_scope_set_and_the_credentials_only_to_the_realm():
    sent, stats = [], Stats()
    auth = authentication(bearer, sent, stats)
    assert auth.authorization([scope("ns/app", "pull")], "ns/app") == "Bearer t-1"
    assert auth.authorization([scope("ns/app", "pull")], "ns/app") == "Bearer t-1"  # cached
    assert [url.split("?")[0] for _method, url, _headers in sent] == [f"https://{HOST}/v2/", f"https://{HOST}/token"]
    basic = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert sent[0][2] == {} and sent[1][2] == {"Authorization": basic}
    assert stats.token_requests == 1
    assert PASSWORD not in repr(auth)


def test_a_later_challenge_moves_the_realm_and_the_move_is_checked():
    sent = []
    auth = authentication(bearer, sent)
    auth.authorization([scope("ns/app", "pull")], "ns/app")
    auth.follow("bearer", {"realm": "https://auth.elsewhere.example.net/token", "scope": "x"})
    with pytest.raises(RegistryError) as raised:
        auth.authorization([scope("ns/app", "pull")], "ns/app", refresh=True)
    assert "not on the registry's host" in str(raised.value)
    assert len(sent) == 2  # nothing sent to the moved realm


def test_a_registry_without_a_challenge_gets_no_header_and_another_answer_is_the_clients_error():
    assert authentication(lambda method, url: Answer(200), []).authorization([scope("a/b", "pull")]) is None
    with pytest.raises(RegistryError, match=r"checking the API version \(GET /v2/\) failed: HTTP 503"):
        authentication(lambda method, url: Answer(503), []).challenge()


def test_the_client_has_its_authentication():
    client = oci.RegistryClient(HOST, password=PASSWORD, token_realm_hosts=["Auth.Example.com"])
    try:
        assert not isinstance(client, Authentication)
        assert isinstance(client.auth, Authentication)
        assert client.auth.realm_hosts == ("Auth.Example.com",)
        assert PASSWORD not in repr(client) and PASSWORD not in repr(client.auth)
    finally:
        client.close()


def test_json_is_read_from_the_token_answer():
    sent = []

    def answers(method, url):
        if url.endswith("/v2/"):
            return Answer(401, {"WWW-Authenticate": f'Bearer realm="https://{HOST}/token"'})
        return Answer(200, body={"access_token": "t-access"})

    assert authentication(answers, sent).authorization([scope("a/b", "pull")]) == "Bearer t-access"
