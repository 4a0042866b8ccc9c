# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What a consumer cluster's nodes may pull and whom they trust: the merge (pure).

OpenShift renders ``config.openshift.io/v1 Image`` named ``cluster`` into every node's
``/etc/containers/policy.json`` and ``registries.conf``: ``spec.registrySources.allowedRegistries``
(default reject: only these), or ``blockedRegistries`` (never both), and
``spec.additionalTrustedCA.name`` (a ConfigMap in ``openshift-config`` whose keys are registry
hosts, ``..`` for the port). The administrator owns that object; this module adds what a consumer
of one environment needs and takes out exactly that again (``owned``):

- with ``allowedRegistries`` (or nothing yet): the environment's registries are added. A cluster
  that had no list gets the platform's own registries too, or its nodes could no longer pull the
  release, operators and the integrated registry. An entry that already allows another
  environment's registry (``*.apps.registry.example.com``) is an error: it would break the
  confinement.
- with ``blockedRegistries``: the other environments' registries are blocked (unless an entry of
  the administrator blocks them already); an entry that blocks this environment's registry is an
  error.

``spec.allowedRegistriesForImport`` (``[{domainName, insecure}]``) limits where ImageStreams may
import from; unset or empty, every registry may be. The logical registry name is added when the
administrator's list is not empty and no entry covers it yet, and is never added to an empty list
(which would forbid every other registry).
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.consumer.owned import merge_owned, remove_owned
from ansible_collections.segmented.registry.plugins.module_utils.consumer.scopes import covering, valid_scope
from ansible_collections.segmented.registry.plugins.module_utils.errors import ConsumerError

ALLOWED = "allowedRegistries"
BLOCKED = "blockedRegistries"
SOURCES = "registrySources"
TRUSTED_CA = "additionalTrustedCA"
IMPORT = "allowedRegistriesForImport"


class ImageConfigError(ConsumerError, ValueError):
    """The cluster's configuration contradicts what is asked; the message names the entry and the fix."""


def check_scopes(values: Iterable[object] | None, option: str) -> None:
    """Every value a registry scope, or an error naming the option."""
    for value in values or []:
        if not isinstance(value, str) or not valid_scope(value) or any(c.isspace() for c in value):
            raise ImageConfigError(f"{option} has {value!r}, which is not a registry scope (host[:port][/namespace...] or *.domain); fix it")


