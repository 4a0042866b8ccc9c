#!/usr/bin/env python3
"""A registry token server that makes CNCF distribution authorize like OpenShift's registry.

Distribution 2.8 with ``auth.token`` sends clients to this server's realm::

    GET /token?service=<svc>&scope=repository:<repo>:pull,push[&scope=...]&account=<user>
    Authorization: Basic base64(<anything>:<API token of the registry cluster>)

and accepts the RS256 JWT we answer with when its ``x5c`` certificate chains to the registry's
``rootcertbundle``, ``iss`` is the configured issuer and ``aud`` is the service.

Authorization follows OpenShift's integrated registry:

* the basic-auth user name is ignored; the password is a token of the registry cluster, checked
  with a TokenReview (authentication.k8s.io/v1). No credentials or an unauthenticated token: 401;
* each ``repository:<repo>:<actions>`` scope is decided by SubjectAccessReviews
  (authorization.k8s.io/v1) for the reviewed user on ``image.openshift.io`` ``imagestreams/layers``:
  ``get`` for pull, ``update`` for push. The namespace is either the first path segment of the
  repository (``namespace_from: repository``: the integrated registry, SAR name = the rest of the
  path) or a fixed namespace per service (``namespace: test``: an environment registry whose
  access is decided by the roles held in that namespace; no SAR name is sent, as the repository
  is not an ImageStream of that namespace);
* ``delete`` needs cluster-wide ``delete`` on ``image.openshift.io`` ``images``;
* ``registry:catalog:*`` needs cluster-wide ``list`` on ``image.openshift.io`` ``imagestreams``;
* anything else grants nothing. A token is still issued for what was granted (possibly nothing):
  the registry then answers ``insufficient_scope``, as the token specification asks.

The pure parts (scope parsing, review attributes, access decision, claims, JWT signing, the
request handling with an injected reviewer) are separate from the I/O (Kubernetes API, HTTP, TLS)
so that they are unit-tested without a network. Tokens and passwords are never logged.

Usage: ``python lab/tokenserver.py --config tokenserver.json`` (see ``load_config`` for the keys).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import logging
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from collections.abc import Iterable, Mapping, Sequence

from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label

LOG = logging.getLogger("segmented.tokenserver")

IMAGE_GROUP = "image.openshift.io"
DEFAULT_TTL_SECONDS = 300
DEFAULT_TOKENREVIEW_CACHE_SECONDS = 10.0
TOKEN_PATH = "/token"
HEALTH_PATH = "/healthz"

# ---------------------------------------------------------------------------------------------
# Scopes (pure)
# ---------------------------------------------------------------------------------------------

# distribution/reference: path components joined by "/", each lower-case alphanumerics with
# single separators ("." "_" "__" or dashes), optionally preceded by a host[:port] component.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_HOST_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REPOSITORY_RE = re.compile(
    rf"^(?:{_HOST_COMPONENT}(?:\.{_HOST_COMPONENT})*(?::[0-9]+)?/)?"
    rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$"
)
_TYPE_RE = re.compile(r"^[a-z0-9]+(?:\([a-z0-9]+\))?$")
_ACTION_RE = re.compile(r"^(?:\*|[a-z]+)$")
MAX_REPOSITORY_LENGTH = 255


class ScopeError(ValueError):
    """A scope parameter that does not follow the token specification's grammar."""


