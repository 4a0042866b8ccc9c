# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""``segmented_registry_credentials`` of a consumer cluster (pure): who on that cluster gets the
registry credentials that roles/credentials mints.

.. code-block:: yaml

    segmented_registry_credentials:
      pull:                      # service accounts that pull from the cluster's environment registry
        - myproject/default      # namespace/serviceaccount
      builders:                  # build namespaces: push to <integrated registry>/<namespace>/...
        - namespace: myproject
          service_account: builder   # the default

Every consumer with an environment also gets its pull credential as the Secret
``openshift-config/segmented-registry-pull`` (for the cluster's global pull secret), whether or not
``pull`` names a service account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import VAR_CREDENTIALS
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label, is_dns1123_subdomain, split_namespaced
from ansible_collections.segmented.registry.plugins.module_utils.text import show

#: Where the cluster-wide pull credential goes; not a target of its own in ``pull``.
GLOBAL_NAMESPACE = "openshift-config"
_NAME_RULES = "40 lowercase letters, digits and '-'"


def empty() -> dict:
    return {"pull": [], "builders": []}


def _name_problem(host: str) -> Optional[str]:
    if not is_dns1123_label(host) or len(host) > 40:
        return (
            "credentials are named after the cluster's inventory host name, which must then be a DNS label of at "
            f"most {_NAME_RULES} (like prod-east); rename the host"
        )
    return None


def with_builder_mappings(hostvars: Mapping) -> Mapping:
    """``hostvars`` with each builder given as a string (``builders: [myproject]``) written as the
    mapping it stands for (``{namespace: myproject}``), for the shape check; not changed itself."""
    value = hostvars.get(VAR_CREDENTIALS)
    if not isinstance(value, Mapping):
        return hostvars
    builders = value.get("builders")
    if not isinstance(builders, list) or not any(isinstance(item, str) for item in builders):
        return hostvars
    builders = [{"namespace": item} if isinstance(item, str) else item for item in builders]
    return dict(hostvars, **{VAR_CREDENTIALS: dict(value, builders=builders)})


def parse_credentials(host: str, value: Optional[dict], role: Optional[str], has_environment: bool, out: Any) -> Optional[dict]:
    """The credentials block of ``host`` as ``{"pull": [{"namespace", "service_accounts"}],
    "builders": [{"namespace", "service_account"}]}`` (in inventory order), or None when it is not
    valid (every problem is added to ``out``). ``value`` is as ``shape.check`` returns it against
    ``schema.CLUSTER`` (None when not set or not a mapping). ``role`` and ``has_environment`` say
    what the host is: only a consumer with an environment gets credentials."""
    if value is None:
        return empty()
    before = len(out.problems)
    if role == "registry":
        out.add(host, VAR_CREDENTIALS, "is set on the registry cluster, which mints the credentials and gets none; set it on the consumer clusters")
        return None
    if not has_environment and (value["pull"] or value["builders"]):
        out.add(
            host,
            VAR_CREDENTIALS,
            "is set, but this cluster has no environment (segmented_registry_environment), "
            "so it is left alone and gets no credential; assign it an environment or remove "
            f"{VAR_CREDENTIALS}",
        )
        return None
    problem = _name_problem(host)
    if problem and (value["pull"] or value["builders"]):
        out.add(host, VAR_CREDENTIALS, problem)

    pull: dict[str, list[str]] = {}
    for index, item in enumerate(value["pull"] or ()):
        where = f"{VAR_CREDENTIALS}.pull[{index}]"
        found = split_namespaced(item)
        if found is None:
            out.add(host, where, f"{show(item)} is not namespace/serviceaccount; write it like myproject/default")
            continue
        namespace, account = found
        if namespace == GLOBAL_NAMESPACE:
            out.add(
                host,
                where,
                f"{show(item)}: the cluster-wide pull credential is always written to "
                f"{GLOBAL_NAMESPACE}/segmented-registry-pull (for the global pull secret); remove this entry",
            )
            continue
        accounts = pull.setdefault(namespace, [])
        if account in accounts:
            out.add(host, where, f"{show(item)} is listed twice; list it once")
            continue
        accounts.append(account)

    builders = []
    seen = set()
    for index, item in enumerate(value["builders"] or ()):
        where = f"{VAR_CREDENTIALS}.builders[{index}]"
        if item is None or None in (item["namespace"], item["service_account"]):
            continue  # a problem of its shape
        namespace, account = item["namespace"], item["service_account"]
        if not is_dns1123_label(namespace):
            out.add(
                host,
                f"{where}.namespace",
                f"{show(namespace)} is not a namespace name; name the build namespace "
                "(the same on this cluster and in the integrated registry), like myproject",
            )
            continue
        if not is_dns1123_subdomain(account):
            out.add(host, f"{where}.service_account", f"{show(account)} is not a service account name, like builder")
            continue
        if namespace in seen:
            out.add(host, f"{where}.namespace", f"{namespace} is listed twice; one builder per build namespace")
            continue
        seen.add(namespace)
        builders.append({"namespace": namespace, "service_account": account})
    if len(out.problems) != before:
        return None
    return {"pull": [{"namespace": ns, "service_accounts": accounts} for ns, accounts in pull.items()], "builders": builders}