def merge_registry_sources(
    spec: dict[str, Any] | None, record: dict[str, Any] | None, allow: Iterable[str], deny: Iterable[str], platform: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(new spec, new record)`` of the Image ``cluster`` with ``allow`` allowed and ``deny`` kept out.

    ``record`` is what this collection added earlier (``owned.read_record``); ``platform`` is
    added only when the cluster has no ``allowedRegistries`` and no ``blockedRegistries``."""
    spec = copy.deepcopy(spec or {})
    record = dict(record or {})
    sources = dict(spec.get(SOURCES) or {})
    allowed, blocked = list(sources.get(ALLOWED) or []), list(sources.get(BLOCKED) or [])
    if allowed and blocked and not record.get(ALLOWED) and not record.get(BLOCKED):
        raise ImageConfigError(
            "the Image cluster has both spec.registrySources.allowedRegistries and blockedRegistries, which OpenShift refuses: keep one of them"
        )
    new_record: dict[str, Any] = {}
    if blocked and not record.get(ALLOWED):
        theirs = [entry for entry in blocked if entry not in (record.get(BLOCKED) or [])]
        for scope in allow:
            entry = covering(scope, theirs)
            if entry:
                raise ImageConfigError(
                    f"spec.registrySources.blockedRegistries entry {entry!r} blocks {scope!r}, which "
                    "this cluster must pull from (its environment's registry): remove the entry, "
                    "or assign the cluster another environment"
                )
        wanted = [scope for scope in deny if not covering(scope, theirs)]
        new_list, added = merge_owned(blocked, record.get(BLOCKED), wanted)
        sources[BLOCKED] = new_list
        if added:
            new_record[BLOCKED] = added
    else:
        theirs = [entry for entry in allowed if entry not in (record.get(ALLOWED) or [])]
        for scope in deny:
            entry = covering(scope, theirs)
            if entry:
                raise ImageConfigError(
                    f"spec.registrySources.allowedRegistries entry {entry!r} allows {scope!r}, "
                    "another environment's registry, which this cluster must never pull from: "
                    "replace the entry with narrower ones"
                )
        # a cluster that allowed nothing yet keeps its platform's registries (and keeps them on
        # later runs); the list's key itself may have been absent, or there and empty
        with_platform = record.get("withPlatformRegistries", not allowed)
        wanted = (list(platform) if with_platform else []) + list(allow)
        new_list, added = merge_owned(allowed, record.get(ALLOWED), wanted)
        if added:
            new_record[ALLOWED] = added
            new_record["allowedRegistriesCreated"] = record.get("allowedRegistriesCreated", ALLOWED not in sources)
            if with_platform:
                new_record["withPlatformRegistries"] = True
        sources[ALLOWED] = new_list
    if new_record:
        new_record["registrySourcesCreated"] = record.get("registrySourcesCreated", SOURCES not in spec)
        spec[SOURCES] = sources
    else:
        spec = restore_registry_sources(spec, record)
    if TRUSTED_CA in record:
        new_record[TRUSTED_CA] = record[TRUSTED_CA]
    return spec, new_record


def restore_registry_sources(spec: dict[str, Any] | None, record: Mapping[str, Any]) -> dict[str, Any]:
    """The Image ``cluster``'s spec without what ``record`` says this collection added to registrySources."""
    spec = copy.deepcopy(spec or {})
    sources = dict(spec.get(SOURCES) or {})
    for key, created in ((ALLOWED, record.get("allowedRegistriesCreated")), (BLOCKED, False)):
        if record.get(key):
            remaining = remove_owned(sources.get(key), record[key])
            if remaining or not created:
                sources[key] = remaining
            else:
                sources.pop(key, None)
    if record.get(ALLOWED) or record.get(BLOCKED):
        if sources or not record.get("registrySourcesCreated"):
            spec[SOURCES] = sources
        else:
            spec.pop(SOURCES, None)
    return spec


def merge_import_registries(spec: dict[str, Any], record: Mapping[str, Any], registries: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """``(new spec, domain names this collection added)``: ``spec.allowedRegistriesForImport``
    allowing ``registries`` (``host[:port]``) as well. ``record`` is what this collection added
    earlier; empty ``registries`` take out what it added."""
    spec = copy.deepcopy(spec)
    current = list(spec.get(IMPORT) or [])
    domains = [str(entry.get("domainName") or "") for entry in current]
    theirs = [domain for domain in domains if domain not in (record.get(IMPORT) or [])]
    wanted = [registry for registry in registries if not covering(registry, theirs)] if theirs else []
    new_domains, added = merge_owned(domains, record.get(IMPORT), wanted)
    kept = [entry for entry, domain in zip(current, domains) if domain in new_domains]
    new_list = kept + [{"domainName": domain, "insecure": False} for domain in new_domains if domain not in domains]
    if new_list == current:
        return spec, added
    if new_list:
        spec[IMPORT] = new_list
    else:
        spec.pop(IMPORT, None)
    return spec, added


# -- the trusted CA ----------------------------------------------------------------------------


def ca_key(registry: str) -> str:
    """The ConfigMap key OpenShift reads for a registry's CA: the host, ``..`` before a port."""
    return registry.replace(":", "..")


def trusted_ca_configmap(spec: Mapping[str, Any], record: Mapping[str, Any], default_name: str) -> tuple[str, bool]:
    """``(ConfigMap name, ours)``: the ConfigMap the Image ``cluster`` names, else ``default_name``
    (then this collection sets the name, and owns the ConfigMap)."""
    if record.get(TRUSTED_CA):
        return record[TRUSTED_CA]["name"], True
    name = (spec.get(TRUSTED_CA) or {}).get("name")
    if name:
        return name, False
    return default_name, True


def set_trusted_ca(spec: dict[str, Any], record: Mapping[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The spec naming ConfigMap ``name`` as additionalTrustedCA; the record keeps the original value."""
    spec = copy.deepcopy(spec)
    record = dict(record)
    if TRUSTED_CA not in record:
        record[TRUSTED_CA] = {"name": name, "original": spec.get(TRUSTED_CA)}
    spec[TRUSTED_CA] = {"name": name}
    return spec, record


def restore_trusted_ca(spec: dict[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with additionalTrustedCA as it was before this collection set it."""
    spec = copy.deepcopy(spec)
    if record.get(TRUSTED_CA):
        original = record[TRUSTED_CA].get("original")
        if original is None:
            spec.pop(TRUSTED_CA, None)
        else:
            spec[TRUSTED_CA] = original
    return spec


def merge_ca_data(data: Mapping[str, str] | None, record: Mapping[str, Any], entries: Mapping[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """``(new data, new record)`` of an administrator's CA ConfigMap holding ``entries`` ({key: PEM}).

    A key this collection added earlier and no longer wants is removed; a key whose value it
    replaced gets its original value back; the record keeps what it added (``added``) and the
    values it replaced (``replaced``: CA certificates, public)."""
    data = dict(data or {})
    added = list(record.get("added") or [])
    replaced = dict(record.get("replaced") or {})
    for key in list(added):
        if key not in entries:
            data.pop(key, None)
            added.remove(key)
    for key in list(replaced):
        if key not in entries:
            data[key] = replaced.pop(key)
    for key, pem in entries.items():
        if key not in data:
            added.append(key)
        elif data[key] != pem and key not in added and key not in replaced:
            replaced[key] = data[key]
        data[key] = pem
    new_record: dict[str, Any] = {}
    if added:
        new_record["added"] = added
    if replaced:
        new_record["replaced"] = replaced
    return data, new_record


def restore_ca_data(data: Mapping[str, str] | None, record: Mapping[str, Any]) -> dict[str, str]:
    """The ConfigMap's data as it was before this collection added to it."""
    return merge_ca_data(data, record, {})[0]
