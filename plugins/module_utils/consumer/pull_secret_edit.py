# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""One run of the ``pull_secret`` module: read the source and the target Secret, merge
(``pull_secret.merge_auths``), write only a change, with the resourceVersion that was read.

Before its first entry goes in, the Secret's value is copied, byte for byte, into a Secret beside
it (``<name>-segmented-registry-original``, labelled as this collection's): when the last entry
goes out and what remains is that value, the original bytes are written back (not a re-encoding of
the same JSON) and the copy is deleted, so the Secret is exactly as it was."""

from __future__ import annotations

import copy
from typing import Any

from ansible_collections.segmented.registry.plugins.module_utils.consumer import pull_secret as ps
from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ClusterObjects
from ansible_collections.segmented.registry.plugins.module_utils.consumer.owned import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    read_record,
    write_record,
)
from ansible_collections.segmented.registry.plugins.module_utils.names import split_namespaced

RECORD_KEY = "auths"


def _split(value: str, option: str) -> tuple[str, str]:
    found = split_namespaced(value)
    if found is None:
        raise ps.PullSecretError(f"{option} {value!r} is not namespace/name, like openshift-config/segmented-registry-pull")
    return found


class PullSecretEdit:
    def __init__(self, namespace: str, name: str, from_secret: str | None = None, auths: dict[str, Any] | None = None) -> None:
        self.namespace, self.name = _split(f"{namespace}/{name}", "namespace/name")
        self.source = _split(from_secret, "from_secret") if from_secret else None
        if auths is not None:
            for registry, entry in auths.items():
                if not isinstance(entry, dict) or not entry:
                    raise ps.PullSecretError(f"auths[{registry!r}] must be an entry like {{auth: base64(user:password)}}")
        self.auths = auths

    def where(self) -> str:
        return f"Secret {self.namespace}/{self.name}"

    def _wanted(self, api: ClusterObjects, present: bool) -> dict[str, Any]:
        if not present:
            return {}
        if self.source is None:
            return dict(self.auths or {})
        namespace, name = self.source[0], self.source[1]
        secret = api.get("v1", "Secret", name, namespace)
        if secret is None:
            raise ps.PullSecretError(
                f"from_secret {namespace}/{name} does not exist on the cluster at {api.host}: the "
                "credentials role writes it (playbooks/credentials.yml); run that first"
            )
        return dict(ps.decode(secret, f"from_secret {namespace}/{name}").get("auths") or {})

    def apply(self, api: ClusterObjects, present: bool = True) -> dict[str, Any]:
        return api.edit(lambda: self._attempt(api, present))

    def _attempt(self, api: ClusterObjects, present: bool) -> dict[str, Any]:
        wanted = self._wanted(api, present)
        secret = api.get("v1", "Secret", self.name, self.namespace)
        if secret is None:
            raise ps.PullSecretError(
                f"{self.where()} does not exist on the cluster at {api.host}: check namespace and name "
                "(every OpenShift cluster has openshift-config/pull-secret)"
            )
        config = ps.decode(secret, self.where())
        record = read_record(secret)
        new_config, owned, changed = ps.merge_auths(config, record.get(RECORD_KEY), wanted, self.where())
        new_record = {RECORD_KEY: owned} if owned else {}
        before = sorted((config.get("auths") or {}))
        old_data = secret.get("data")
        writes = 0
        if changed or new_record != record:
            original_name = f"{self.name}-segmented-registry-original"
            original = api.get("v1", "Secret", original_name, self.namespace)
            value = ps.encode(new_config)
            if owned and not record:  # the first entry goes in: keep the value as it is now
                copy_: dict[str, Any] = {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": secret.get("type"),
                    "metadata": {"name": original_name, "namespace": self.namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
                    "data": {ps.KEY: secret["data"][ps.KEY]},
                }
                if original is not None:  # left by an earlier cycle whose record is gone: stale
                    copy_["metadata"]["resourceVersion"] = original["metadata"]["resourceVersion"]
                api.write(copy_, "create" if original is None else "replace")
                writes += 1
            if not owned and original is not None:
                if ps.decode(original, f"Secret {self.namespace}/{original_name}") == new_config:
                    value = original["data"][ps.KEY]
            secret = copy.deepcopy(secret)
            secret["data"] = dict(secret.get("data") or {}, **{ps.KEY: value})
            api.write(write_record(secret, new_record), "replace")
            writes += 1
            if not owned and original is not None:
                api.write(original, "delete")
        content_changed = bool(writes) and secret["data"][ps.KEY] != (old_data or {}).get(ps.KEY)
        return {
            "changed": bool(writes),
            "registries": owned,
            "changed_registries": changed,
            "content_changed": content_changed,
            "diff": {"before": {"registries": before}, "after": {"registries": sorted(new_config["auths"])}},
        }
