# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""``segmented_registry_k8s_auth`` of an inventory host: kubernetes.core's authentication options
(``kube.AUTH_OPTIONS``, taken from kubernetes.core itself), checked and turned into a
``ClusterAuth`` that says where the credentials come from without repeating a secret."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    K8S_AUTH_ENVIRONMENT,
    VAR_K8S_AUTH,
    ClusterAuth,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import (
    show,
    to_bool,
    type_name,
    unknown_key_message,
)
from ansible_collections.segmented.registry.plugins.module_utils.kube import (
    AUTH_BOOL_OPTIONS,
    AUTH_OPTIONS,
    AUTH_PROXY_HEADERS_KEYS,
    AUTH_SECRET_OPTIONS,
)

_ALIASES = {alias: name for name, aliases in AUTH_OPTIONS.items() for alias in aliases}
_URL = re.compile(r"^https?://[^\s/]+(/.*)?$")


def parse_k8s_auth(host: str, value: Any, out: Any) -> Optional[ClusterAuth]:
    if value is None:
        return ClusterAuth()
    if not isinstance(value, Mapping):
        out.add(
            host,
            VAR_K8S_AUTH,
            "must be a mapping of kubernetes.core authentication options (kubeconfig, context, host, api_key, ...), not {}".format(type_name(value)),
        )
        return None
    options: dict[str, Any] = {}
    ok = True
    known = sorted(list(AUTH_OPTIONS) + list(_ALIASES))
    for key, item in value.items():
        field_name = f"{VAR_K8S_AUTH}.{key}"
        canonical = key if key in AUTH_OPTIONS else _ALIASES.get(key)
        if canonical is None:
            out.add(host, field_name, unknown_key_message(key, known))
            ok = False
            continue
        if item is None:
            continue
        if canonical in AUTH_BOOL_OPTIONS:
            try:
                item = to_bool(item)
            except ValueError:
                out.add(host, field_name, f"{show(item)} is not a boolean; write true or false")
                ok = False
                continue
        elif canonical == "kubeconfig":
            if not (isinstance(item, str) and item) and not isinstance(item, Mapping):
                out.add(host, field_name, f"must be the path of a kubeconfig file or an inline kubeconfig mapping, not {type_name(item)}")
                ok = False
                continue
        elif canonical == "proxy_headers":
            if not isinstance(item, Mapping):
                out.add(host, field_name, f"must be a mapping with proxy_basic_auth, basic_auth and/or user_agent, not {type_name(item)}")
                ok = False
                continue
            bad = [str(k) for k in item if k not in AUTH_PROXY_HEADERS_KEYS]
            if bad:
                for k in bad:
                    out.add(host, f"{field_name}.{k}", unknown_key_message(k, AUTH_PROXY_HEADERS_KEYS))
                ok = False
                continue
        elif canonical == "impersonate_groups":
            if isinstance(item, str):
                item = [group for group in item.split(",") if group]
            if not isinstance(item, Sequence) or not all(isinstance(group, str) for group in item):
                out.add(host, field_name, f"must be a list of group names, not {show(item)}")
                ok = False
                continue
            item = list(item)
        elif not isinstance(item, str) or (not item and canonical not in AUTH_SECRET_OPTIONS):
            shown = "a secret" if canonical in AUTH_SECRET_OPTIONS else show(item)
            out.add(host, field_name, f"must be a non-empty string, not {type_name(item) if canonical in AUTH_SECRET_OPTIONS else shown}")
            ok = False
            continue
        if canonical == "host" and not _URL.match(item):
            out.add(host, field_name, f"{show(item)} is not the API server URL; write it with its scheme, like https://api.cluster.example.com:6443")
            ok = False
            continue
        if canonical in options and options[canonical] != item:
            out.add(host, field_name, f"{canonical} and its alias both set with different values; keep only {canonical}")
            ok = False
            continue
        options[canonical] = item
    if not ok:
        return None
    return _auth_from_options(options)


def _auth_from_options(options: dict[str, Any]) -> ClusterAuth:
    host = options.get("host")
    kubeconfig = options.get("kubeconfig")
    context = options.get("context")
    if host:
        normalized = host.rstrip("/").lower()
        source = f"host {host.rstrip('/')}"
        if options.get("username") and not options.get("api_key"):
            source += f" as {options['username']}"
        return ClusterAuth(options=options, source=source, identity=("host", normalized))
    if kubeconfig or context:
        if isinstance(kubeconfig, Mapping):
            where = "(inline)"
            key = json.dumps(kubeconfig, sort_keys=True, default=str)
        elif kubeconfig:
            where = kubeconfig
            key = kubeconfig
        else:
            where = "(K8S_AUTH_KUBECONFIG or ~/.kube/config)"
            key = ""
        source = f"kubeconfig {where} context {context or '(current)'}"
        return ClusterAuth(options=options, source=source, identity=("kubeconfig", key, context or ""))
    return ClusterAuth(options=options, source=K8S_AUTH_ENVIRONMENT, identity=("environment",))