@dataclass(frozen=True)
class Scope:
    """One requested resource scope, e.g. ``repository:myproject/app:pull,push``."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scope(text: str) -> Scope:
    """Parse ``<type>[(<class>)]:<name>:<action>[,<action>...]``.

    The name may itself contain ``:`` (a ``host:port/`` prefix), so the type is everything before
    the first colon and the actions everything after the last one. The resource class (as in
    ``repository(plugin)``) is dropped. Repository names must be valid distribution repository
    names. Raises ScopeError with a human-readable message.
    """
    if not isinstance(text, str) or not text:
        raise ScopeError("empty scope")
    if len(text) > 1024:
        raise ScopeError("scope too long")
    first = text.find(":")
    last = text.rfind(":")
    if first < 0 or first == last:
        raise ScopeError(f"scope {text!r} is not of the form type:name:actions")
    rtype, name, action_text = text[:first], text[first + 1:last], text[last + 1:]
    if not _TYPE_RE.match(rtype):
        raise ScopeError(f"scope {text!r} has an invalid resource type {rtype!r}")
    rtype = rtype.split("(", 1)[0]
    if not name:
        raise ScopeError(f"scope {text!r} has an empty resource name")
    actions: list[str] = []
    for action in action_text.split(","):
        if not _ACTION_RE.match(action):
            raise ScopeError(f"scope {text!r} has an invalid action {action!r}")
        if action not in actions:
            actions.append(action)
    if rtype == "repository":
        if len(name) > MAX_REPOSITORY_LENGTH or not _REPOSITORY_RE.match(name):
            raise ScopeError(f"scope {text!r} names an invalid repository {name!r}")
    return Scope(rtype, name, tuple(actions))


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Parse every ``scope`` query value; each value may hold several space-separated scopes."""
    scopes: list[Scope] = []
    for value in values:
        for part in value.split(" "):
            if part:
                scopes.append(parse_scope(part))
    return scopes


def merge_scopes(scopes: Iterable[Scope]) -> list[Scope]:
    """Union the actions of scopes naming the same resource, keeping first-seen order."""
    merged: dict[tuple[str, str], list[str]] = {}
    for scope in scopes:
        actions = merged.setdefault((scope.type, scope.name), [])
        actions.extend(a for a in scope.actions if a not in actions)
    return [Scope(t, n, tuple(a)) for (t, n), a in merged.items()]


# ---------------------------------------------------------------------------------------------
# Access decision (pure)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceConfig:
    """How one registry (one ``service`` value) maps repositories to RBAC namespaces."""

    name: str
    issuer: str
    namespace_from: str | None = None  # "repository" or None
    namespace: str | None = None  # a fixed namespace, or None

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ValueError(f"service {self.name!r}: issuer is required")
        if (self.namespace_from is None) == (self.namespace is None):
            raise ValueError(
                f"service {self.name!r}: set exactly one of namespace_from: repository or namespace")
        if self.namespace_from is not None and self.namespace_from != "repository":
            raise ValueError(
                f"service {self.name!r}: namespace_from must be 'repository', "
                f"not {self.namespace_from!r}")
        if self.namespace is not None and not is_dns1123_label(self.namespace):
            raise ValueError(f"service {self.name!r}: invalid namespace {self.namespace!r}")


def _freeze(attrs: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(attrs.items()))


def review_attributes(scope: Scope, service: ServiceConfig) -> dict[str, dict[str, str]]:
    """The SubjectAccessReview resourceAttributes that would grant each action of a scope.

    Actions absent from the result can never be granted (unknown action or resource type, or a
    repository without a namespace segment under ``namespace_from: repository``).
    """
    out: dict[str, dict[str, str]] = {}
    if scope.type == "repository":
        if service.namespace_from == "repository":
            if "/" not in scope.name:
                return out  # OpenShift needs <namespace>/<name>
            namespace, stream = scope.name.split("/", 1)
            base = {"group": IMAGE_GROUP, "resource": "imagestreams", "subresource": "layers",
                    "namespace": namespace, "name": stream}
        else:
            base = {"group": IMAGE_GROUP, "resource": "imagestreams", "subresource": "layers",
                    "namespace": service.namespace}
        for action in scope.actions:
            if action == "pull":
                out[action] = {**base, "verb": "get"}
            elif action == "push":
                out[action] = {**base, "verb": "update"}
            elif action == "delete":
                out[action] = {"group": IMAGE_GROUP, "resource": "images", "verb": "delete"}
    elif scope.type == "registry" and scope.name == "catalog":
        for action in scope.actions:
            if action == "*":
                out[action] = {"group": IMAGE_GROUP, "resource": "imagestreams", "verb": "list"}
    return out


