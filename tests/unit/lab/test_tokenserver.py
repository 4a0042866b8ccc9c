"""Unit tests of the lab token server's pure parts: no network, no cluster."""

import base64
import datetime
import json
import logging

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from lab import tokenserver as ts

INTEGRATED = ts.ServiceConfig(name="integrated", issuer="segmented-registry-lab",
                              namespace_from="repository")
ENV_TEST = ts.ServiceConfig(name="env-test", issuer="segmented-registry-lab", namespace="test")


def _self_signed(cn="token-signer"):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return key, cert


@pytest.fixture(scope="module")
def signer():
    return _self_signed()


def _decode(token):
    header, claims, sig = token.split(".")
    return (json.loads(ts.b64url_decode(header)), json.loads(ts.b64url_decode(claims)),
            ts.b64url_decode(sig), f"{header}.{claims}".encode())


def _basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- scopes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("repository:myproject/app:pull", ts.Scope("repository", "myproject/app", ("pull",))),
    ("repository:myproject/app:pull,push",
     ts.Scope("repository", "myproject/app", ("pull", "push"))),
    ("repository:myproject/app:push,pull,push",
     ts.Scope("repository", "myproject/app", ("push", "pull"))),
    ("repository:a/b/c-d_e.f:delete", ts.Scope("repository", "a/b/c-d_e.f", ("delete",))),
    ("repository:localhost:5000/ns/app:pull",
     ts.Scope("repository", "localhost:5000/ns/app", ("pull",))),
    ("repository(plugin):ns/app:pull", ts.Scope("repository", "ns/app", ("pull",))),
    ("registry:catalog:*", ts.Scope("registry", "catalog", ("*",))),
    ("foo:bar:baz", ts.Scope("foo", "bar", ("baz",))),
])
def test_parse_scope_good(text, expected):
    assert ts.parse_scope(text) == expected


@pytest.mark.parametrize("text", [
    "", "repository", "repository:ns/app", "repository::pull", ":ns/app:pull",
    "repository:ns/app:", "repository:ns/app:pull,", "repository:ns/app:PULL",
    "repository:ns/app:pull push", "Repository:ns/app:pull", "repository:NS/App:pull",
    "repository:ns//app:pull", "repository:/ns/app:pull", "repository:ns/app/:pull",
    "repository:ns/-app:pull", "repository:" + "a" * 256 + ":pull", "repo(x:ns/app:pull",
])
def test_parse_scope_bad(text):
    with pytest.raises(ts.ScopeError):
        ts.parse_scope(text)


def test_parse_scopes_accepts_repeated_and_space_separated_values():
    scopes = ts.parse_scopes(["repository:a/b:pull repository:c/d:push", "registry:catalog:*"])
    assert [str(s) for s in scopes] == ["repository:a/b:pull", "repository:c/d:push",
                                        "registry:catalog:*"]
    assert ts.parse_scopes([]) == []


def test_merge_scopes_unions_actions_per_resource():
    merged = ts.merge_scopes([ts.parse_scope("repository:a/b:pull"),
                              ts.parse_scope("repository:c/d:pull"),
                              ts.parse_scope("repository:a/b:push,pull")])
    assert merged == [ts.Scope("repository", "a/b", ("pull", "push")),
                      ts.Scope("repository", "c/d", ("pull",))]


# --- review attributes and decisions -----------------------------------------------------------

def test_review_attributes_namespace_from_repository():
    attrs = ts.review_attributes(ts.parse_scope("repository:myproject/app:pull,push,delete,x"),
                                 INTEGRATED)
    layers = {"group": "image.openshift.io", "resource": "imagestreams",
              "subresource": "layers", "namespace": "myproject", "name": "app"}
    assert attrs == {
        "pull": {**layers, "verb": "get"},
        "push": {**layers, "verb": "update"},
        "delete": {"group": "image.openshift.io", "resource": "images", "verb": "delete"},
    }


def test_review_attributes_nested_name_and_missing_namespace():
    attrs = ts.review_attributes(ts.parse_scope("repository:ns/group/app:pull"), INTEGRATED)
    assert attrs["pull"]["namespace"] == "ns" and attrs["pull"]["name"] == "group/app"
    assert ts.review_attributes(ts.parse_scope("repository:app:pull"), INTEGRATED) == {}


