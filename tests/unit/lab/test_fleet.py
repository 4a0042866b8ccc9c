"""lab/fleet.py: the lab's inventory with N consumer clusters, where labctl up --consumers records it
and how the lab finds it."""
import collections
import json
import os
import subprocess
import types

import pytest
import yaml

from ansible_collections.segmented.registry.plugins.module_utils.inventory.validate import build_topology
from lab import fleet, labctl

PORT, ENV = fleet.PORT_VAR, fleet.ENVIRONMENT_VAR


def _base():
    with open(os.path.join(fleet.BASE, "hosts.yml")) as handle:
        return yaml.safe_load(handle)


def _hosts(document):
    return document["all"]["children"]["clusters"]["hosts"]


def _consumers(document):
    return {name: v for name, v in _hosts(document).items() if ENV in v}


def test_three_consumers_are_the_lab_inventory_itself():
    base = _base()
    assert fleet.generate(base, 3, labctl.FIXED_PORTS) == base
    assert fleet.consumer_count(fleet.BASE) == 3


def test_sixteen_consumers_are_4_test_4_uat_8_prod_each_with_its_own_port_and_context():
    base = _base()
    hosts = _hosts(fleet.generate(base, 16, labctl.FIXED_PORTS))
    consumers = {name: v for name, v in hosts.items() if ENV in v}
    assert collections.Counter(v[ENV] for v in consumers.values()) == {"test": 4, "uat": 4, "prod": 8}
    for name, variables in _hosts(base).items():  # the lab's own hosts unchanged
        assert hosts[name] == variables
    assert sorted(consumers) == sorted(["test", "uat", "prod"] + [f"test-{k}" for k in (2, 3, 4)]
                                       + [f"uat-{k}" for k in (2, 3, 4)] + [f"prod-{k}" for k in range(2, 9)])
    ports = [int(v[PORT]) for v in hosts.values()]
    assert len(set(ports)) == len(ports) == 17
    assert not set(ports) & labctl.FIXED_PORTS  # the node's kubelet on 16450, kube-proxy on 16453-16454...
    assert min(p for name, p in zip(hosts, ports) if "-" in name) > max(int(v[PORT]) for v in _hosts(base).values())
    contexts = [v["segmented_registry_k8s_auth"]["context"] for v in hosts.values()]
    assert contexts == list(hosts) and len(set(contexts)) == 17
    for name, variables in consumers.items():
        first = _hosts(base)[variables[ENV]]
        same = {k: v for k, v in variables.items() if k not in (PORT, "segmented_registry_k8s_auth", fleet.CREDENTIALS_VAR)}
        assert same == {k: v for k, v in first.items() if k not in (PORT, "segmented_registry_k8s_auth", fleet.CREDENTIALS_VAR)
                        and (name == variables[ENV] or k != fleet.BUILDS_VAR)}
        assert variables[fleet.CREDENTIALS_VAR]["pull"] == first[fleet.CREDENTIALS_VAR]["pull"] == ["myproject/default"]
        assert variables["segmented_registry_k8s_auth"]["kubeconfig"] == first["segmented_registry_k8s_auth"]["kubeconfig"]
    assert [n for n, v in hosts.items() if v.get(fleet.BUILDS_VAR)] == ["test"]  # builds push from test only
    assert [n for n, v in hosts.items() if v.get(fleet.CREDENTIALS_VAR, {}).get("builders")] == ["test"]


def test_the_generated_inventory_is_a_valid_topology():
    with open(os.path.join(fleet.BASE, "group_vars", "all.yml")) as handle:
        environments = yaml.safe_load(handle)["segmented_registry_environments"]
    topology = build_topology(environments, _hosts(fleet.generate(_base(), 16, labctl.FIXED_PORTS))).to_dict()
    assert len(topology["consumer_clusters"]) == 16


@pytest.mark.parametrize("consumers, counts", [(4, (1, 1, 2)), (5, (2, 1, 2)), (6, (2, 2, 2)), (7, (2, 2, 3)),
                                               (8, (2, 2, 4))])
def test_other_counts_deal_the_sequence_test_uat_prod_prod(consumers, counts):
    found = collections.Counter(v[ENV] for v in _consumers(fleet.generate(_base(), consumers, labctl.FIXED_PORTS)).values())
    assert (found["test"], found["uat"], found["prod"]) == counts