def decide_access(scopes: Sequence[Scope], service: ServiceConfig,
                  authorize: Callable[[Mapping[str, str]], bool]) -> list[dict]:
    """Decide the granted ``access`` claim entries.

    ``authorize(resource_attributes) -> bool`` answers one SubjectAccessReview; it is called at
    most once per distinct attribute set. Only resources with at least one granted action appear.
    """
    answers: dict[tuple[tuple[str, str], ...], bool] = {}
    granted: list[dict] = []
    for scope in merge_scopes(scopes):
        needed = review_attributes(scope, service)
        actions = []
        for action in scope.actions:
            attrs = needed.get(action)
            if attrs is None:
                continue
            key = _freeze(attrs)
            if key not in answers:
                answers[key] = bool(authorize(attrs))
            if answers[key]:
                actions.append(action)
        if actions:
            granted.append({"type": scope.type, "name": scope.name, "actions": actions})
    return granted


# ---------------------------------------------------------------------------------------------
# Claims and JWT (pure)
# ---------------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _compact_json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")


def build_claims(*, issuer: str, subject: str, audience: str, access: list[dict], now: int,
                 ttl: int, jti: str) -> dict:
    """The JWT claim set distribution 2.8 expects (``aud`` is a single string there)."""
    return {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": int(now) + int(ttl),
        "nbf": int(now),
        "iat": int(now),
        "jti": jti,
        "access": access,
    }


def x5c_chain(certificates: Sequence) -> list[str]:
    """The JWS ``x5c`` header: standard base64 of each certificate's DER, leaf first."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in certificates]


def sign_jwt(claims: Mapping, private_key, x5c: Sequence[str]) -> str:
    """An RS256 compact JWS over ``claims`` with ``x5c`` in the header."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise TypeError("RS256 needs an RSA private key")
    header = {"alg": "RS256", "typ": "JWT", "x5c": list(x5c)}
    signing_input = f"{b64url(_compact_json(header))}.{b64url(_compact_json(claims))}"
    signature = private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                 hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Credentials (pure)
# ---------------------------------------------------------------------------------------------


class CredentialError(ValueError):
    """An Authorization header that cannot be read."""


def credentials_from_header(value: str | None) -> tuple[str, str] | None:
    """``(account, secret)`` from ``Basic`` (user name kept only for logs) or ``Bearer``.

    None when there is no header (anonymous). The secret never appears in an exception text.
    """
    if value is None or not value.strip():
        return None
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialError("malformed basic credentials") from None
        if ":" not in decoded:
            raise CredentialError("malformed basic credentials")
        account, password = decoded.split(":", 1)
        if not password:
            raise CredentialError("empty password")
        return account, password
    if scheme.lower() == "bearer" and rest:
        return "", rest
    raise CredentialError("unsupported authorization scheme")


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Reviews against the registry cluster (I/O, behind a small interface)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewedUser:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class ReviewError(RuntimeError):
    """The registry cluster could not answer a review (not a denial)."""


