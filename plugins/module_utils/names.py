# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Kubernetes name rules (pure): DNS-1123 labels and subdomains, qualified names.

Environment names become namespaces and host names (DNS-1123 labels); route hosts and storage
class names are DNS-1123 subdomains; annotation and label keys are qualified names; image streams
and tags have OpenShift's rules.
"""

from __future__ import annotations

import re

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
# OpenShift validates ImageStream names as path segments matching a docker repository component.
_IMAGE_STREAM = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$")
_IMAGE_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


def is_dns1123_label(value: object) -> bool:
    """At most 63 lowercase letters, digits and '-', starting and ending with a letter or digit."""
    return isinstance(value, str) and len(value) <= 63 and bool(_DNS1123_LABEL.match(value))


def is_dns1123_subdomain(value: object) -> bool:
    """Dot-separated DNS-1123 labels, at most 253 characters."""
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    return all(is_dns1123_label(label) for label in value.split("."))


def is_qualified_name(value: object) -> bool:
    """A Kubernetes qualified name (annotation or label key): ``[prefix/]name``."""
    if not isinstance(value, str) or not value:
        return False
    prefix, slash, name = value.rpartition("/")
    if slash and not is_dns1123_subdomain(prefix):
        return False
    return len(name) <= 63 and bool(_QUALIFIED_NAME.match(name))


def is_image_stream_name(value: object) -> bool:
    """An ImageStream name: lowercase letters and digits separated by '.', '_' or '-', at most 255 characters."""
    return isinstance(value, str) and 0 < len(value) <= 255 and bool(_IMAGE_STREAM.match(value))


def is_image_tag(value: object) -> bool:
    """An image tag: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'."""
    return isinstance(value, str) and bool(_IMAGE_TAG.match(value))


def split_namespaced(value: object) -> tuple[str, str] | None:
    """``(namespace, name)`` from ``namespace/name`` (a DNS-1123 label, then a DNS-1123
    subdomain), or None when ``value`` is not that."""
    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) != 2 or not is_dns1123_label(parts[0]) or not is_dns1123_subdomain(parts[1]):
        return None
    return parts[0], parts[1]
