# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""How a ``RegistryClient`` authenticates: the registry's ``WWW-Authenticate`` challenge (once per
client), ``Basic`` credentials, or ``Bearer`` tokens from the challenge's realm, kept by scope in
``tokens.TokenCache``. Many repositories share one token request (``prefetch_tokens``); many
requests go under a token of few repositories (``narrow_token``, sized by ``tokens.token_groups``).
A client has one (``RegistryClient.auth``); the token request takes the client's one retry path
(``RegistryClient._raw``). The credentials go only to a realm ``check_realm`` accepts, checked on
every token request (a later challenge may move the realm)."""

from __future__ import annotations

import base64
import time
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

try:
    import requests
except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
    pass

from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError, error_detail
from ansible_collections.segmented.registry.plugins.module_utils.oci.tokens import TokenCache
from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import Stats, pause_asked, parse_challenge, scope

TOKEN_MARGIN_SECONDS = 30
DEFAULT_TOKEN_SECONDS = 60  # the token specification's default when expires_in is absent
#: Scopes per token request in prefetch_tokens (each scope adds to the JWT's size).
SCOPES_PER_TOKEN = 40
#: Requests one token should go with when many requests are sent (``narrow_token``): each scope
#: adds about 100 bytes to every request's Authorization header, against one more token request
#: (measured on the lab: a 20-scope token made each manifest HEAD about 14 % dearer than a token of
#: one scope, and a token request cost as much as 6 to 9 HEADs; 200 read 10,000 tags about 10 %
#: faster than tokens of 40 repositories, and 1,000 tags as fast).
REQUESTS_PER_TOKEN = 200


def check_realm(registry: str, realm: str, scheme: str = "https", allowed: Iterable[str] = ()) -> None:
    """Refuse (``RegistryError``) a token realm the credentials of ``registry`` (``host[:port]``,
    reached over ``scheme``) must not be sent to: one on another host than the registry's (any port
    of its own host is fine) unless that host is in ``allowed`` (the option ``token_realm_hosts``),
    and any realm over plain HTTP but the registry's own host when the registry itself is plain HTTP."""
    own = (urlsplit(f"//{registry}").hostname or "").lower()
    parts = urlsplit(realm)
    host = (parts.hostname or "").lower()
    where = f"registry {registry}: the token realm {realm}"
    if parts.scheme not in ("https", "http") or not host:
        raise RegistryError(
            f"{where} is not an http(s) URL with a host; the registry's challenge (WWW-Authenticate) must name its token server", registry=registry
        )
    if parts.scheme == "http" and (scheme != "http" or host != own):
        raise RegistryError(
            f"{where} is plain HTTP: the registry credentials are sent to a token realm only over "
            "HTTPS (or over HTTP to the registry's own host when the registry itself is plain HTTP); "
            "configure the token server's realm as https://",
            registry=registry,
        )
    if host != own and host not in {name.lower() for name in allowed}:
        raise RegistryError(
            f"{where} is on host {host}, not on the registry's host {own}: the registry credentials "
            f"are not sent there; if {host} is the token server of {own}, add {host} to the option "
            "token_realm_hosts (inventory: segmented_registry_token_realm_hosts)",
            registry=registry,
        )