class TTLCache:
    """A tiny thread-safe cache with expiry; keys are already hashed by the caller."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic, max_entries=4096):
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._data: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            expires, value = hit
            if self.clock() >= expires:
                del self._data[key]
                return None
            return value

    def put(self, key: str, value) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            now = self.clock()
            if len(self._data) >= self.max_entries:
                for k in [k for k, (exp, _) in self._data.items() if exp <= now]:
                    del self._data[k]
                if len(self._data) >= self.max_entries:
                    self._data.clear()
            self._data[key] = (now + self.ttl, value)


class KubeReviewer:
    """TokenReview and SubjectAccessReview on the registry cluster, with the server's own
    credentials (kubeconfig + context). Authenticated TokenReview results are cached for
    ``cache_seconds`` keyed by sha256(token), so the many blob requests of one pull do not each
    cost a review."""

    def __init__(self, kubeconfig: str, context: str | None,
                 cache_seconds: float = DEFAULT_TOKENREVIEW_CACHE_SECONDS):
        import kubernetes.client
        import kubernetes.config

        api_client = kubernetes.config.new_client_from_config(
            config_file=kubeconfig, context=context, persist_config=False)
        self._authn = kubernetes.client.AuthenticationV1Api(api_client)
        self._authz = kubernetes.client.AuthorizationV1Api(api_client)
        self._models = kubernetes.client
        self._cache = TTLCache(cache_seconds)

    def authenticate(self, token: str) -> ReviewedUser | None:
        key = token_fingerprint(token)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        m = self._models
        body = m.V1TokenReview(spec=m.V1TokenReviewSpec(token=token))
        try:
            review = self._authn.create_token_review(body)
        except Exception as exc:  # ApiException, urllib3 errors: never echo the request
            raise ReviewError(f"TokenReview failed: {type(exc).__name__} "
                              f"{getattr(exc, 'status', '')}".strip()) from None
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        reviewed = ReviewedUser(
            username=user.username or "",
            uid=user.uid or "",
            groups=tuple(user.groups or ()),
            extra={k: tuple(v or ()) for k, v in (user.extra or {}).items()},
        )
        self._cache.put(key, reviewed)
        return reviewed

    def allowed(self, user: ReviewedUser, attrs: Mapping[str, str]) -> bool:
        m = self._models
        spec = m.V1SubjectAccessReviewSpec(
            user=user.username,
            uid=user.uid or None,
            groups=list(user.groups) or None,
            extra={k: list(v) for k, v in user.extra.items()} or None,
            resource_attributes=m.V1ResourceAttributes(**attrs),
        )
        try:
            review = self._authz.create_subject_access_review(
                m.V1SubjectAccessReview(spec=spec))
        except Exception as exc:
            raise ReviewError(f"SubjectAccessReview failed: {type(exc).__name__} "
                              f"{getattr(exc, 'status', '')}".strip()) from None
        return bool(review.status and review.status.allowed)


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class Config:
    host: str
    port: int
    tls_cert: str
    tls_key: str
    signing_cert: str
    signing_key: str
    token_ttl_seconds: int
    kubeconfig: str
    context: str | None
    services: dict[str, ServiceConfig]
    tokenreview_cache_seconds: float = DEFAULT_TOKENREVIEW_CACHE_SECONDS


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen must be host:port, not {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def config_from_dict(raw: Mapping, base_dir: str = ".") -> Config:
    """Validate a configuration mapping; relative paths are resolved against ``base_dir``.

    Keys: listen, tls_cert, tls_key, signing_cert, signing_key, token_ttl_seconds, kubeconfig,
    context, services {name: {issuer, namespace_from: repository | namespace: <ns>}},
    tokenreview_cache_seconds (optional, default 10).
    """
    def path(key: str) -> str:
        value = raw.get(key)
        if not value or not isinstance(value, str):
            raise ValueError(f"config: {key} is required")
        return value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))

    host, port = parse_listen(str(raw.get("listen", "127.0.0.1:5110")))
    services_raw = raw.get("services")
    if not isinstance(services_raw, Mapping) or not services_raw:
        raise ValueError("config: services must be a non-empty mapping")
    services = {}
    for name, svc in services_raw.items():
        if not isinstance(svc, Mapping):
            raise ValueError(f"config: services.{name} must be a mapping")
        unknown = set(svc) - {"issuer", "namespace_from", "namespace"}
        if unknown:
            raise ValueError(f"config: services.{name}: unknown keys {sorted(unknown)}")
        services[name] = ServiceConfig(name=name, issuer=svc.get("issuer", ""),
                                       namespace_from=svc.get("namespace_from"),
                                       namespace=svc.get("namespace"))
    ttl = int(raw.get("token_ttl_seconds", DEFAULT_TTL_SECONDS))
    if not 60 <= ttl <= 86400:
        raise ValueError("config: token_ttl_seconds must be between 60 and 86400")
    return Config(
        host=host, port=port,
        tls_cert=path("tls_cert"), tls_key=path("tls_key"),
        signing_cert=path("signing_cert"), signing_key=path("signing_key"),
        token_ttl_seconds=ttl,
        kubeconfig=path("kubeconfig"), context=raw.get("context"),
        services=services,
        tokenreview_cache_seconds=float(raw.get("tokenreview_cache_seconds",
                                                DEFAULT_TOKENREVIEW_CACHE_SECONDS)),
    )


def load_config(path: str) -> Config:
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    return config_from_dict(raw, base_dir=os.path.dirname(os.path.abspath(path)))


def load_signer(cert_path: str, key_path: str):
    """(private_key, x5c) from PEM files; the certificate file may hold a chain, leaf first."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    with open(cert_path, "rb") as fh:
        certs = x509.load_pem_x509_certificates(fh.read())
    with open(key_path, "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{key_path}: RS256 signing needs an RSA key")
    if certs[0].public_key().public_numbers() != key.public_key().public_numbers():
        raise ValueError(f"{cert_path}: the first certificate does not match {key_path}")
    return key, x5c_chain(certs)


