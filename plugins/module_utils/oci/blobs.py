# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""A blob streamed from one registry to another, with retries."""

from __future__ import annotations

try:
    import requests
except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
    pass

from ansible_collections.segmented.registry.plugins.module_utils.oci.client import BACKOFF_CAP, RegistryClient
from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError, first_line
from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import StreamReader
from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff


def copy_blob(
    source: RegistryClient,
    source_repository: str,
    destination: RegistryClient,
    repository: str,
    digest: str,
    size: int | None,
    location: str | None = None,
    attempts: int | None = None,
) -> int:
    """Stream one blob from ``source`` to ``destination``; returns the bytes sent.

    The whole transfer (source GET, destination upload) is retried with back-off, at most
    ``attempts`` times (default: the destination's retries + 1), on connection errors, timeouts
    and 5xx; a 4xx answer is not retried. An upload URL given by a refused mount is used for
    the first attempt only."""
    attempts = attempts or destination.retries + 1
    for attempt in range(1, attempts + 1):
        response = None
        reader = None
        try:
            response = source.open_blob(source_repository, digest)
            length = response.headers.get("Content-Length")
            total = size if size is not None else (int(length) if length else None)
            if total is None:
                raise source.error(f"GET blob {source_repository}@{digest}", source_repository, reason="the size is unknown")
            reader = StreamReader(response.raw, total)
            destination.upload_stream(repository, digest, total, reader, location if attempt == 1 else None)
            destination.stats.add("blob_bytes_sent", reader.sent)
            return reader.sent
        except (RegistryError, OSError, requests.RequestException) as exc:
            if reader is not None:
                destination.stats.add("blob_bytes_sent", reader.sent)
            status = getattr(exc, "status", None)
            final = attempt >= attempts or (status is not None and 400 <= status < 500 and status != 429)
            if final:
                if isinstance(exc, RegistryError):
                    raise
                raise RegistryError(
                    "{}: copy of blob {} from {} failed: {}".format(destination._where(repository), digest, source._where(source_repository), first_line(exc)),
                    registry=destination.host,
                    repository=repository,
                )
            destination.stats.add("retries")
            destination._sleep(backoff(attempt, destination.backoff, BACKOFF_CAP))
        finally:
            if response is not None:
                response.close()
    raise RegistryError("unreachable")  # pragma: no cover
