# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""``kubernetes.io/dockerconfigjson`` data (pure: no I/O).

The format kubelets, CRI-O and builds read: ``{"auths": {"<host[:port]>": {"username", "password",
"auth": base64("username:password")}}}``, stored base64-encoded under the Secret key
``.dockerconfigjson``. ``build`` writes one canonical form (sorted keys, no spaces), so the same
credentials always give the same bytes and an unchanged Secret is never rewritten.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Iterable

from ansible_collections.segmented.registry.plugins.module_utils.errors import CredentialsError

#: The Secret type and its one data key.
SECRET_TYPE = "kubernetes.io/dockerconfigjson"
DATA_KEY = ".dockerconfigjson"


class DockerConfigError(CredentialsError, ValueError):
    """The data is not a dockerconfigjson document; the message says what is wrong (never a secret)."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def entry(username: str, password: str) -> dict[str, str]:
    """One registry's entry, with ``auth`` as clients expect it."""
    if not username or ":" in username:
        raise DockerConfigError("the user name must be non-empty and without ':'")
    if not password:
        raise DockerConfigError("the password is empty")
    return {"username": username, "password": password, "auth": _b64(f"{username}:{password}")}


def dumps(auths: dict[str, Any]) -> str:
    """The canonical JSON text of ``{"auths": auths}``."""
    return json.dumps({"auths": auths}, sort_keys=True, separators=(",", ":"))


def build(credentials: dict[str, tuple[str, str]]) -> str:
    """The canonical text for ``{registry: (username, password)}``."""
    return dumps({registry: entry(user, password) for registry, (user, password) in credentials.items()})


def parse(text: str | None) -> dict[str, dict[str, str | None]]:
    """``{registry: {"username", "password"}}`` from a dockerconfigjson text (``auth`` alone is
    understood too). Raises ``DockerConfigError``."""
    if text is None:
        raise DockerConfigError("it is not JSON")
    try:
        document = json.loads(text)
    except (TypeError, ValueError):
        raise DockerConfigError("it is not JSON")
    auths = document.get("auths") if isinstance(document, dict) else None
    if not isinstance(auths, dict):
        raise DockerConfigError('it has no "auths" object')
    result = {}
    for registry, item in auths.items():
        if not isinstance(item, dict):
            raise DockerConfigError(f"the entry of {registry} is not an object")
        username, password = item.get("username"), item.get("password")
        if (not username or not password) and item.get("auth"):
            try:
                username, _sep, password = base64.b64decode(item["auth"], validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise DockerConfigError(f"the auth of {registry} is not base64 of user:password")
        result[registry] = {"username": username, "password": password}
    return result


def merge(text: str | None, credentials: dict[str, tuple[str, str]], remove: Iterable[str] = ()) -> str:
    """``text`` (a dockerconfigjson document, or None) with the entries of ``credentials``
    (``{registry: (username, password)}``) set and the registries of ``remove`` dropped; every
    other entry is kept as it is."""
    auths = {}
    if text:
        try:
            document = json.loads(text)
        except (TypeError, ValueError):
            raise DockerConfigError("it is not JSON")
        if not isinstance(document, dict) or not isinstance(document.get("auths"), dict):
            raise DockerConfigError('it has no "auths" object')
        auths = dict(document["auths"])
    for registry in remove:
        auths.pop(registry, None)
    for registry, (user, password) in credentials.items():
        auths[registry] = entry(user, password)
    return dumps(auths)


def secret_data(text: str) -> dict[str, str]:
    """The ``data`` of a Secret holding ``text``."""
    return {DATA_KEY: _b64(text)}


def from_secret_data(data: dict[str, str] | None) -> str | None:
    """The dockerconfigjson text inside a Secret's ``data`` (None when it has none)."""
    value = (data or {}).get(DATA_KEY)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise DockerConfigError(f"{DATA_KEY} is not base64")


def secret_forms(username: str, password: str, registry: str | None = None) -> list[str]:
    """Every form in which ``password`` could show up once it is in a Secret: itself, its base64,
    the base64 of ``username:password`` and, given the ``registry`` of its entry, the Secret's
    dockerconfigjson text (``build``) and its base64 (the Secret's ``data``).
    A module masks them all (no_log values)."""
    forms = [password, _b64(password), _b64(f"{username}:{password}")]
    if registry and password:
        text = build({registry: (username, password)})
        forms += [text, _b64(text)]
    return [form for form in forms if form]