# ---------------------------------------------------------------------------------------------
# Request handling (pure given a reviewer)
# ---------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str, headers=None) -> Response:
    return Response(status, {"errors": [{"code": code, "message": message}]}, headers or {})


class TokenIssuer:
    """Turns a token request into a Response. ``reviewer`` has ``authenticate(token)`` ->
    ReviewedUser | None and ``allowed(user, resource_attributes)`` -> bool (both may raise
    ReviewError)."""

    def __init__(self, services: Mapping[str, ServiceConfig], private_key, x5c: Sequence[str],
                 reviewer, ttl: int = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.time,
                 realm_name: str = "segmented-registry"):
        self.services = dict(services)
        self.private_key = private_key
        self.x5c = list(x5c)
        self.reviewer = reviewer
        self.ttl = ttl
        self.clock = clock
        self.challenge = {"WWW-Authenticate": f'Basic realm="{realm_name}"'}

    def handle(self, params: Mapping[str, Sequence[str]], authorization: str | None,
               client: str = "-") -> Response:
        service_name = (params.get("service") or [""])[0]
        account = (params.get("account") or [""])[0]
        service = self.services.get(service_name)
        if service is None:
            LOG.info("deny client=%s service=%r: unknown service", client, service_name)
            return _error(400, "UNSUPPORTED", f"unknown service {service_name!r}")
        try:
            scopes = parse_scopes(params.get("scope") or [])
        except ScopeError as exc:
            LOG.info("deny client=%s service=%s: %s", client, service_name, exc)
            return _error(400, "INVALID_SCOPE", str(exc))
        scope_text = " ".join(str(s) for s in scopes) or "-"
        try:
            creds = credentials_from_header(authorization)
        except CredentialError as exc:
            LOG.info("deny client=%s service=%s scopes=%s: %s", client, service_name,
                     scope_text, exc)
            return _error(401, "UNAUTHORIZED", str(exc), self.challenge)
        if creds is None:
            LOG.info("deny client=%s service=%s scopes=%s: anonymous", client, service_name,
                     scope_text)
            return _error(401, "UNAUTHORIZED", "authentication required", self.challenge)
        basic_user, secret = creds
        try:
            user = self.reviewer.authenticate(secret)
            if user is None:
                LOG.info("deny client=%s service=%s account=%r scopes=%s: token not "
                         "authenticated", client, service_name, basic_user or account,
                         scope_text)
                return _error(401, "UNAUTHORIZED", "invalid credentials", self.challenge)
            access = decide_access(scopes, service,
                                   lambda attrs: self.reviewer.allowed(user, attrs))
        except ReviewError as exc:
            LOG.warning("error client=%s service=%s scopes=%s: %s", client, service_name,
                        scope_text, exc)
            return _error(503, "UNAVAILABLE", "authorization backend unavailable")
        now = int(self.clock())
        claims = build_claims(issuer=service.issuer, subject=user.username,
                              audience=service.name, access=access, now=now, ttl=self.ttl,
                              jti=secrets.token_hex(16))
        token = sign_jwt(claims, self.private_key, self.x5c)
        granted = " ".join(f"{a['type']}:{a['name']}:{','.join(a['actions'])}"
                           for a in access) or "-"
        LOG.info("issue client=%s service=%s user=%s requested=%s granted=%s", client,
                 service_name, user.username, scope_text, granted)
        return Response(200, {"token": token, "access_token": token,
                              "expires_in": self.ttl, "issued_at": rfc3339(now)})


