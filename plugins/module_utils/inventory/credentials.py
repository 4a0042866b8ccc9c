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

from collections.abc import Mapping, Sequence

from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import type_name, unknown_key_message
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import VAR_CREDENTIALS
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label, is_dns1123_subdomain, split_namespaced
from ansible_collections.segmented.registry.plugins.module_utils.text import show

KEYS = ("pull", "builders")
BUILDER_KEYS = ("namespace", "service_account")
DEFAULT_BUILDER = "builder"
#: Where the cluster-wide pull credential goes; not a target of its own in ``pull``.
GLOBAL_NAMESPACE = "openshift-config"
_NAME_RULES = ("40 lowercase letters, digits and '-'")


def empty():
    return {"pull": [], "builders": []}


def _name_problem(host):
    if not is_dns1123_label(host) or len(host) > 40:
        return ("credentials are named after the cluster's inventory host name, which must then be a DNS label of at "
                f"most {_NAME_RULES} (like prod-east); rename the host")
    return None


def parse_credentials(host, value, role, has_environment, out):
    """The credentials block of ``host`` as ``{"pull": [{"namespace", "service_accounts"}],
    "builders": [{"namespace", "service_account"}]}`` (in inventory order), or None when it is not
    valid (every problem is added to ``out``). ``role`` and ``has_environment`` say what the host is:
    only a consumer with an environment gets credentials."""
    if value is None:
        return empty()
    if not isinstance(value, Mapping):
        out.add(host, VAR_CREDENTIALS, "must be a mapping with pull (a list of namespace/serviceaccount) and/or "
                f"builders (a list of {{namespace, service_account}}), not {type_name(value)} {show(value)}")
        return None
    before = len(out.problems)
    for key in value:
        if key not in KEYS:
            out.add(host, f"{VAR_CREDENTIALS}.{key}", unknown_key_message(key, KEYS))
    if role == "registry":
        out.add(host, VAR_CREDENTIALS, "is set on the registry cluster, which mints the credentials and gets none; "
                "set it on the consumer clusters")
        return None
    if not has_environment and (value.get("pull") or value.get("builders")):
        out.add(host, VAR_CREDENTIALS, "is set, but this cluster has no environment (segmented_registry_environment), "
                "so it is left alone and gets no credential; assign it an environment or remove "
                f"{VAR_CREDENTIALS}")
        return None
    problem = _name_problem(host)
    if problem and (value.get("pull") or value.get("builders")):
        out.add(host, VAR_CREDENTIALS, problem)

    pull = {}
    items = value.get("pull")
    if items is not None and (not isinstance(items, Sequence) or isinstance(items, (str, bytes))):
        out.add(host, f"{VAR_CREDENTIALS}.pull", f"must be a list of namespace/serviceaccount, like [myproject/default], not {type_name(items)} {show(items)}")
        items = ()
    for index, item in enumerate(items or ()):
        where = f"{VAR_CREDENTIALS}.pull[{index}]"
        found = split_namespaced(item)
        if found is None:
            out.add(host, where, f"{show(item)} is not namespace/serviceaccount; write it like myproject/default")
            continue
        namespace, account = found
        if namespace == GLOBAL_NAMESPACE:
            out.add(host, where, f"{show(item)}: the cluster-wide pull credential is always written to "
                    f"{GLOBAL_NAMESPACE}/segmented-registry-pull (for the global pull secret); remove this entry")
            continue
        accounts = pull.setdefault(namespace, [])
        if account in accounts:
            out.add(host, where, f"{show(item)} is listed twice; list it once")
            continue
        accounts.append(account)

    builders = []
    seen = set()
    items = value.get("builders")
    if items is not None and (not isinstance(items, Sequence) or isinstance(items, (str, bytes))):
        out.add(host, f"{VAR_CREDENTIALS}.builders", "must be a list like [{namespace: myproject, service_account: "
                f"builder}}], not {type_name(items)} {show(items)}")
        items = ()
    for index, item in enumerate(items or ()):
        where = f"{VAR_CREDENTIALS}.builders[{index}]"
        if isinstance(item, str):
            item = {"namespace": item}
        if not isinstance(item, Mapping):
            out.add(host, where, f"must be a mapping like {{namespace: myproject, service_account: builder}}, not {type_name(item)} {show(item)}")
            continue
        for key in item:
            if key not in BUILDER_KEYS:
                out.add(host, f"{where}.{key}", unknown_key_message(key, BUILDER_KEYS))
        namespace = item.get("namespace")
        account = item.get("service_account") or DEFAULT_BUILDER
        if not is_dns1123_label(namespace):
            out.add(host, f"{where}.namespace", f"{show(namespace)} is not a namespace name; name the build namespace "
                    "(the same on this cluster and in the integrated registry), like myproject")
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
    return {"pull": [{"namespace": ns, "service_accounts": accounts} for ns, accounts in pull.items()],
            "builders": builders}
