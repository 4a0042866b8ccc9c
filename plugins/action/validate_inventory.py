# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Action plugin of segmented.registry.validate_inventory.

On the controller: gathers the ``segmented_registry_*`` variables of every host in the
``all`` group (templated; an undefined value counts as absent), checks the inventory (the
same pure code the module runs, so a bad inventory fails before anything runs on the
target) and, with ``role_variables``, that every host has the variables the roles that run for
it require, then runs the module, which checks that every managed cluster answers.
"""

from ansible.errors import AnsibleUndefinedVariable
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.segmented.registry.plugins.module_utils.errors import SegmentedRegistryError, error_result
from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import misspelt_variables
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    HOST_VARS,
    PREFIX,
    VAR_ENVIRONMENTS,
    VAR_K8S_AUTH,
    Problem,
    TopologyError,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.options import (
    clusters_to_hosts,
    hosts_to_clusters,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.pushers import pusher_problems
from ansible_collections.segmented.registry.plugins.module_utils.inventory.reachability import (
    UNREACHABLE_FAIL,
    left_out_consumers,
    unreachable_problems,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.role_variables import (
    EMPTY,
    SET,
    UNSET,
    missing_role_variables,
    parse_role_variables,
    wanted,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.token_server import token_server_route_host_problems
from ansible_collections.segmented.registry.plugins.module_utils.inventory.validate import TOUCH_ALL, build_topology

MODULE = "segmented.registry.validate_inventory"
# An undefined value counts as absent, except where "absent" would mean something else: without
# segmented_registry_k8s_auth a cluster is reached through the K8S_AUTH_* environment variables,
# which may well lead to another cluster.
_UNDEFINED_IS_A_PROBLEM = (VAR_K8S_AUTH,)


def _first_line(error):
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(
        (
            "environments",
            "clusters",
            "check_reachable",
            "touch",
            "unreachable_consumers",
            "timeout",
            "role_variables",
            "pushers",
            "token_server_namespace",
            "token_server_route_host",
        )
    )

    def _host_templar(self, raw_vars):
        return self._templar.copy_with_new_env(available_variables=raw_vars)

    def _template(self, templar, value):
        """``(templated value, None)``, or ``(None, reason)`` when it uses an undefined variable."""
        try:
            return templar.template(value), None
        except AnsibleUndefinedVariable as error:
            return None, _first_line(error)

    def gather(self, task_vars):
        """``(environments, hosts, problems, warnings)`` from the inventory."""
        hostvars = task_vars.get("hostvars") or {}
        names = list((task_vars.get("groups") or {}).get("all") or [])
        environments, source = None, None
        hosts, problems, warnings = {}, [], []
        for host in names:
            raw = hostvars.raw_get(host) if hasattr(hostvars, "raw_get") else hostvars.get(host, {})
            if not hasattr(raw, "get"):  # an undefined marker: host unknown to the inventory
                continue
            templar = self._host_templar(raw)
            values = {}
            for name in HOST_VARS:
                if name in raw:
                    value, undefined = self._template(templar, raw[name])
                    if undefined and name in _UNDEFINED_IS_A_PROBLEM:
                        problems.append(
                            Problem(
                                host, name, "uses an undefined variable ({}); define it (a vaulted variable, for a secret) or remove {}".format(undefined, name)
                            )
                        )
                    elif value is not None:
                        values[name] = value
            hosts[host] = values
            if VAR_ENVIRONMENTS in raw:
                value, undefined = self._template(templar, raw[VAR_ENVIRONMENTS])
                if undefined:
                    problems.append(Problem(host, VAR_ENVIRONMENTS, f"uses an undefined variable ({undefined}); define it or write the environments out"))
                elif value is not None:
                    if source is None:
                        environments, source = value, host
                    elif value != environments:
                        problems.append(Problem(host, VAR_ENVIRONMENTS, f"differs from its value on {source}; define the environments once, in group_vars/all"))
            for name, suggestion in misspelt_variables(n for n in raw if isinstance(n, str) and n.startswith(PREFIX)).items():
                warnings.append(f"{host}: {name} is not a variable of segmented.registry and is ignored; did you mean {suggestion}?")
        return environments, hosts, problems, warnings

    def role_variable_values(self, task_vars, needs):
        """``{host: {variable: (SET | UNSET | EMPTY, undefined)}}`` of what ``needs`` names,
        templated with each host's variables (extra variables included)."""
        hostvars = task_vars.get("hostvars") or {}
        values = {}
        for host, items in needs.items():
            raw = hostvars.raw_get(host) if hasattr(hostvars, "raw_get") else hostvars.get(host, {})
            raw = raw if hasattr(raw, "get") else {}
            templar = self._host_templar(raw)
            found = values[host] = {}
            for _role, name in items:
                if name not in raw or name in found:
                    continue
                value, undefined = self._template(templar, raw[name])
                if undefined:
                    found[name] = (UNSET, undefined)
                elif value is None or (isinstance(value, str) and not value.strip()):
                    found[name] = (EMPTY, None)
                else:
                    found[name] = (SET, None)
        return values

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        task_vars = task_vars or {}
        args = dict(self._task.args)

        problems, warnings = [], []
        if args.get("environments") is None or args.get("clusters") is None:
            environments, hosts, problems, warnings = self.gather(task_vars)
            if args.get("environments") is None:
                args["environments"] = environments
            if args.get("clusters") is None:
                args["clusters"] = hosts_to_clusters(hosts)
        if warnings:
            result.setdefault("warnings", []).extend(warnings)

        try:
            role_variables = parse_role_variables(args.get("role_variables"))
        except SegmentedRegistryError as error:  # role_variables malformed: the message names the entry
            result.update(error_result(error, clusters={}))
            return result

        # Check the inventory here first: the module's argument spec would reject some of the
        # same mistakes with less helpful messages (and one at a time).
        topology, hosts = None, None
        try:
            hosts = clusters_to_hosts(args["clusters"])
            topology = build_topology(args["environments"], hosts, touch=args.get("touch") or TOUCH_ALL)
        except TopologyError as error:
            problems.extend(error.problems)
        registry = topology.registry.name if topology else "inventory"
        problems.extend(pusher_problems(registry, args.get("pushers"), args.get("token_server_namespace")))
        route_hosts = {name: environment.route_host for name, environment in topology.environments.items()} if topology else {}
        problems.extend(token_server_route_host_problems(registry, args.get("token_server_route_host"), route_hosts))
        if role_variables and hosts is not None:  # every problem at once, the inventory's and the roles'
            needs = wanted(role_variables, hosts)
            problems.extend(missing_role_variables(needs, self.role_variable_values(task_vars, needs)))
        if problems:
            result.update(error_result(TopologyError(problems), clusters={}))
            return result

        # Only keep the options the module knows; None means "not set" to the argument spec.
        module_args = {key: value for key, value in args.items() if value is not None}
        if boolean(module_args.get("check_reachable", True), strict=False):
            module_result = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
        else:  # the inventory alone: nothing for the module to add (it would only check it again)
            module_result = {"changed": False, "clusters": {}}

        # The module masks every no_log value in its output, kubeconfig paths included: report
        # the topology, the credential sources and why a consumer is left out as computed here,
        # on the controller (the same split the module made).
        report = topology.to_dict()
        failing, left_out = left_out_consumers(
            topology, unreachable_problems(topology, module_result.get("clusters") or {}), args.get("unreachable_consumers") or UNREACHABLE_FAIL
        )
        if module_result.get("failed") and module_result.get("clusters"):
            if failing:
                module_result.update(error_result(TopologyError(failing)))
        elif not module_result.get("failed"):
            module_result["left_out"] = left_out
            module_result["topology"] = report
            module_result["summary"] = topology.summary()
            module_result["ansible_facts"] = {"segmented_registry_topology": report}
        if warnings:
            module_result.setdefault("warnings", []).extend(warnings)
        result.update(module_result)
        return result