# ---------------------------------------------------------------------------------------------
# HTTP + TLS (I/O)
# ---------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server_version = "segmented-tokenserver/1"
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, fmt, *args):  # the request line carries no secrets, keep it quiet
        LOG.debug("%s %s", self.client_address[0], fmt % args)

    def _send(self, resp: Response) -> None:
        payload = json.dumps(resp.body).encode("utf-8")
        self.send_response(resp.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def do_GET(self):  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        if url.path == HEALTH_PATH:
            return self._send(Response(200, {"status": "ok"}))
        if url.path != TOKEN_PATH:
            return self._send(_error(404, "NOT_FOUND", "not found"))
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        self._send(self.server.issuer.handle(params, self.headers.get("Authorization"),
                                             self.client_address[0]))

    def do_POST(self):  # noqa: N802
        """OAuth2 password grant (docker's ``POST /token``): form fields ``grant_type=password``,
        ``username``, ``password``, ``service``, ``scope`` (space separated)."""
        url = urllib.parse.urlsplit(self.path)
        if url.path != TOKEN_PATH:
            self.close_connection = True  # the unread body must not be parsed as a request
            return self._send(_error(404, "NOT_FOUND", "not found"))
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= 65536:
            self.close_connection = True
            return self._send(_error(400, "INVALID_REQUEST", "bad Content-Length"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"),
                                     keep_blank_values=True)
        if (form.get("grant_type") or [""])[0] != "password":
            return self._send(_error(400, "UNSUPPORTED", "only grant_type=password is supported"))
        user = (form.get("username") or [""])[0]
        password = (form.get("password") or [""])[0]
        auth = None
        if password:
            auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        params = {"service": form.get("service") or [""], "scope": form.get("scope") or [],
                  "account": [user]}
        self._send(self.server.issuer.handle(params, auth, self.client_address[0]))

    do_HEAD = do_GET  # noqa: N815


class TokenHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does the TLS handshake in the request thread, so one slow
    client cannot stall accept()."""

    daemon_threads = True

    def __init__(self, address, issuer: TokenIssuer, ssl_context: ssl.SSLContext | None):
        self.issuer = issuer
        self.ssl_context = ssl_context
        super().__init__(address, _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(_Handler.timeout)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                LOG.debug("TLS handshake with %s failed: %s", client_address[0], exc)
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout)):
            LOG.debug("connection from %s: %s", client_address[0], exc)
            return
        LOG.exception("error while serving %s", client_address[0])


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def build_server(config: Config, reviewer=None) -> TokenHTTPServer:
    """A ready (bound, not yet serving) server. ``reviewer`` defaults to a KubeReviewer from the
    config's kubeconfig and context; pass another for tests."""
    private_key, x5c = load_signer(config.signing_cert, config.signing_key)
    if reviewer is None:
        reviewer = KubeReviewer(config.kubeconfig, config.context,
                                config.tokenreview_cache_seconds)
    issuer = TokenIssuer(config.services, private_key, x5c, reviewer,
                         ttl=config.token_ttl_seconds)
    return TokenHTTPServer((config.host, config.port), issuer,
                           server_ssl_context(config.tls_cert, config.tls_key))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--config", required=True, help="JSON configuration file")
    parser.add_argument("--log-level", default=os.environ.get("TOKENSERVER_LOG_LEVEL", "INFO"))
    parser.add_argument("--check", action="store_true",
                        help="validate the configuration and signing key, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load_config(args.config)
        if args.check:
            load_signer(config.signing_cert, config.signing_key)
            print("configuration ok")
            return 0
        server = build_server(config)
    except (OSError, ValueError) as exc:
        LOG.error("cannot start: %s", exc)
        return 2

    def _stop(signum, _frame):
        LOG.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    host, port = server.server_address[:2]
    LOG.info("listening on https://%s:%d%s services=%s", host, port, TOKEN_PATH,
             ",".join(sorted(config.services)))
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
