# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Errors of the OCI registry client: what failed, where, with which HTTP status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.segmented.registry.plugins.module_utils.errors import OciError

if TYPE_CHECKING:
    import requests


class RegistryError(OciError):
    """A registry operation failed. ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, registry: str | None = None, repository: str | None = None, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.registry = registry
        self.repository = repository
        self.status = status
        self.code = code


class SourceMoved(RegistryError):
    """The source serves another digest than the planned one."""


def error_detail(response: requests.Response) -> str:
    """``CODE: message`` from a distribution error body, or a short text."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    if errors:
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    text = (response.text or "").strip() if response.request.method != "HEAD" else ""
    return text[:200]


def error_code(response: requests.Response) -> str | None:
    """The ``code`` of the first error of a distribution error body, or None."""
    try:
        errors = response.json().get("errors") or []
        return errors[0].get("code") if errors else None
    except (ValueError, AttributeError, IndexError):
        return None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (at most 300 characters), else its class name."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
