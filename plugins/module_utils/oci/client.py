# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""A client of the OCI distribution API (CNCF distribution, OpenShift's registry, Quay, ...): what
the promotion engine needs, and only that.

One pooled ``requests.Session`` per registry, shared by threads. Authentication follows the
registry's ``WWW-Authenticate`` challenge: ``Basic``, or ``Bearer`` with tokens kept by scope
(``auth.py``, ``tokens.py``). Manifests: HEAD
(many at once pipelined on one connection, ``pipeline.py``), GET, PUT and DELETE by digest, bytes
and media type unchanged. Blobs: HEAD, cross-repository mount, streamed upload (``blobs.py``
copies one between registries a block at a time). Tag listing and catalog, paginated.

TLS is verified with the system trust store or ``ca_cert``; ``validate_certs=False`` is an
explicit opt-out of one endpoint. Requests that can be repeated (token requests included) are
retried a bounded number of times with back-off on connection errors, timeouts, 429 and 5xx; a
``Retry-After`` is honoured (never retried sooner), up to ``RETRY_AFTER_CAP`` seconds.
Errors (``errors.RegistryError``) name the registry, the repository, the operation and the HTTP
status; credentials are only ever sent in ``Authorization`` headers, never in an error or a log.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Sequence

try:
    import requests
except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

from ansible_collections.segmented.registry.plugins.module_utils.oci.auth import Authentication
from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import (
    RegistryError,
    error_code,
    error_detail,
    first_line,
)
from ansible_collections.segmented.registry.plugins.module_utils.oci.pipeline import head_manifests
from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import (
    BlockAdapter,
    Stats,
    RETRY_AFTER_CAP,
    next_link,
    parse_challenge,
    pause_asked,
    retry_after,
    scope,
)
from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import (
    ACCEPT,
    ManifestError,
    is_digest,
    media_type_of,
    sha256_digest,
)

if TYPE_CHECKING:
    import socket
    import ssl

DEFAULT_TIMEOUT = (10.0, 60.0)  # connect, read (seconds)
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
BACKOFF_CAP = 8.0
PAGE_SIZE = 1000


