# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Errors of the OCI registry client: what failed, where, with which HTTP status."""

from ansible_collections.segmented.registry.plugins.module_utils.errors import OciError


class RegistryError(OciError):
    """A registry operation failed. ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message, registry=None, repository=None, status=None, code=None):
        super().__init__(message)
        self.registry = registry
        self.repository = repository
        self.status = status
        self.code = code


class SourceMoved(RegistryError):
    """The source serves another digest than the planned one."""


def error_detail(response):
    """``CODE: message`` from a distribution error body, or a short text."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    if errors:
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    text = (response.text or "").strip() if response.request.method != "HEAD" else ""
    return text[:200]


def error_code(response):
    try:
        errors = response.json().get("errors") or []
        return errors[0].get("code") if errors else None
    except (ValueError, AttributeError, IndexError):
        return None


def first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