@pytest.mark.parametrize("consumers", [2, 0, -16, True, "16", None])
def test_a_bad_count_is_refused_naming_the_option(consumers):
    with pytest.raises(fleet.FleetError, match=r"--consumers must be a whole number of at least 3 .*test, uat, prod"):
        fleet.generate(_base(), consumers, labctl.FIXED_PORTS)


def test_the_cli_refuses_a_bad_count_before_starting_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGMENTED_REGISTRY_LAB_STATE", str(tmp_path / "state"))
    monkeypatch.setattr(labctl, "Lab", lambda *args: pytest.fail("labctl up went on to start the lab"))
    assert labctl.main(["up", "--consumers", "2"]) == 1
    assert "labctl up: --consumers must be a whole number of at least 3" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "state" / fleet.FOLDER)
    assert not os.listdir(tmp_path / "state" / "run")  # nothing started


def test_without_a_recorded_inventory_the_lab_runs_on_inventories_lab(tmp_path, monkeypatch, capsys):
    assert fleet.current(str(tmp_path)) == fleet.BASE
    assert fleet.prepare(str(tmp_path), None, running=False, reserved_ports=labctl.FIXED_PORTS) == fleet.BASE
    assert not os.path.exists(tmp_path / fleet.FOLDER)
    monkeypatch.setenv("SEGMENTED_REGISTRY_LAB_STATE", str(tmp_path))
    assert labctl.main(["inventory"]) == 0
    assert capsys.readouterr().out == fleet.BASE + "\n"


def test_up_records_the_inventory_and_everything_finds_it(tmp_path, monkeypatch, capsys):
    state = str(tmp_path)
    folder = fleet.prepare(state, 16, running=False, reserved_ports=labctl.FIXED_PORTS)
    assert folder == os.path.join(state, fleet.FOLDER) == fleet.current(state)
    assert fleet.consumer_count(folder) == 16
    assert sorted(os.listdir(folder)) == ["group_vars", "hosts.yml"]  # Ansible reads every file there
    monkeypatch.delenv("SEGMENTED_REGISTRY_LAB_STATE", raising=False)
    assert len(labctl.Lab(state).layout.clusters) == 17  # the lab in ``state``, whatever state_dir() is
    assert os.path.realpath(os.path.join(folder, "group_vars")) == os.path.realpath(os.path.join(fleet.BASE, "group_vars"))
    monkeypatch.setenv("SEGMENTED_REGISTRY_LAB_STATE", state)
    assert labctl.main(["inventory"]) == 0
    assert capsys.readouterr().out == folder + "\n"
    layout = labctl.Layout()  # no argument: the lab's current inventory
    assert len(layout.clusters) == 17 and layout.registry_cluster == "registry"
    # up without --consumers keeps the lab's count, running or not
    assert fleet.prepare(state, None, running=True, reserved_ports=labctl.FIXED_PORTS) == folder
    assert fleet.consumer_count(fleet.current(state)) == 16


def test_another_count_is_refused_on_a_running_lab_and_taken_on_a_stopped_one(tmp_path):
    state = str(tmp_path)
    folder = fleet.prepare(state, 16, running=False, reserved_ports=labctl.FIXED_PORTS)
    with open(os.path.join(folder, "hosts.yml")) as handle:
        before = handle.read()
    with pytest.raises(fleet.FleetError, match=r"the lab runs 16 consumer clusters; --consumers 8 changes that only on "
                                               r"a stopped lab: lab/labctl down, then lab/labctl up --consumers 8"):
        fleet.prepare(state, 8, running=True, reserved_ports=labctl.FIXED_PORTS)
    with open(os.path.join(folder, "hosts.yml")) as handle:
        assert handle.read() == before
    assert fleet.prepare(state, 16, running=True, reserved_ports=labctl.FIXED_PORTS) == folder  # the same: fine
    with pytest.raises(fleet.FleetError, match="the lab runs 3 consumer clusters"):
        fleet.prepare(str(tmp_path / "fresh"), 16, running=True, reserved_ports=labctl.FIXED_PORTS)
    fleet.prepare(state, 8, running=False, reserved_ports=labctl.FIXED_PORTS)
    assert fleet.consumer_count(fleet.current(state)) == 8