class RegistryClient:
    """One registry (``host[:port]``), shared by the threads of a run.

    ``name`` says which registry this is in messages (an environment name); ``username`` and
    ``password`` are the basic credentials given to the token realm (OpenShift ignores the user
    name and takes an API token as password), only on the registry's own host or one of
    ``token_realm_hosts`` (``auth.check_realm``). ``validate_certs=False`` disables TLS
    verification for this endpoint; otherwise ``ca_cert`` (a PEM file) or the system store.
    Its authentication (challenge, credentials, tokens) is ``auth``, an ``auth.Authentication``.
    """

    def __init__(
        self,
        host: str,
        username: str | None = None,
        password: str | None = None,
        ca_cert: str | None = None,
        validate_certs: bool = True,
        name: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        pool_size: int = 16,
        stats: Stats | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        scheme: str = "https",
        user_agent: str = "segmented.registry",
        token_realm_hosts: Iterable[str] = (),
    ) -> None:
        if not HAS_REQUESTS:
            raise RegistryError("the Python library requests is required")
        self.host = host
        self.name = name or host
        self.base = f"{scheme}://{host}"
        self.verify = False if not validate_certs else (ca_cert or True)
        self.timeout = timeout if isinstance(timeout, tuple) else (min(10.0, float(timeout)), float(timeout))
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.stats = stats or Stats()
        self._sleep = sleep
        self._lock = threading.Lock()
        self.session = requests.Session()
        # Not trust_env: ~/.netrc would replace our Authorization header and REQUESTS_CA_BUNDLE
        # would replace the CA file we were given. Proxies from the environment are kept.
        self.session.trust_env = False
        self.session.proxies = requests.utils.get_environ_proxies(self.base)
        adapter = BlockAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount(self.base + "/", adapter)
        self.session.headers["User-Agent"] = user_agent
        self._scheme = scheme
        self._idle: list[tuple[socket.socket, BinaryIO]] = []  # pipelining connections (sockets with their reader) ready for head_manifests
        self._tls: ssl.SSLContext | None = None  # their TLS context, made once
        self.auth = Authentication(
            host,
            scheme,
            send=self._raw,
            where=self._where,
            error=self.error,
            stats=self.stats,
            username=username,
            password=password,
            realm_hosts=token_realm_hosts,
        )

    def close(self) -> None:
        self.session.close()
        with self._lock:
            idle, self._idle = self._idle, []
        for sock, _reader in idle:
            sock.close()

    def __repr__(self) -> str:  # never the credentials
        return f"RegistryClient({self.host!r}, name={self.name!r})"

    # -- errors ---------------------------------------------------------------------------
    def _where(self, repository: str | None = None) -> str:
        where = f"registry {self.host}"
        if self.name != self.host:
            where += f" ({self.name})"
        if repository:
            where += f", repository {repository}"
        return where

    def error(
        self,
        doing: str,
        repository: str | None = None,
        response: requests.Response | None = None,
        reason: str | None = None,
        cls: type[RegistryError] = RegistryError,
    ) -> RegistryError:
        """The error of ``doing`` (raised by the caller): the registry, repository, HTTP status and
        the registry's own detail, what a 401 or 403 means, and the pause a Retry-After asked for."""
        status = response.status_code if response is not None else None
        text = f"{self._where(repository)}: {doing} failed"
        if response is not None:
            text += f": HTTP {status}"
            detail = error_detail(response)
            if detail:
                text += f" ({detail})"
            attempts = getattr(response, "attempts", 1)
            if attempts > 1:
                text += f" after {attempts} attempts"
            if status == 401:
                text += "; the registry did not accept the token: the credentials were refused or lack the permission for this repository"
            elif status == 403:
                text += "; the credentials lack the permission"
            text += pause_asked(response)
        if reason:
            text += f": {reason}"
        return cls(text, registry=self.host, repository=repository, status=status, code=error_code(response) if response is not None else None)

    # -- requests ---------------------------------------------------------------------------
    def _raw(
        self,
        method: str,
        url: str,
        doing: str,
        repository: str | None,
        headers: dict[str, str],
        data: Any = None,
        stream: bool = False,
        retry: bool = True,
        allow_redirects: bool = False,
    ) -> requests.Response:
        attempts = self.retries + 1 if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                self.stats.count(method)
                response = self.session.request(
                    method, url, headers=headers, data=data, stream=stream, timeout=self.timeout, verify=self.verify, allow_redirects=allow_redirects
                )
            except requests.exceptions.SSLError as exc:
                raise RegistryError(
                    "{}: {} failed: TLS: {}. {}".format(
                        self._where(repository),
                        doing,
                        first_line(exc),
                        "Give the CA bundle that signs the certificate of {} (ca_cert)".format(requests.utils.urlparse(url).netloc)
                        if self.verify
                        else "The TLS handshake failed",
                    ),
                    registry=self.host,
                    repository=repository,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt < attempts:
                    self.stats.add("retries")
                    self._sleep(backoff(attempt, self.backoff, BACKOFF_CAP))
                    continue
                kind = "timed out" if isinstance(exc, requests.Timeout) else "could not connect"
                raise RegistryError(
                    "{}: {} failed: {} ({}) after {} attempt{}".format(
                        self._where(repository), doing, kind, first_line(exc), attempt, "" if attempt == 1 else "s"
                    ),
                    registry=self.host,
                    repository=repository,
                )
            if (response.status_code >= 500 or response.status_code == 429) and attempt < attempts:
                asked = retry_after(response.headers.get("Retry-After"))
                if asked is None or asked <= RETRY_AFTER_CAP:
                    response.close()
                    self.stats.add("retries")
                    # never sooner than the registry asks (429, 503), nor than our own back-off
                    self._sleep(max(asked or 0, backoff(attempt, self.backoff, BACKOFF_CAP)))
                    continue
                # a longer pause than a job waits: its answer is the error (``error`` says so)
            response.attempts = attempt  # type: ignore[attr-defined]  # how many it took (error messages say so)
            return response
        raise RegistryError("unreachable")  # pragma: no cover - the loop always returns or raises

    def request(
        self,
        method: str,
        path: str,
        doing: str,
        repository: str | None = None,
        scopes: Sequence[str] = (),
        headers: dict[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
        retry: bool = True,
        allow_redirects: bool = False,
    ) -> requests.Response:
        """An authenticated request to ``path`` (below the registry, or an absolute URL of it).

        A 401 leads to one fresh token for the scopes the challenge names (plus ``scopes``)."""
        url = path if path.startswith("http") else self.base + path
        auth = self.auth.authorization(scopes, repository) if scopes else None
        base_headers: dict[str, Any] = dict(headers or {})
        if auth:
            base_headers["Authorization"] = auth
        response = self._raw(method, url, doing, repository, base_headers, data=data, stream=stream, retry=retry, allow_redirects=allow_redirects)
        if response.status_code == 401 and not hasattr(data, "read"):
            scheme, params = parse_challenge(response.headers.get("WWW-Authenticate"))
            wanted = set(scopes)
            if params.get("scope"):
                wanted.update(params["scope"].split(" "))
            if scheme in ("bearer", "basic") and wanted:
                response.close()
                self.auth.follow(scheme, params)
                base_headers["Authorization"] = self.auth.authorization(sorted(wanted), repository, refresh=True)
                response = self._raw(method, url, doing, repository, base_headers, data=data, stream=stream, retry=retry, allow_redirects=allow_redirects)
        return response

    # -- tokens -----------------------------------------------------------------------------
    def prefetch_tokens(self, repositories: Iterable[str], actions: str = "pull") -> None:
        """The tokens of many repositories in few token requests (``Authentication.prefetch_tokens``)."""
        self.auth.prefetch_tokens(repositories, actions)

    def narrow_token(self, repositories: Iterable[str], actions: str = "pull") -> None:
        """A live token of at most these repositories (``Authentication.narrow_token``)."""
        self.auth.narrow_token(repositories, actions)

    # -- manifests --------------------------------------------------------------------------
    def head_manifest(self, repository: str, reference: str) -> dict[str, Any] | None:
        """``{"digest", "media_type", "size"}`` of a manifest, or None when it does not exist."""
        doing = f"HEAD manifest {repository}:{reference}"
        response = self.request("HEAD", f"/v2/{repository}/manifests/{reference}", doing, repository, [scope(repository, "pull")], {"Accept": ACCEPT})
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.error(doing, repository, response)
        digest = response.headers.get("Docker-Content-Digest")
        if not is_digest(digest):  # a registry that does not say: read the bytes
            manifest = self.get_manifest(repository, reference)
            return None if manifest is None else {"digest": manifest["digest"], "media_type": manifest["media_type"], "size": len(manifest["data"])}
        return {
            "digest": digest,
            "media_type": (response.headers.get("Content-Type") or "").split(";")[0],
            "size": int(response.headers.get("Content-Length") or 0),
        }

    def head_manifests(self, repository: str, references: Sequence[str]) -> list[tuple[str, dict[str, Any] | None]]:
        """``[(reference, head_manifest's answer)]`` for many references of one repository,
        pipelined on one connection (``pipeline.head_manifests``)."""
        return head_manifests(self, repository, references)

    def get_manifest(self, repository: str, reference: str) -> dict[str, Any] | None:
        """``{"data", "media_type", "digest"}`` (the exact bytes), or None when it does not exist.
        A digest reference is checked against the bytes."""
        doing = f"GET manifest {repository}:{reference}" if not is_digest(reference) else f"GET manifest {repository}@{reference}"
        response = self.request("GET", f"/v2/{repository}/manifests/{reference}", doing, repository, [scope(repository, "pull")], {"Accept": ACCEPT})
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code != 200:
            raise self.error(doing, repository, response)
        data = response.content
        digest = sha256_digest(data)
        if is_digest(reference) and digest != reference:
            raise self.error(doing, repository, reason=f"the bytes served have digest {digest}")
        try:
            media_type = media_type_of(data, response.headers.get("Content-Type"))
        except ManifestError as exc:
            raise self.error(doing, repository, reason=str(exc))
        return {"data": data, "media_type": media_type, "digest": digest}

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """PUT the exact bytes under a tag or digest; returns the digest, checked against the bytes."""
        doing = f"PUT manifest {repository}{'@' if is_digest(reference) else ':'}{reference}"
        response = self.request(
            "PUT", f"/v2/{repository}/manifests/{reference}", doing, repository, [scope(repository, "pull,push")], {"Content-Type": media_type}, data=data
        )
        response.close()
        if response.status_code not in (200, 201, 202):
            raise self.error(doing, repository, response)
        expected = sha256_digest(data)
        served = response.headers.get("Docker-Content-Digest")
        if served and served != expected:
            raise self.error(doing, repository, reason=f"the registry stored digest {served}, not {expected}")
        return expected

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """DELETE a manifest by digest (with every tag pointing at it); False when it was not there."""
        if not is_digest(digest):
            raise RegistryError(
                "{}: refusing to DELETE {}: only digests can be deleted".format(self._where(repository), digest), registry=self.host, repository=repository
            )
        doing = f"DELETE manifest {repository}@{digest}"
        response = self.request("DELETE", f"/v2/{repository}/manifests/{digest}", doing, repository, [scope(repository, "delete")])
        response.close()
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 202):
            raise self.error(doing, repository, response)
        return True

    # -- tags -------------------------------------------------------------------------------
    def list_tags(self, repository: str, page_size: int = PAGE_SIZE) -> list[str]:
        """Every tag of a repository (all pages); [] when the repository does not exist."""
        path: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        tags: list[str] = []
        doing = f"list tags of {repository}"
        while path:
            response = self.request("GET", path, doing, repository, [scope(repository, "pull")], {"Accept": "application/json"})
            if response.status_code == 404:
                response.close()
                return []
            if response.status_code != 200:
                raise self.error(doing, repository, response)
            try:
                tags.extend(response.json().get("tags") or [])
            except ValueError:
                raise self.error(doing, repository, reason="the answer is not JSON")
            link = next_link(response.headers.get("Link"))
            path = None if not link else (link if link.startswith("http") else self.base + link)
        return tags

    def catalog(self, page_size: int = PAGE_SIZE) -> list[str]:
        """Every repository of the registry (all pages)."""
        path: str | None = f"/v2/_catalog?n={page_size}"
        repositories: list[str] = []
        while path:
            response = self.request("GET", path, "list repositories (catalog)", None, ["registry:catalog:*"], {"Accept": "application/json"})
            if response.status_code != 200:
                raise self.error("list repositories (catalog)", None, response)
            repositories.extend(response.json().get("repositories") or [])
            link = next_link(response.headers.get("Link"))
            path = None if not link else (link if link.startswith("http") else self.base + link)
        return repositories

    # -- blobs ------------------------------------------------------------------------------
    def head_blob(self, repository: str, digest: str) -> int | None:
        """The blob's size, or None when the repository does not have it."""
        doing = f"HEAD blob {repository}@{digest}"
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", doing, repository, [scope(repository, "pull")], allow_redirects=True)
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.error(doing, repository, response)
        return int(response.headers.get("Content-Length") or 0)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> tuple[bool, str | None]:
        """Cross-repository mount. Returns ``(True, None)`` when mounted, else ``(False,
        upload_url)``: the registry opened an upload session instead (mount refused)."""
        doing = f"mount blob {digest} from {from_repository} into {repository}"
        response = self.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/?mount={digest}&from={from_repository}",
            doing,
            repository,
            [scope(repository, "pull,push"), scope(from_repository, "pull")],
            {"Content-Length": "0"},
        )
        response.close()
        if response.status_code == 201:
            return True, None
        if response.status_code == 202:
            return False, self._location(response, doing, repository)
        raise self.error(doing, repository, response)

    def start_upload(self, repository: str) -> str:
        """Open a blob upload session; returns its URL."""
        doing = f"start a blob upload to {repository}"
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/", doing, repository, [scope(repository, "pull,push")], {"Content-Length": "0"})
        response.close()
        if response.status_code != 202:
            raise self.error(doing, repository, response)
        return self._location(response, doing, repository)

    def _location(self, response: requests.Response, doing: str, repository: str) -> str:
        location = response.headers.get("Location")
        if not location:
            raise self.error(doing, repository, response, reason="no Location header")
        return location if location.startswith("http") else self.base + location

    def open_blob(self, repository: str, digest: str) -> requests.Response:
        """The source side of a copy: a streamed GET response (the caller closes it)."""
        doing = f"GET blob {repository}@{digest}"
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}", doing, repository, [scope(repository, "pull")], stream=True, allow_redirects=True)
        if response.status_code != 200:
            response.close()
            raise self.error(doing, repository, response)
        return response

    def upload_stream(self, repository: str, digest: str, size: int, reader: Any, location: str | None = None) -> None:
        """Stream ``reader`` (``read(n)``, ``len``) into a new blob: one PATCH, then the PUT that
        commits ``digest`` (the registry checks the digest of what it received). Not retried:
        the caller retries the whole blob with a fresh source stream."""
        location = location or self.start_upload(repository)
        doing = f"upload blob {digest} to {repository}"
        headers = {"Content-Type": "application/octet-stream"}
        body = reader if size else b""
        response = self.request("PATCH", location, doing, repository, [scope(repository, "pull,push")], headers, data=body, retry=False)
        response.close()
        if response.status_code != 202:
            raise self.error(doing, repository, response)
        location = self._location(response, doing, repository)
        separator = "&" if "?" in location else "?"
        response = self.request(
            "PUT", f"{location}{separator}digest={digest}", doing, repository, [scope(repository, "pull,push")], {"Content-Length": "0"}, data=b"", retry=False
        )
        response.close()
        if response.status_code != 201:
            raise self.error(doing, repository, response)

    def upload_bytes(self, repository: str, digest: str, data: bytes) -> None:
        """A small blob from memory (monolithic POST + PUT); used for the empty config."""
        location = self.start_upload(repository)
        separator = "&" if "?" in location else "?"
        doing = f"upload blob {digest} to {repository}"
        response = self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            doing,
            repository,
            [scope(repository, "pull,push")],
            {"Content-Type": "application/octet-stream"},
            data=data,
            retry=False,
        )
        response.close()
        if response.status_code != 201:
            raise self.error(doing, repository, response)
