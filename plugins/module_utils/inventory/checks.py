# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Small checks of inventory values and the wording of their problems (pure)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import INVENTORY_VARS
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_subdomain
from ansible_collections.segmented.registry.plugins.module_utils.text import show

_IPV4 = re.compile(r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$")
_IPV6_BRACKETED = re.compile(r"^\[[0-9A-Fa-f:.]+\]$")
# A Kubernetes resource.Quantity without a sign (a storage size is never negative).
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)?$")
# S3 bucket names (the general-purpose bucket rules): 3 to 63 lowercase letters, digits, '.' and
# '-', starting and ending with a letter or digit.
_S3_BUCKET_CHARACTERS = re.compile(r"^[a-z0-9.-]*$")
_S3_BUCKET_ENDS = re.compile(r"^[a-z0-9](.*[a-z0-9])?$")
_URL_SCHEMES = ("http://", "https://")
_TRUE_STRINGS = ("yes", "on", "1", "true", "y", "t")
_FALSE_STRINGS = ("no", "off", "0", "false", "n", "f")


def is_quantity(value: Any) -> bool:
    """A positive Kubernetes quantity such as ``100Gi`` or ``500M``."""
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    return match is not None and float(match.group("number")) > 0


def split_host_port(value: Any) -> tuple[str, Optional[int]]:
    """Split ``host[:port]``; returns ``(host, port or None)`` or raises ValueError with the reason."""
    if not isinstance(value, str) or not value:
        raise ValueError("it must be a non-empty string like registry.example.com or registry.example.com:5000")
    if "://" in value:
        raise ValueError("drop the scheme: give host[:port] only, like registry.example.com:5000")
    if "/" in value:
        raise ValueError("give host[:port] only, without a path")
    host, port_text = value, None
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            raise ValueError("an IPv6 address must be written in brackets, like [fd00::1]:5000")
        host, rest = value[: close + 1], value[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("expected :port after the bracketed IPv6 address")
            port_text = rest[1:]
    elif ":" in value:
        host, port_text = value.rsplit(":", 1)
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError("the port must be a number from 1 to 65535")
        port = int(port_text)
    if _IPV6_BRACKETED.match(host) or _IPV4.match(host):
        return host, port
    if not is_dns1123_subdomain(host):
        raise ValueError("the host must be a lowercase DNS name (letters, digits, '-' and '.') or an IP address")
    return host, port


def s3_bucket_problem(value: Any) -> Optional[str]:
    """Why ``value`` is not an S3 bucket name, or None when it is one."""
    if not isinstance(value, str) or not value:
        return "it must be a non-empty string"
    if not 3 <= len(value) <= 63:
        return f"it has {len(value)} characters, not 3 to 63"
    if not _S3_BUCKET_CHARACTERS.match(value):
        return "it has characters other than lowercase letters, digits, '.' and '-'"
    if not _S3_BUCKET_ENDS.match(value):
        return "it must start and end with a letter or digit"
    if ".." in value:
        return "two dots may not be adjacent"
    if _IPV4.match(value):
        return "it may not be an IP address"
    return None


def split_url(value: Any) -> tuple[str, str, Optional[int]]:
    """Split ``http(s)://host[:port]``; returns ``(scheme, host, port or None)`` or raises
    ValueError with the reason."""
    if not isinstance(value, str) or not value:
        raise ValueError("it must be a non-empty string like https://minio.example.com:9000")
    scheme = next((prefix for prefix in _URL_SCHEMES if value.lower().startswith(prefix)), None)
    if scheme is None:
        raise ValueError("start it with http:// or https://, like https://minio.example.com:9000")
    host, port = split_host_port(value[len(scheme) :])
    return scheme[:-3], host, port


def to_bool(value: Any) -> bool:
    """Ansible's booleans (true/false, yes/no, on/off, 1/0); raises ValueError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE_STRINGS:
            return True
        if lowered in _FALSE_STRINGS:
            return False
    raise ValueError(value)


def suggest(name: str, candidates: Iterable[str]) -> Optional[str]:
    """The closest candidate to a misspelt name, or None."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return matches[0] if matches else None


def misspelt_variables(names: Iterable[Any]) -> dict[str, str]:
    """``{name: suggestion}`` for variable names that look like a typo of one of ours.

    Only near misses are reported: roles of this collection have other ``segmented_registry_*``
    variables, which must not be flagged.
    """
    result = {}
    for name in names:
        if name in INVENTORY_VARS or not isinstance(name, str):
            continue
        match = difflib.get_close_matches(name, INVENTORY_VARS, n=1, cutoff=0.9)
        if match:
            result[name] = match[0]
    return result


def type_name(value: Any) -> str:
    # isinstance, not type(): templated values may be subclasses (tagged str, dict, ...)
    for kind, name in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"), (Mapping, "a mapping"), (Sequence, "a list"), (type(None), "null")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def unknown_key_message(key: Any, known: Sequence[str]) -> str:
    hint = suggest(str(key), known)
    text = f"unknown key {show(key)}"
    if hint:
        text += f"; did you mean {hint!r}?"
    return text + f" (known keys: {', '.join(known)})"