def test_review_attributes_fixed_namespace():
    attrs = ts.review_attributes(ts.parse_scope("repository:myproject/app:pull,push"), ENV_TEST)
    assert attrs["pull"] == {"group": "image.openshift.io", "resource": "imagestreams",
                             "subresource": "layers", "namespace": "test", "verb": "get"}
    assert attrs["push"]["verb"] == "update" and attrs["push"]["namespace"] == "test"
    # a single-segment repository is fine when the namespace is fixed
    assert ts.review_attributes(ts.parse_scope("repository:app:pull"), ENV_TEST)["pull"]


def test_review_attributes_catalog_and_unknown_types():
    assert ts.review_attributes(ts.parse_scope("registry:catalog:*"), INTEGRATED) == {
        "*": {"group": "image.openshift.io", "resource": "imagestreams", "verb": "list"}}
    assert ts.review_attributes(ts.parse_scope("registry:catalog:pull"), INTEGRATED) == {}
    assert ts.review_attributes(ts.parse_scope("registry:other:*"), INTEGRATED) == {}
    assert ts.review_attributes(ts.parse_scope("foo:a/b:pull"), INTEGRATED) == {}
    assert ts.review_attributes(ts.parse_scope("repository:a/b:*"), INTEGRATED) == {}


class FakeSAR:
    """Answers SubjectAccessReviews from a set of allowed (verb, resource, namespace) triples."""

    def __init__(self, allowed):
        self.allowed = set(allowed)
        self.calls = []

    def __call__(self, attrs):
        self.calls.append(dict(attrs))
        return (attrs["verb"], attrs["resource"], attrs.get("namespace")) in self.allowed


def test_decide_access_grants_only_allowed_actions():
    sar = FakeSAR({("get", "imagestreams", "myproject")})
    access = ts.decide_access(
        ts.parse_scopes(["repository:myproject/app:pull,push", "repository:other/app:pull"]),
        INTEGRATED, sar)
    assert access == [{"type": "repository", "name": "myproject/app", "actions": ["pull"]}]


