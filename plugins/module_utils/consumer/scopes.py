# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Registry scopes as OpenShift's node configuration reads them (pure).

A scope is what ``config.openshift.io/v1 Image`` lists in ``spec.registrySources`` and what a
mirror set names as ``source``: ``host[:port][/namespace...]``, or a ``*.domain`` wildcard
(containers-registries.conf(5)). The machine-config operator applies an entry to every scope
nested inside it, which is how one wildcard can allow (or block) many registries.
"""

from __future__ import annotations

from typing import Iterable


def valid_scope(scope: str) -> bool:
    """A registries.conf scope: host[:port][/namespace...], or a ``*.domain`` wildcard."""
    if not scope:
        return False
    if "*" not in scope:
        return True
    return scope.startswith("*.") and not any(c in scope[2:] for c in "/@:*")


def nested(sub: str, sup: str) -> bool:
    """True if scope ``sub`` lies inside scope ``sup`` (the same scope, a namespace below it, or a
    host matched by a ``*.domain`` wildcard)."""
    if sub == sup:
        return True
    if len(sub) > len(sup) and sub.startswith(sup) and sub[len(sup)] == "/":
        return True
    if sup.startswith("*."):
        if ":" in sub:
            host = sub.split(":")[0]
            return host.endswith(sup[1:]) and "/" not in host
        return sub.split("/")[0].endswith(sup[1:])
    return False


def covering(scope: str, entries: Iterable[str]) -> str | None:
    """The first of ``entries`` that ``scope`` is nested in, or None."""
    return next((entry for entry in entries if nested(scope, entry)), None)
