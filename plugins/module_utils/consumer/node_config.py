# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""One run of the ``cluster_image_config`` module: read the Image ``cluster``, its CA ConfigMap and
the CRIOCredentialProviderConfig, compute every change (``image_config``, ``owned``), check it all,
then write, ConfigMaps before the Image that names them and deletions after it."""

from __future__ import annotations

import copy
from typing import Any

from ansible_collections.segmented.registry.plugins.module_utils.consumer import image_config as ic
from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ClusterObjects, ObjectsError
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError
from ansible_collections.segmented.registry.plugins.module_utils.consumer.owned import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    is_ours,
    merge_owned,
    read_record,
    remove_owned,
    write_record,
)
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_subdomain

CONFIG_V1 = "config.openshift.io/v1"
PROVIDER_API = "config.openshift.io/v1alpha1"
PROVIDER_KIND = "CRIOCredentialProviderConfig"
CONFIG_NAMESPACE = "openshift-config"
MATCH_IMAGES = "matchImages"


def _label(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.setdefault("metadata", {})
    metadata["labels"] = dict(metadata.get("labels") or {}, **{MANAGED_BY_LABEL: MANAGED_BY})
    return obj


class NodeImageConfig:
    PLATFORM_REGISTRIES = (
        "image-registry.openshift-image-registry.svc:5000",
        "image-registry.openshift-image-registry.svc.cluster.local:5000",
        "quay.io/openshift-release-dev",
        "registry.redhat.io",
        "registry.access.redhat.com",
        "registry.connect.redhat.com",
    )

    def __init__(
        self,
        allow: list[str],
        deny: list[str],
        platform: list[str],
        trusted_ca: list[dict[str, str]] | None,
        configmap: str,
        match_images: list[str] | None,
        import_registries: list[str] | None = None,
    ) -> None:
        ic.check_scopes(allow, "allow")
        ic.check_scopes(deny, "deny")
        ic.check_scopes(platform, "platform_registries")
        ic.check_scopes(match_images, "credential_provider_registries")
        for registry in import_registries or []:
            if not ic.valid_scope(registry) or "/" in registry or "*" in registry or any(c.isspace() for c in registry):
                raise ic.ImageConfigError(f"import_registries has {registry!r}, which is not a host[:port] (like registry.apps.example.com); fix it")
        both = sorted(set(allow) & set(deny))
        if both:
            raise ic.ImageConfigError(f"{', '.join(both)} is in both allow and deny; a registry is one or the other")
        if not is_dns1123_subdomain(configmap or ""):
            raise ic.ImageConfigError(f"trusted_ca_configmap {configmap!r} is not a valid ConfigMap name (lowercase DNS-1123 subdomain)")
        self.entries = {}
        for index, item in enumerate(trusted_ca or []):
            registry, pem = item.get("registry") or "", item.get("ca") or ""
            if "/" in registry or not ic.valid_scope(registry) or "*" in registry:
                raise ic.ImageConfigError(f"trusted_ca[{index}].registry {registry!r} is not a host[:port]; fix it")
            if "-----BEGIN CERTIFICATE-----" not in pem:
                raise ic.ImageConfigError(
                    f"trusted_ca[{index}].ca (for {registry}) is not a PEM certificate; give the "
                    "certificate's text, not a path (lookup('file', path) reads one)"
                )
            self.entries[ic.ca_key(registry)] = pem if pem.endswith("\n") else pem + "\n"
        self.allow, self.deny, self.platform = list(allow), list(deny), list(platform)
        self.configmap, self.match_images = configmap, match_images
        self.import_registries = list(import_registries or [])

    def apply(self, api: ClusterObjects, present: bool = True) -> dict[str, Any]:
        return api.edit(lambda: self._attempt(api, present))

    # -- one attempt -------------------------------------------------------------------------
    def _attempt(self, api: ClusterObjects, present: bool) -> dict[str, Any]:
        image = api.get(CONFIG_V1, "Image", "cluster")
        if image is None:
            raise ObjectsError(
                f"the cluster at {api.host} has no config.openshift.io/v1 Image named cluster: is it an OpenShift cluster? (check the auth options)"
            )
        record = read_record(image)
        spec = image.get("spec") or {}
        if present:
            new_spec, new_record = ic.merge_registry_sources(spec, record, self.allow, self.deny, self.platform)
        else:
            new_spec = ic.restore_registry_sources(spec, record)
            new_record = {ic.TRUSTED_CA: record[ic.TRUSTED_CA]} if ic.TRUSTED_CA in record else {}
        new_spec, imported = ic.merge_import_registries(new_spec, record, self.import_registries if present else [])
        if imported:
            new_record[ic.IMPORT] = imported
        before_writes: list[tuple[dict[str, Any], str]] = []
        after_writes: list[tuple[dict[str, Any], str]] = []
        new_spec, new_record, ca_keys, ca_name, ca_diff = self._trusted_ca(
            api, new_spec, new_record, self.entries if present else {}, before_writes, after_writes
        )
        match_images, provider_diff = self._provider(api, present, before_writes, after_writes)
        writes = list(before_writes)
        if new_spec != spec or new_record != record:
            image = copy.deepcopy(image)
            image["spec"] = new_spec
            writes.append((write_record(image, new_record), "replace"))
        writes.extend(after_writes)
        for obj, verb in writes:
            api.write(obj, verb)
        return {
            "changed": bool(writes),
            "registry_sources": new_spec.get(ic.SOURCES) or {},
            "trusted_ca_configmap": ca_name,
            "trusted_ca_keys": ca_keys,
            "match_images": match_images,
            "import_registries": new_spec.get(ic.IMPORT) or [],
            "changed_objects": [api.describe(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")) for obj, _verb in writes],
            "diff": {
                "before": {"image": {"spec": spec}, "trusted_ca": ca_diff[0], MATCH_IMAGES: provider_diff[0]},
                "after": {"image": {"spec": new_spec}, "trusted_ca": ca_diff[1], MATCH_IMAGES: provider_diff[1]},
            },
        }

    def _trusted_ca(
        self,
        api: ClusterObjects,
        spec: dict[str, Any],
        record: dict[str, Any],
        entries: dict[str, str],
        before_writes: list[tuple[dict[str, Any], str]],
        after_writes: list[tuple[dict[str, Any], str]],
    ) -> tuple[Any, ...]:
        """Returns (spec, record, keys kept, ConfigMap name, (diff before, diff after))."""
        name, ours = ic.trusted_ca_configmap(spec, record, self.configmap)
        if not entries and not record.get(ic.TRUSTED_CA) and not (spec.get(ic.TRUSTED_CA) or {}).get("name"):
            return spec, record, [], None, ({}, {})
        configmap = api.get("v1", "ConfigMap", name, CONFIG_NAMESPACE)
        old_data = dict((configmap or {}).get("data") or {})
        if entries and ours:
            if ic.TRUSTED_CA not in record:
                if configmap is not None and not is_ours(configmap):
                    raise ic.ImageConfigError(
                        f"ConfigMap {CONFIG_NAMESPACE}/{name} exists and was not made by this "
                        "collection: set trusted_ca_configmap to another name, or name it in the "
                        "Image cluster's spec.additionalTrustedCA to have keys added to it"
                    )
                spec, record = ic.set_trusted_ca(spec, record, name)
            if configmap is None:
                before_writes.append(
                    (
                        _label({"apiVersion": "v1", "kind": "ConfigMap", "data": dict(entries), "metadata": {"name": name, "namespace": CONFIG_NAMESPACE}}),
                        "create",
                    )
                )
            elif old_data != entries:
                configmap = copy.deepcopy(configmap)
                configmap["data"] = dict(entries)
                before_writes.append((configmap, "replace"))
            new_data = dict(entries)
        elif entries:
            if configmap is None:
                raise ObjectsError(
                    f"the Image cluster's spec.additionalTrustedCA names ConfigMap {CONFIG_NAMESPACE}/{name}, "
                    "which does not exist: create it, or clear the name"
                )
            cm_record = read_record(configmap)
            new_data, new_cm_record = ic.merge_ca_data(old_data, cm_record, entries)
            if new_data != old_data or new_cm_record != cm_record:
                configmap = copy.deepcopy(configmap)
                configmap["data"] = new_data
                before_writes.append((write_record(configmap, new_cm_record), "replace"))
        elif record.get(ic.TRUSTED_CA):  # nothing wanted any more: undo what was set
            spec = ic.restore_trusted_ca(spec, record)
            record = {k: v for k, v in record.items() if k != ic.TRUSTED_CA}
            if configmap is not None and is_ours(configmap):
                after_writes.append((configmap, "delete"))
            new_data = {}
        else:
            cm_record = read_record(configmap) if configmap else {}
            new_data = ic.restore_ca_data(old_data, cm_record)
            if configmap and cm_record:
                configmap = copy.deepcopy(configmap)
                configmap["data"] = new_data
                after_writes.append((write_record(configmap, {}), "replace"))
        kept = sorted(entries)
        return spec, record, kept, name if kept else None, ({name: sorted(old_data)}, {name: sorted(new_data)})

    def _provider(
        self, api: ClusterObjects, present: bool, before_writes: list[tuple[dict[str, Any], str]], after_writes: list[tuple[dict[str, Any], str]]
    ) -> tuple[Any, ...]:
        """The CRIOCredentialProviderConfig: returns (matchImages after or None, (diff before, diff after))."""
        if present and self.match_images is None:
            return None, (None, None)
        missing = (
            f"the cluster at {api.host} does not serve {PROVIDER_API} {PROVIDER_KIND} (OpenShift 4.21 and later, "
            "with the TechPreviewNoUpgrade feature set until it is GA): leave credential_provider_registries unset "
            "and let nodes use the global pull secret"
        )
        try:
            obj = api.get(PROVIDER_API, PROVIDER_KIND, "cluster", missing=missing)
        except ClusterError:
            if present:
                raise
            return None, (None, None)
        wanted = list(self.match_images or []) if present else []
        if obj is None:
            if not wanted:
                return None, (None, None)
            before_writes.append(
                (_label({"apiVersion": PROVIDER_API, "kind": PROVIDER_KIND, "metadata": {"name": "cluster"}, "spec": {MATCH_IMAGES: wanted}}), "create")
            )
            return wanted, (None, wanted)
        current = list((obj.get("spec") or {}).get(MATCH_IMAGES) or [])
        obj = copy.deepcopy(obj)
        if is_ours(obj):
            if not wanted:
                after_writes.append((obj, "delete"))
                return None, (current, None)
            new, record = wanted, {}
        else:
            added = read_record(obj).get(MATCH_IMAGES)
            if wanted:
                new, added = merge_owned(current, added, wanted)
            else:
                new, added = remove_owned(current, added), []
            record = {MATCH_IMAGES: added} if added else {}
        if new != current or record != read_record(obj):
            obj.setdefault("spec", {})[MATCH_IMAGES] = new
            (before_writes if wanted else after_writes).append((write_record(obj, record) if not is_ours(obj) else obj, "replace"))
        return new, (current, new)
