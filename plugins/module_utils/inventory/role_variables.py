# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The variables the collection's roles require, per inventory host (pure): the ``role_variables``
option of ``validate_inventory``.

Each entry names a role, the clusters it runs for (``registry``: the host with
``segmented_registry_role: registry``; ``consumers``: every other host with an environment other
than ``default``) and the variables it requires without a default (``required: true`` in its
``meta/argument_specs.yml``; ``playbooks/validate.yml`` reads them from there). A variable that is
not set for such a host, is empty, or uses an undefined variable is a problem of that host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.errors import InventoryError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    DEFAULT_ENVIRONMENT,
    ROLE_REGISTRY,
    VAR_ENVIRONMENT,
    VAR_ROLE,
    Problem,
)
from ansible_collections.segmented.registry.plugins.module_utils.text import show

if TYPE_CHECKING:  # only for annotations: typing.TypeGuard is Python 3.10's
    from typing_extensions import TypeGuard

OPTION = "role_variables"
CLUSTERS_REGISTRY = "registry"
CLUSTERS_CONSUMERS = "consumers"
CLUSTERS = (CLUSTERS_REGISTRY, CLUSTERS_CONSUMERS)
ENTRY_KEYS = ("role", "clusters", "variables")

#: How a variable of a host stands (``values`` of ``missing_role_variables``).
SET, UNSET, EMPTY = "set", "unset", "empty"


class RoleVariablesError(InventoryError, ValueError):
    """The ``role_variables`` option is malformed; the message names the entry and the key at fault."""


def _is_list(value: object) -> TypeGuard[Sequence[Any]]:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def parse_role_variables(entries: Any) -> list[tuple[str, str, list[str]]]:
    """``[(role, clusters, [variable, ...])]`` from the option's value; raises ``RoleVariablesError``
    naming the entry and the key at fault."""
    if entries is None:
        return []
    if not _is_list(entries):
        raise RoleVariablesError(f"{OPTION} must be a list of {{role, clusters, variables}}, not {show(entries)}")
    parsed = []
    for index, entry in enumerate(entries):
        where = f"{OPTION}[{index}]"
        if not isinstance(entry, Mapping):
            raise RoleVariablesError(f"{where} must be a mapping with role, clusters and variables, not {show(entry)}")
        unknown = [key for key in entry if key not in ENTRY_KEYS]
        if unknown:
            raise RoleVariablesError(f"{where}: unknown key {show(unknown[0])} (known keys: {', '.join(ENTRY_KEYS)})")
        role, clusters, variables = entry.get("role"), entry.get("clusters"), entry.get("variables")
        if not isinstance(role, str) or not role:
            raise RoleVariablesError(f"{where}.role must name the role, like segmented.registry.registry_cluster, not {show(role)}")
        if clusters not in CLUSTERS:
            raise RoleVariablesError(f"{where}.clusters must be {' or '.join(CLUSTERS)} (the clusters {role} runs for), not {show(clusters)}")
        if not _is_list(variables) or not all(isinstance(name, str) and name for name in variables):
            raise RoleVariablesError(f"{where}.variables must be a list of variable names, not {show(variables)}")
        parsed.append((role, clusters, list(variables)))
    return parsed


def runs_for(hostvars: Mapping[str, Any]) -> Optional[str]:
    """Which clusters of a role (``registry``, ``consumers`` or None) a host with these
    ``segmented_registry_*`` variables is: as the collection's playbooks pick the hosts of each role."""
    if hostvars.get(VAR_ROLE) == ROLE_REGISTRY:
        return CLUSTERS_REGISTRY
    environment = hostvars.get(VAR_ENVIRONMENT)
    if _is_list(environment) and len(environment) == 1:
        environment = environment[0]
    if isinstance(environment, str) and environment not in ("", DEFAULT_ENVIRONMENT):
        return CLUSTERS_CONSUMERS
    return None


def wanted(entries: Iterable[tuple[str, str, list[str]]], hosts: Mapping[str, Optional[Mapping[str, Any]]]) -> dict[str, list[tuple[str, str]]]:
    """``{host: [(role, variable)]}``: what each host needs, for the hosts any entry runs for
    (``hosts``: ``{host: {segmented_registry_*: value}}``, in inventory order)."""
    result: dict[str, list[tuple[str, str]]] = {}
    for host, hostvars in hosts.items():
        kind = runs_for(hostvars or {})
        needs = [(role, name) for role, clusters, variables in entries if clusters == kind for name in variables]
        if needs:
            result[host] = needs
    return result


def missing_role_variables(
    needs: Mapping[str, Iterable[tuple[str, str]]], values: Mapping[str, Optional[Mapping[str, tuple[str, Optional[str]]]]]
) -> list[Problem]:
    """Problems for ``needs`` (what ``wanted`` returns) given ``values``: ``{host: {variable:
    (SET | UNSET | EMPTY, reason or None)}}``; a reason is the undefined variable a value uses."""
    problems = []
    for host, items in needs.items():
        for role, name in items:
            state, undefined = (values.get(host) or {}).get(name, (UNSET, None))
            if state == SET:
                continue
            what = f"the role {role} requires it (required in its meta/argument_specs.yml, no default)"
            if undefined:
                message = f"uses an undefined variable ({undefined}), and {what}; define it or set {name} to a value"
            elif state == EMPTY:
                message = f"is empty, and {what}; set it to a value"
            else:
                message = f"is not set, and {what}; set it for this host in the inventory (group_vars or host_vars/{host}); see ansible-doc -t role {role}"
            problems.append(Problem(host, name, message))
    return problems
