# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Registry credentials merged into a cluster's global pull secret (pure).

Nodes pulling through an ImageDigestMirrorSet or ImageTagMirrorSet authenticate to the mirror with
the global pull secret (``openshift-config/pull-secret``), never with a namespace's pull secrets.
This collection merges its ``auths`` entries into that Secret, keeps every other entry as it is,
remembers on the Secret which entries are its own (``owned``), and refuses to overwrite an entry it
did not write. Nothing here ever returns or formats a credential: results carry registry names only.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.errors import ConsumerError

KEY = ".dockerconfigjson"


class PullSecretError(ConsumerError, ValueError):
    """The Secret cannot be merged; the message names it and the fix (never a credential)."""


def decode(secret: dict[str, Any] | None, where: str) -> dict[str, Any]:
    """The parsed ``.dockerconfigjson`` of a Secret (a dict as the API returns it)."""
    data = (secret or {}).get("data") or {}
    if KEY not in data:
        raise PullSecretError(f"{where} has no {KEY} key: it is not a kubernetes.io/dockerconfigjson Secret")
    try:
        config = json.loads(base64.b64decode(data[KEY]).decode("utf-8"))
    except (ValueError, TypeError, UnicodeDecodeError):
        config = None
    if not isinstance(config, dict) or not isinstance(config.get("auths", {}), dict):
        raise PullSecretError(f"{where}: {KEY} is not a JSON object with an auths map; fix or recreate the Secret")
    return config


def encode(config: dict[str, Any]) -> str:
    """The base64 ``.dockerconfigjson`` value of ``config`` (compact, keys in a stable order)."""
    return base64.b64encode(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).decode()


def merge_auths(config: dict[str, Any], owned: Iterable[str] | None, entries: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """``(new config, new owned list, changed registries)``: ``config`` with this collection's
    ``auths`` entries brought to ``entries`` ({registry: auth entry}). Entries it owned and no longer
    wants are removed; an entry someone else wrote for the same registry is an error."""
    auths = dict(config.get("auths") or {})
    owned = list(owned or [])
    changed = []
    for registry in entries:
        if registry in auths and registry not in owned:
            raise PullSecretError(
                f"{where} already has an entry for {registry} that this collection did not write: "
                "remove that entry (the role writes the environment's credential there), or point "
                "the consumer at another registry"
            )
    for registry in list(owned):
        if registry not in entries:
            if registry in auths:
                del auths[registry]
                changed.append(registry)
            owned.remove(registry)
    for registry, entry in entries.items():
        if auths.get(registry) != entry:
            auths[registry] = entry
            changed.append(registry)
        if registry not in owned:
            owned.append(registry)
    new_config = dict(config)
    new_config["auths"] = auths
    return new_config, owned, sorted(set(changed))