def test_decide_access_push_delete_and_catalog():
    sar = FakeSAR({("get", "imagestreams", "p"), ("update", "imagestreams", "p"),
                   ("delete", "images", None), ("list", "imagestreams", None)})
    access = ts.decide_access(
        ts.parse_scopes(["repository:p/app:pull,push,delete", "registry:catalog:*",
                         "foo:p/app:pull"]), INTEGRATED, sar)
    assert access == [
        {"type": "repository", "name": "p/app", "actions": ["pull", "push", "delete"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]


def test_decide_access_fixed_namespace_and_memoized_reviews():
    sar = FakeSAR({("get", "imagestreams", "test")})
    access = ts.decide_access(
        ts.parse_scopes(["repository:a/one:pull,push", "repository:b/two:pull"]), ENV_TEST, sar)
    assert access == [{"type": "repository", "name": "a/one", "actions": ["pull"]},
                      {"type": "repository", "name": "b/two", "actions": ["pull"]}]
    # same attributes (namespace test, no name) are reviewed once: get once, update once
    assert sorted(c["verb"] for c in sar.calls) == ["get", "update"]


def test_decide_access_nothing_requested_or_nothing_allowed():
    assert ts.decide_access([], INTEGRATED, FakeSAR(set())) == []
    assert ts.decide_access(ts.parse_scopes(["repository:p/a:pull,push"]), INTEGRATED,
                            FakeSAR(set())) == []


# --- claims and JWT ----------------------------------------------------------------------------

def test_build_claims():
    access = [{"type": "repository", "name": "p/a", "actions": ["pull"]}]
    claims = ts.build_claims(issuer="iss", subject="alice", audience="integrated",
                             access=access, now=1000, ttl=300, jti="abc")
    assert claims == {"iss": "iss", "sub": "alice", "aud": "integrated", "exp": 1300,
                      "nbf": 1000, "iat": 1000, "jti": "abc", "access": access}


def test_sign_jwt_verifies_with_certificate_and_carries_x5c(signer):
    key, cert = signer
    claims = ts.build_claims(issuer="iss", subject="alice", audience="svc", access=[],
                             now=1000, ttl=300, jti="j")
    token = ts.sign_jwt(claims, key, ts.x5c_chain([cert]))
    header, decoded, signature, signing_input = _decode(token)
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    der = base64.b64decode(header["x5c"][0])
    assert x509.load_der_x509_certificate(der) == cert
    cert.public_key().verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    assert decoded == claims
    assert "=" not in token  # base64url without padding


def test_sign_jwt_rejects_tampering(signer):
    """The genuine token verifies, and changing its claims or its signature by one bit breaks it:
    an all-zero (or otherwise fake) signature fails the first check."""
    from cryptography.exceptions import InvalidSignature
    key, cert = signer
    token = ts.sign_jwt({"sub": "a"}, key, ts.x5c_chain([cert]))
    header, claims, signature_text = token.split(".")
    signature = ts.b64url_decode(signature_text)
    assert len(signature) == key.key_size // 8
    cert.public_key().verify(signature, f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    forged = ts.b64url(json.dumps({"sub": "root"}).encode())
    with pytest.raises(InvalidSignature):
        cert.public_key().verify(signature, f"{header}.{forged}".encode(), padding.PKCS1v15(), hashes.SHA256())
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(InvalidSignature):
        cert.public_key().verify(flipped, f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())


def test_sign_jwt_needs_rsa():
    from cryptography.hazmat.primitives.asymmetric import ec
    with pytest.raises(TypeError):
        ts.sign_jwt({}, ec.generate_private_key(ec.SECP256R1()), [])


def test_rfc3339():
    assert ts.rfc3339(0) == "1970-01-01T00:00:00Z"


# --- credentials, cache, config ----------------------------------------------------------------

def test_credentials_from_header():
    assert ts.credentials_from_header(None) is None
    assert ts.credentials_from_header("  ") is None
    assert ts.credentials_from_header(_basic("bob", "s3:cr3t")) == ("bob", "s3:cr3t")
    assert ts.credentials_from_header("Bearer abc.def") == ("", "abc.def")
    for bad in ["Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(),
                _basic("bob", ""), "Digest x", "Bearer "]:
        with pytest.raises(ts.CredentialError) as err:
            ts.credentials_from_header(bad)
        assert "s3" not in str(err.value)


def test_ttl_cache_expires():
    now = [100.0]
    cache = ts.TTLCache(10, clock=lambda: now[0])
    cache.put("k", "v")
    assert cache.get("k") == "v"
    now[0] = 109.9
    assert cache.get("k") == "v"
    now[0] = 110.0
    assert cache.get("k") is None
    assert ts.token_fingerprint("t") == ts.token_fingerprint("t") != ts.token_fingerprint("u")


def _raw_config(**over):
    raw = {"listen": "127.0.0.1:5110", "tls_cert": "tls.crt", "tls_key": "/abs/tls.key",
           "signing_cert": "s.crt", "signing_key": "s.key", "token_ttl_seconds": 300,
           "kubeconfig": "kubeconfig", "context": "registry",
           "services": {"integrated": {"issuer": "i", "namespace_from": "repository"},
                        "env-test": {"issuer": "i", "namespace": "test"}}}
    raw.update(over)
    return raw


def test_config_from_dict(tmp_path):
    cfg = ts.config_from_dict(_raw_config(), base_dir=str(tmp_path))
    assert (cfg.host, cfg.port) == ("127.0.0.1", 5110)
    assert cfg.tls_cert == str(tmp_path / "tls.crt") and cfg.tls_key == "/abs/tls.key"
    assert cfg.services["env-test"].namespace == "test"
    assert cfg.services["integrated"].namespace_from == "repository"
    assert cfg.context == "registry" and cfg.token_ttl_seconds == 300


@pytest.mark.parametrize("services", [
    {"x": {"issuer": "i"}},
    {"x": {"issuer": "i", "namespace": "test", "namespace_from": "repository"}},
    {"x": {"issuer": "i", "namespace_from": "path"}},
    {"x": {"issuer": "", "namespace": "test"}},
    {"x": {"issuer": "i", "namespace": "Bad_NS"}},
    {"x": {"issuer": "i", "namespace": "t", "extra": 1}},
    {},
])
def test_config_rejects_bad_services(services):
    with pytest.raises(ValueError):
        ts.config_from_dict(_raw_config(services=services))


def test_config_rejects_bad_listen_and_ttl():
    with pytest.raises(ValueError):
        ts.config_from_dict(_raw_config(listen="nope"))
    with pytest.raises(ValueError):
        ts.config_from_dict(_raw_config(token_ttl_seconds=5))


def test_load_signer(tmp_path, signer):
    key, cert = signer
    (tmp_path / "s.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "s.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    loaded, x5c = ts.load_signer(str(tmp_path / "s.crt"), str(tmp_path / "s.key"))
    assert x5c == ts.x5c_chain([cert])
    other = _self_signed("other")[0]
    (tmp_path / "o.key").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ValueError):
        ts.load_signer(str(tmp_path / "s.crt"), str(tmp_path / "o.key"))


# --- the whole request, with a fake reviewer ---------------------------------------------------

SECRET = "sha256~very-secret-token-value"


class FakeReviewer:
    def __init__(self, allowed=(), fail=False):
        self.sar = FakeSAR(allowed)
        self.fail = fail
        self.tokens = []

    def authenticate(self, token):
        self.tokens.append(token)
        if self.fail:
            raise ts.ReviewError("TokenReview failed: MaxRetryError")
        if token != SECRET:
            return None
        return ts.ReviewedUser("system:serviceaccount:myproject:builder", "uid-1",
                               ("system:serviceaccounts",), {})

    def allowed(self, user, attrs):
        assert user.username.startswith("system:serviceaccount:")
        return self.sar(attrs)


def _issuer(signer, reviewer):
    key, cert = signer
    return ts.TokenIssuer({"integrated": INTEGRATED, "env-test": ENV_TEST}, key,
                          ts.x5c_chain([cert]), reviewer, ttl=300, clock=lambda: 1_000_000)


def _params(service="integrated", *scopes):
    return {"service": [service], "scope": list(scopes), "account": ["anyone"]}


def test_handle_issues_token_with_granted_access(signer, caplog):
    reviewer = FakeReviewer({("get", "imagestreams", "myproject"),
                             ("update", "imagestreams", "myproject")})
    caplog.set_level(logging.DEBUG, logger="segmented.tokenserver")
    resp = _issuer(signer, reviewer).handle(
        _params("integrated", "repository:myproject/app:pull,push", "repository:x/y:pull"),
        _basic("ignored", SECRET))
    assert resp.status == 200
    assert resp.body["token"] == resp.body["access_token"]
    assert resp.body["expires_in"] == 300 and resp.body["issued_at"].endswith("Z")
    claims = _decode(resp.body["token"])[1]
    assert claims["iss"] == "segmented-registry-lab" and claims["aud"] == "integrated"
    assert claims["sub"] == "system:serviceaccount:myproject:builder"
    assert claims["exp"] == 1_000_300 and claims["nbf"] == 1_000_000
    assert claims["access"] == [{"type": "repository", "name": "myproject/app",
                                 "actions": ["pull", "push"]}]
    assert reviewer.tokens == [SECRET]
    assert SECRET not in caplog.text and resp.body["token"] not in caplog.text
    assert "system:serviceaccount:myproject:builder" in caplog.text


def test_handle_fixed_namespace_service(signer):
    reviewer = FakeReviewer({("get", "imagestreams", "test")})
    resp = _issuer(signer, reviewer).handle(
        _params("env-test", "repository:myproject/app:pull,push"), _basic("u", SECRET))
    claims = _decode(resp.body["token"])[1]
    assert claims["aud"] == "env-test"
    assert claims["access"] == [{"type": "repository", "name": "myproject/app",
                                 "actions": ["pull"]}]


def test_handle_errors(signer, caplog):
    caplog.set_level(logging.DEBUG, logger="segmented.tokenserver")
    issuer = _issuer(signer, FakeReviewer({("get", "imagestreams", "p")}))
    unknown = issuer.handle(_params("nope", "repository:p/a:pull"), _basic("u", SECRET))
    assert unknown.status == 400
    bad_scope = issuer.handle(_params("integrated", "repository:p/a"), _basic("u", SECRET))
    assert bad_scope.status == 400 and "repository:p/a" in bad_scope.body["errors"][0]["message"]
    anonymous = issuer.handle(_params("integrated", "repository:p/a:pull"), None)
    assert anonymous.status == 401 and "WWW-Authenticate" in anonymous.headers
    assert "token" not in anonymous.body
    wrong = issuer.handle(_params("integrated", "repository:p/a:pull"),
                          _basic("u", "wrong-password-xyz"))
    assert wrong.status == 401 and "token" not in wrong.body
    assert wrong.body["errors"][0]["code"] == "UNAUTHORIZED"
    down = _issuer(signer, FakeReviewer(fail=True)).handle(
        _params("integrated", "repository:p/a:pull"), _basic("u", SECRET))
    assert down.status == 503
    assert SECRET not in caplog.text and "wrong-password-xyz" not in caplog.text


def test_handle_denied_everything_still_issues_empty_token(signer):
    resp = _issuer(signer, FakeReviewer(set())).handle(
        _params("integrated", "repository:p/a:pull,push"), _basic("u", SECRET))
    assert resp.status == 200
    assert _decode(resp.body["token"])[1]["access"] == []