class Authentication:
    """The authentication of one ``RegistryClient``: its credentials, the registry's challenge and
    the tokens it was given. The client hands it what it needs of the client and nothing more:
    ``send`` (the client's one retry path, ``RegistryClient._raw``), ``where`` and ``error`` (its
    messages) and ``stats`` (its counters)."""

    def __init__(
        self,
        host: str,
        scheme: str,
        send: Callable[..., Any],
        where: Callable[..., str],
        error: Callable[..., RegistryError],
        stats: Stats,
        username: str | None = None,
        password: str | None = None,
        realm_hosts: Iterable[str] = (),
    ) -> None:
        self.host = host
        self.scheme = scheme
        self.realm_hosts = tuple(realm_hosts)
        self.tokens = TokenCache()
        self._send = send
        self._where = where
        self._error = error
        self._stats = stats
        self._username = username or "segmented-registry"
        self._password = password
        self._challenge: tuple[str | None, dict[str, str]] | None = None  # (scheme, params) once known

    def __repr__(self) -> str:  # never the credentials
        return f"Authentication({self.host!r})"

    def _basic(self) -> str:
        pair = f"{self._username}:{self._password or ''}".encode("utf-8")
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def challenge(self) -> tuple[str | None, dict[str, str]]:
        """The registry's challenge (scheme, params), from ``GET /v2/`` once per client."""
        if self._challenge is None:
            response = self._send("GET", f"{self.scheme}://{self.host}/v2/", "reaching the registry (GET /v2/)", None, {}, retry=True)
            response.close()
            if response.status_code == 401:
                self._challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            elif response.status_code == 200:
                self._challenge = (None, {})
            else:
                raise self._error("checking the API version (GET /v2/)", response=response)
        return self._challenge

    def follow(self, scheme: str | None, params: dict[str, str]) -> None:
        """A later 401's challenge: a Bearer one's realm and service replace those of the first
        (the next token request checks the realm again, ``check_realm``)."""
        if scheme == "bearer":
            self._challenge = (scheme, dict(self.challenge()[1], **{key: value for key, value in params.items() if key in ("realm", "service")}))

    def _fetch_token(self, scopes: Sequence[str], repository: str | None = None) -> str:
        scheme, params = self.challenge()
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self._where(repository)}: the Bearer challenge names no realm", registry=self.host, repository=repository)
        check_realm(self.host, realm, self.scheme, self.realm_hosts)
        query = [("service", params["service"])] if params.get("service") else []
        query.extend(("scope", scope) for scope in sorted(scopes))
        url = requests.Request("GET", realm, params=query).prepare().url
        headers = {"Authorization": self._basic()} if self._password else {}
        self._stats.add("token_requests")
        # the one retry path of every request (connection errors, timeouts, 429, 5xx; TLS hint)
        response = self._send("GET", url, f"token request to {realm}", repository, headers)
        response.close()
        if response.status_code != 200:
            detail = error_detail(response)
            hint = ""
            if response.status_code == 401:
                hint = "; the token server did not accept the credentials (an expired or wrong token?)"
            raise RegistryError(
                "{}: the token server {} answered HTTP {}{}{}{}".format(
                    self._where(repository),
                    realm,
                    response.status_code,
                    f" after {response.attempts} attempts" if response.attempts > 1 else "",
                    f" ({detail})" if detail else "",
                    hint + pause_asked(response),
                ),
                registry=self.host,
                repository=repository,
                status=response.status_code,
            )
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
            lifetime = int(body.get("expires_in") or DEFAULT_TOKEN_SECONDS)
        except (ValueError, AttributeError, TypeError):
            token = None
        if not token:
            raise RegistryError(f"{self._where(repository)}: the token server {realm} answered without a token", registry=self.host, repository=repository)
        expires = time.monotonic() + max(1, lifetime - TOKEN_MARGIN_SECONDS)
        self.tokens.add(scopes, token, expires)
        return token

    def authorization(self, scopes: Sequence[str], repository: str | None = None, refresh: bool = False) -> str | None:
        """The ``Authorization`` header of a request with these scopes (None when the registry asks
        for none); ``refresh`` fetches a new token even when one is cached (after a 401)."""
        scheme = self.challenge()[0]
        if scheme == "basic":
            return self._basic()
        if scheme != "bearer":
            return None
        if refresh:
            return "Bearer " + self._fetch_token(scopes, repository)
        return "Bearer " + self.tokens.get(scopes, lambda: self._fetch_token(scopes, repository))

    def prefetch_tokens(self, repositories: Iterable[str], actions: str = "pull") -> None:
        """Fetch the tokens of many repositories with few token requests (up to
        SCOPES_PER_TOKEN scopes each); each repository's scope is then served from the cache."""
        if self.challenge()[0] != "bearer":
            return
        wanted = [repo for repo in sorted(set(repositories)) if self.tokens.cached([scope(repo, actions)]) is None]
        for start in range(0, len(wanted), SCOPES_PER_TOKEN):
            self.narrow_token(wanted[start : start + SCOPES_PER_TOKEN], actions)

    def narrow_token(self, repositories: Iterable[str], actions: str = "pull") -> None:
        """Make sure a live token of at most these repositories is cached (``prefetch_tokens``'
        requests; a group of ``token_groups``), so that their requests carry no more scopes than
        that; fetched once, however many threads ask."""
        if self.challenge()[0] != "bearer":
            return
        names = sorted(set(repositories))
        scopes = [scope(repo, actions) for repo in names]
        named = names[0] if len(names) == 1 else None
        self.tokens.get(scopes, lambda: self._fetch_token(scopes, named), most=len(scopes))
