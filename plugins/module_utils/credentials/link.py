# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""A Secret in a ServiceAccount's lists (pure: no I/O).

``imagePullSecrets`` (kubelets pull with it: ``oc secrets link SA SECRET --for=pull``) and
``secrets`` (builds push with it: ``--for=mount``) hold ``{"name": ...}`` entries. Adding or
removing ours never reorders, rewrites or drops another entry; a JSON patch carries a ``test`` of
the list it was computed from, so a concurrent edit makes the API server refuse it (422) instead
of being overwritten.
"""

from __future__ import annotations

from typing import Any, Iterable

#: What the secret is linked for -> the ServiceAccount field.
FIELDS = {"pull": "imagePullSecrets", "push": "secrets"}


def field_for(purpose: str) -> str:
    """The ServiceAccount field a Secret is linked in for ``purpose`` (pull or push)."""
    return FIELDS[purpose]


def names(entries: Iterable[Any] | None) -> list[str | None]:
    """The names of a list of ``{"name": ...}`` entries (anything else skipped)."""
    return [item.get("name") for item in entries or () if isinstance(item, dict)]


def linked(service_account: dict, field: str, secret: str) -> bool:
    """Whether ``secret`` is in ``field`` of ``service_account`` (a dict as the API returns it)."""
    return secret in names(service_account.get(field))


def with_secret(entries: Iterable[Any] | None, secret: str) -> list[Any] | None:
    """``entries`` with ``{"name": secret}`` appended, or None when it is there already."""
    items = list(entries or ())
    if secret in names(items):
        return None
    return items + [{"name": secret}]


def without_secret(entries: Iterable[Any] | None, secret: str) -> list[Any] | None:
    """``entries`` without ``secret``'s entries, or None when it is not there."""
    items = list(entries or ())
    if secret not in names(items):
        return None
    return [item for item in items if not (isinstance(item, dict) and item.get("name") == secret)]


def patch(service_account: dict, field: str, secret: str, present: bool = True) -> list[dict[str, Any]] | None:
    """The JSON patch that links (``present``) or unlinks ``secret``, or None when nothing changes.

    With the field there: ``test`` the list as read, then ``replace`` it. Without it: ``test`` the
    resourceVersion read, then ``add`` the field."""
    current = service_account.get(field)
    new = with_secret(current, secret) if present else without_secret(current, secret)
    if new is None:
        return None
    path = "/" + field
    if current is None:
        version = (service_account.get("metadata") or {}).get("resourceVersion")
        return [{"op": "test", "path": "/metadata/resourceVersion", "value": version}, {"op": "add", "path": path, "value": new}]
    return [{"op": "test", "path": path, "value": current}, {"op": "replace", "path": path, "value": new}]
