# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""HTTP pieces of the OCI registry client (no registry state): the auth challenge, pagination
links, a Retry-After header, token scopes, a block-wise upload body, large-block connections, one
HEAD answer read off a raw connection, and the counters a run shares."""

from __future__ import annotations

import email.utils
import re
import threading
import time
from typing import Any, BinaryIO, Callable, Iterable, TYPE_CHECKING

try:
    from requests.adapters import HTTPAdapter
except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
    HTTPAdapter = object  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    import requests

BLOCK_SIZE = 256 * 1024
#: The longest pause a server's Retry-After (429, 503) gets before a retry; one that asks for
#: more fails the request at once, with the pause it asked for in the error (``pause_asked``).
RETRY_AFTER_CAP = 60


def parse_challenge(header: str | None) -> tuple[str | None, dict[str, str]]:
    """``(scheme, {param: value})`` of a ``WWW-Authenticate`` header, like
    ``Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull"``."""
    if not header:
        return None, {}
    scheme, _sep, rest = header.strip().partition(" ")
    params = {}
    for match in re.finditer(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = value.replace('\\"', '"')
    return scheme.lower(), params


def next_link(header: str | None) -> str | None:
    """The target of ``Link: <url>; rel="next"``, or None."""
    for part in (header or "").split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if match:
            return match.group(1)
    return None


def retry_after(header: str | None, now: Callable[[], float] = time.time) -> int | None:
    """Seconds a ``Retry-After`` header asks the client to wait (delay-seconds, or an HTTP date:
    the seconds until then, 0 when it has passed), or None when there is none or it is not one of
    the two forms (RFC 9110, 10.2.3)."""
    value = (header or "").strip()
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:  # an HTTP date is always GMT; anything else is not one
        return None
    return max(0, int(round(when.timestamp() - now())))


def pause_asked(response: requests.Response) -> str:
    """What an error message adds for an answer whose Retry-After asked for a pause: ``""``, or
    ``"; it asked to wait N s (Retry-After)"`` and, beyond ``RETRY_AFTER_CAP``, that a job does
    not wait that long."""
    asked = retry_after(response.headers.get("Retry-After"))
    if asked is None or response.status_code not in (429, 503):
        return ""
    text = f"; it asked to wait {asked} s (Retry-After)"
    if asked > RETRY_AFTER_CAP:
        text += f", longer than the {RETRY_AFTER_CAP} s a promotion job waits: run the job again later"
    return text


def scope(repository: str, actions: str) -> str:
    """The token scope of ``actions`` (``pull``, ``pull,push``, ``delete``) on a repository."""
    return f"repository:{repository}:{actions}"


def access(scopes: Iterable[str]) -> dict[str, set[str]]:
    """``{"repository:a/b": {"pull", "push"}}`` from scope strings (type:name:actions)."""
    access: dict[str, set[str]] = {}
    for item in scopes:
        resource, _sep, actions = item.rpartition(":")
        access.setdefault(resource, set()).update(actions.split(","))
    return access


class StreamReader:
    """A file-like view of a source blob response for an upload body.

    ``requests`` sends an object with ``read`` and ``__len__`` as a body of that
    Content-Length, ``read(blocksize)`` at a time, so the blob goes from the source socket to the
    destination socket a block at a time. Counts the bytes and checks the total at the end.
    """

    def __init__(self, raw: BinaryIO, size: int) -> None:
        self._raw = raw
        self._size = size
        self.sent = 0

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int | None = -1) -> bytes:
        """Up to ``amount`` bytes (a few blocks at most) of the source; b\"\" at the end."""
        if amount is None or amount < 0:
            amount = self._size - self.sent
        amount = min(amount, self._size - self.sent, BLOCK_SIZE * 4)
        if amount <= 0:
            return b""
        data = self._raw.read(amount)
        if not data:
            raise OSError(f"the source ended after {self.sent} of {self._size} bytes")
        self.sent += len(data)
        return data


class BlockAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections write upload bodies in large blocks."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """urllib3's pool manager, with large blocks where urllib3 has them."""
        kwargs.setdefault("blocksize", BLOCK_SIZE)
        try:
            super().init_poolmanager(*args, **kwargs)
        except TypeError:  # urllib3 < 2 has no blocksize
            kwargs.pop("blocksize", None)
            super().init_poolmanager(*args, **kwargs)


class Stats:
    """Thread-safe counters shared by the clients of one run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.by_method: dict[str, int] = {}
        self.token_requests = 0
        self.retries = 0
        self.blob_bytes_sent = 0

    def count(self, method: str) -> None:
        """One request of ``method``."""
        with self._lock:
            self.requests += 1
            self.by_method[method] = self.by_method.get(method, 0) + 1

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def to_dict(self) -> dict[str, Any]:
        """The counters, as a run reports them."""
        with self._lock:
            return {
                "requests": self.requests,
                "by_method": dict(self.by_method),
                "token_requests": self.token_requests,
                "retries": self.retries,
                "blob_bytes_sent": self.blob_bytes_sent,
            }


def read_head(reader: BinaryIO) -> tuple[int, dict[str, str]]:
    """``(status, {lower-case header: value})`` of one answer to a HEAD (which has no body)."""
    line = reader.readline(65537)
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.1 answer: {line[:80]!r}")
    headers: dict[str, str] = {}
    while True:
        line = reader.readline(65537)
        if line in (b"\r\n", b"\n"):
            return int(parts[1]), headers
        if not line:
            raise ValueError("the connection closed inside an answer")
        name, _sep, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
