# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Pipelined manifest HEADs: up to PIPELINE_DEPTH requests written at once on one HTTP/1.1
connection of a ``RegistryClient`` (which keeps the idle connections and the TLS context), and
their answers read in order."""

from __future__ import annotations

import os
import socket
import ssl
from typing import TYPE_CHECKING, Any, BinaryIO, Sequence

try:
    import requests
except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
    pass

from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import ACCEPT, is_digest
from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import (
    RETRY_AFTER_CAP,
    read_head,
    retry_after,
    scope,
)

if TYPE_CHECKING:  # the client imports this module
    from ansible_collections.segmented.registry.plugins.module_utils.oci.client import RegistryClient

#: HEADs written back to back on one connection before the first answer is read.
PIPELINE_DEPTH = 32


def pipelined_heads(client: RegistryClient, repository: str, references: Sequence[str]) -> tuple[dict[str, dict[str, Any] | None], int | None]:
    """``({reference: head or None}, pause)``: the leading references that got a 200 (with a
    digest) or a 404 on one connection; it stops at the first other answer, and ``pause`` is the
    seconds that answer's Retry-After asked for (429, 503), or None."""
    auth = client.auth.authorization([scope(repository, "pull")], repository)
    head = "Host: {}\r\nUser-Agent: {}\r\nAccept: {}\r\n{}\r\n".format(
        client.host, client.session.headers["User-Agent"], ACCEPT, f"Authorization: {auth}\r\n" if auth else ""
    )
    payload = "".join(f"HEAD /v2/{repository}/manifests/{reference} HTTP/1.1\r\n{head}" for reference in references).encode("utf-8")
    answered: dict[str, dict[str, Any] | None] = {}
    pause = None
    connection = None
    try:
        connection = _connection(client)
        sock, reader = connection
        for _reference in references:
            client.stats.count("HEAD")
        sock.sendall(payload)
        for reference in references:
            status, headers = read_head(reader)
            digest = headers.get("docker-content-digest")
            if status == 404:
                answered[reference] = None
            elif status == 200 and is_digest(digest):
                answered[reference] = {
                    "digest": digest,
                    "media_type": headers.get("content-type", "").split(";")[0],
                    "size": int(headers.get("content-length") or 0),
                }
            else:
                if status in (429, 503):
                    pause = retry_after(headers.get("retry-after"))
                break
            if headers.get("connection", "").lower() == "close":
                break
        else:
            with client._lock:
                client._idle.append(connection)
            connection = None
    except (OSError, ssl.SSLError, ValueError):
        pass  # whatever was not answered goes one by one, through the retrying path
    finally:
        if connection is not None:
            connection[0].close()
    return answered, pause


def _connection(client: RegistryClient) -> tuple[socket.socket, BinaryIO]:
    with client._lock:
        if client._idle:
            return client._idle.pop()
    host, _sep, port = client.host.rpartition(":") if ":" in client.host else (client.host, "", "")
    number = int(port) if port else (443 if client._scheme == "https" else 80)
    sock = socket.create_connection((host, number), timeout=client.timeout[0])
    try:
        sock.settimeout(client.timeout[1])
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if client._scheme == "https":
            sock = _tls_context(client).wrap_socket(sock, server_hostname=host)
    except Exception:
        sock.close()
        raise
    return sock, sock.makefile("rb")


def _tls_context(client: RegistryClient) -> ssl.SSLContext:
    with client._lock:
        if client._tls is None:
            if client.verify is False:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            elif client.verify is not True and os.path.isdir(client.verify):  # as requests takes a CA directory
                context = ssl.create_default_context(capath=client.verify)
            else:  # as requests verifies: the given CA bundle, else its default bundle
                context = ssl.create_default_context(cafile=client.verify if client.verify is not True else requests.utils.DEFAULT_CA_BUNDLE_PATH)
            context.set_alpn_protocols(["http/1.1"])
            client._tls = context
        return client._tls


def head_manifests(client: RegistryClient, repository: str, references: Sequence[str]) -> list[tuple[str, dict[str, Any] | None]]:
    """``[(reference, head_manifest's answer)]`` for many references of one repository.

    The HEADs are pipelined: up to PIPELINE_DEPTH requests are written at once on one HTTP/1.1
    connection and their answers read in order, so the registry answers them back to back
    instead of one round trip (and one trip through ``requests``) each. An answer other than
    200 with a digest or 404 (a 401 for an expired token, 429, 5xx), a connection that closes,
    or a proxy in the way: those references are asked again one by one with ``client.head_manifest``,
    which authenticates, retries and reports errors as every request does; after the pause a
    Retry-After asked for, when it is one a job waits (``RETRY_AFTER_CAP``)."""
    found = {}
    pending = list(references)
    proxied = client.session.proxies.get(client._scheme) or client.session.proxies.get("all")
    while pending and not proxied:
        answered, pause = pipelined_heads(client, repository, pending[:PIPELINE_DEPTH])
        found.update(answered)
        if len(answered) < min(len(pending), PIPELINE_DEPTH):
            if pause is not None and pause <= RETRY_AFTER_CAP:
                client._sleep(pause)
            break  # the connection ended early or answered otherwise: the rest one by one
        pending = pending[PIPELINE_DEPTH:]
    for reference in references:
        if reference not in found:
            found[reference] = client.head_manifest(repository, reference)
    return [(reference, found[reference]) for reference in references]