def _lab_state_of(inventory, env):
    """segmented_registry_lab_state as a playbook resolves it with ``inventory``."""
    out = subprocess.run([labctl.venv_bin("ansible"), "-i", inventory, "registry", "-m", "ansible.builtin.debug",
                          "-a", "var=segmented_registry_lab_state", "-o"],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.split("=>", 1)[1])["segmented_registry_lab_state"]


def test_the_recorded_inventory_finds_the_state_it_is_in(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SEGMENTED_REGISTRY_LAB_STATE"}
    env.update(ANSIBLE_CONFIG=os.path.join(labctl.REPO, "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="0")
    state = str(tmp_path / "state")
    folder = fleet.prepare(state, 4, running=False, reserved_ports=labctl.FIXED_PORTS)
    assert os.path.normpath(_lab_state_of(folder, env)) == state
    with open(os.path.join(folder, "hosts.yml")) as handle:
        assert state not in handle.read()  # a copy elsewhere (tests/integration's inventory fixture) names no lab folder
    assert os.path.normpath(_lab_state_of(fleet.BASE, env)) == os.path.join(labctl.REPO, "lab", ".state")
    assert _lab_state_of(folder, dict(env, SEGMENTED_REGISTRY_LAB_STATE="/elsewhere")) == "/elsewhere"


def test_status_gives_each_cluster_its_processes_and_a_share_of_those_serving_every_cluster():
    rss = {"etcd": 100.0, "apiserver-registry": 300.0, "kcm-registry": 60.0, "apiserver-test": 200.0,
           "kcm-test": 40.0, "apiserver-test-2": 210.0, "kcm-test-2": 50.0, "machine-config": 60.0,
           "openshift-defaults": 30.0}
    report = labctl.memory_by_cluster(rss, ["registry", "test", "test-2"], "registry")
    assert report["clusters"]["test-2"] == {"apiserver-test-2": 210.0, "kcm-test-2": 50.0,
                                            "openshift-defaults (share)": 10.0, "machine-config (share)": 20.0,
                                            "total_mib": 290.0}
    assert report["clusters"]["registry"]["total_mib"] == 390.0
    assert report["consumer_mean_mib"] == 280.0  # (270 + 290) / 2: the registry cluster is no consumer


def test_the_cli_refuses_another_count_while_any_lab_process_runs(tmp_path, monkeypatch, capsys):
    state = tmp_path / "state"
    fleet.prepare(str(state), 16, running=False, reserved_ports=labctl.FIXED_PORTS)
    (state / "run").mkdir()
    (state / "run" / "router.pid").write_text(str(os.getpid()))  # a process that runs: this one
    monkeypatch.setenv("SEGMENTED_REGISTRY_LAB_STATE", str(state))
    monkeypatch.setattr(labctl, "Lab", lambda *args: pytest.fail("labctl up went on to start the lab"))
    assert labctl.main(["up", "--consumers", "8"]) == 1
    assert "labctl up: the lab runs 16 consumer clusters; --consumers 8 changes that only on a stopped lab" in \
        capsys.readouterr().err
    assert fleet.consumer_count(fleet.current(str(state))) == 16


def test_start_up_waits_are_the_labs_for_four_clusters_and_grow_with_the_fleet(tmp_path):
    def lab(clusters):
        return labctl.Lab(str(tmp_path), layout=types.SimpleNamespace(clusters=[(f"c{i}", 0) for i in range(clusters)]))

    assert lab(4).per_cluster(180) == 180 and lab(3).per_cluster(90) == 90
    assert lab(17).per_cluster(180) == 765  # 1 + 16: they start at once on the same cores


def test_the_layout_names_every_consumer_cluster_with_its_environment(tmp_path):
    assert labctl.Layout(fleet.BASE).consumers == {"prod": "prod", "test": "test", "uat": "uat"}
    layout = labctl.Layout(fleet.prepare(str(tmp_path), 16, running=False, reserved_ports=labctl.FIXED_PORTS))
    assert layout.consumers == {name: v[ENV] for name, v in _consumers(fleet.generate(_base(), 16, labctl.FIXED_PORTS)).items()}
    assert collections.Counter(layout.consumers.values()) == {"test": 4, "uat": 4, "prod": 8}
    assert layout.registry_cluster not in layout.consumers
    assert sorted(layout.consumers) == sorted(name for name, _port in layout.clusters if name != layout.registry_cluster)
