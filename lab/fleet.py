"""The lab's inventory with N consumer clusters (``labctl up --consumers N``), and which inventory the
lab runs on.

inventories/lab names one consumer cluster per environment (test, uat, prod). ``generate`` keeps
every host of it as it is and adds consumer clusters until there are N, dealt in turn over the
environments in the order of their first consumers in hosts.yml, the last (production) twice:
test, uat, prod, prod, test, uat, prod, prod, ... The lab's three are the first three of that
sequence, so N = 4k gives k test, k uat and 2k prod clusters (16: 4, 4, 8) and any other N the first
N of the sequence (5: 2 test, 1 uat, 2 prod; 6: 2, 2, 2; 7: 2, 2, 3). The k-th consumer of an
environment (k >= 2) is the host ``<environment>-<k>``, its kubeconfig context of the same name, with
the variables of the environment's first consumer (its credentials' pull list) but not its builds
(``consumer_cluster_builds_push`` and the credentials' ``builders``: builds push from the lab's own
test cluster only), and an API server port of its own: the next after the inventory's highest that no other lab component uses
(``reserved_ports``).

``write`` puts the inventory in ``<state>/inventory`` (hosts.yml; group_vars is a link to
inventories/lab/group_vars, so the group variables stay shared) and ``current`` finds it there:
that is the lab's inventory from then on, for every labctl command, the tests and the benchmark,
until ``labctl down --purge`` deletes the state; without one the lab runs on inventories/lab.
"""
import copy
import os

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = os.path.join(os.path.dirname(HERE), "inventories", "lab")
FOLDER = "inventory"  # in the lab's state folder
PORT_VAR = "segmented_registry_lab_apiserver_port"
ENVIRONMENT_VAR = "segmented_registry_environment"
# the lab state folder the inventory is in, <state>/inventory/.. (group_vars/all.yml reads it for
# segmented_registry_lab_state); no absolute path: a copy of hosts.yml names no lab folder
STATE_VAR = "segmented_registry_lab_inventory_state"
CREDENTIALS_VAR = "segmented_registry_credentials"
BUILDS_VAR = "consumer_cluster_builds_push"  # with the credentials' builders: on the lab's own consumers only


class FleetError(ValueError):
    pass


def _clusters(document):
    return document["all"]["children"]["clusters"]["hosts"]


def _load(inventory):
    with open(os.path.join(inventory, "hosts.yml")) as handle:
        return yaml.safe_load(handle)


def _first_consumers(document):
    """{environment: its first consumer cluster}, in the order of the hosts."""
    firsts = {}
    for name, variables in _clusters(document).items():
        if ENVIRONMENT_VAR in (variables or {}):
            firsts.setdefault(variables[ENVIRONMENT_VAR], name)
    return firsts


def consumer_count(inventory):
    """How many consumer clusters the inventory folder ``inventory`` names."""
    return sum(1 for v in _clusters(_load(inventory)).values() if ENVIRONMENT_VAR in (v or {}))


def generate(document, consumers, reserved_ports):
    """The hosts.yml document ``document`` (inventories/lab's, with one consumer per environment)
    with ``consumers`` consumer clusters (see the module's documentation)."""
    firsts = _first_consumers(document)
    if isinstance(consumers, bool) or not isinstance(consumers, int) or consumers < len(firsts):
        raise FleetError(f"--consumers must be a whole number of at least {len(firsts)} (one consumer cluster per "
                         f"environment: {', '.join(firsts)}); got {consumers!r}")
    result = copy.deepcopy(document)
    clusters = _clusters(result)
    cycle = list(firsts) + list(firsts)[-1:]
    taken = {int(v[PORT_VAR]) for v in clusters.values() if PORT_VAR in (v or {})}
    port = max(taken)
    counts = dict.fromkeys(firsts, 1)
    for index in range(len(firsts), consumers):
        environment = cycle[index % len(cycle)]
        counts[environment] += 1
        name = f"{environment}-{counts[environment]}"
        if name in clusters:
            raise FleetError(f"inventories/lab already has a host {name}: the generated consumer clusters are "
                             f"named <environment>-<k>; rename it")
        port += 1
        while port in reserved_ports or port in taken:
            port += 1
        variables = {k: copy.deepcopy(v) for k, v in clusters[firsts[environment]].items() if k != BUILDS_VAR}
        if CREDENTIALS_VAR in variables:
            variables[CREDENTIALS_VAR] = {k: v for k, v in variables[CREDENTIALS_VAR].items() if k != "builders"}
        variables["segmented_registry_k8s_auth"] = dict(variables["segmented_registry_k8s_auth"], context=name)
        variables[PORT_VAR] = port
        clusters[name] = variables
    return result


def write(state, document, consumers, base=BASE):
    """Write ``document`` (``generate``'s, of ``consumers`` consumer clusters) to <state>/inventory;
    returns its path."""
    document = copy.deepcopy(document)
    document["all"].setdefault("vars", {})[STATE_VAR] = "{{ inventory_dir }}/.."
    folder = os.path.join(state, FOLDER)
    os.makedirs(folder, exist_ok=True)
    link = os.path.join(folder, "group_vars")
    if os.path.islink(link):
        os.unlink(link)
    os.symlink(os.path.join(os.path.abspath(base), "group_vars"), link)
    # whole files only, and none beside hosts.yml: Ansible reads every file of an inventory folder
    staged = folder + ".hosts.yml.new"
    with open(staged, "w") as handle:
        handle.write(f"# Written by labctl up --consumers {int(consumers)} (lab/fleet.py) from {base}/hosts.yml;"
                     " rewritten by the next labctl up --consumers.\n")
        yaml.safe_dump(document, handle, sort_keys=False, default_flow_style=False)
    os.replace(staged, os.path.join(folder, "hosts.yml"))
    return folder


def current(state, base=BASE):
    """The inventory the lab in ``state`` runs on: the one ``write`` recorded there, else ``base``."""
    folder = os.path.join(state, FOLDER)
    return folder if os.path.exists(os.path.join(folder, "hosts.yml")) else base


def prepare(state, consumers, running, reserved_ports, base=BASE):
    """The inventory ``labctl up --consumers <consumers>`` runs on. None: the lab's current one
    (a lab started with N consumers keeps N). Another count than a running lab's is refused: the
    lab is brought down first (its clusters' data stays; the next up starts the new set)."""
    if consumers is None:
        return current(state, base)
    document = generate(_load(base), consumers, reserved_ports)  # a bad count is refused first
    now = consumer_count(current(state, base))
    if running and consumers != now:
        raise FleetError(f"the lab runs {now} consumer clusters; --consumers {consumers} changes that only on a "
                         f"stopped lab: lab/labctl down, then lab/labctl up --consumers {consumers}")
    return write(state, document, consumers, base)
