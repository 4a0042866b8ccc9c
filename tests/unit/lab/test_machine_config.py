"""Pure parts of the lab's machine-config stand-in (lab/machine_config.py): the pools' status as the
operator writes it, read back by the collection's own check (consumer/node_rollout.py)."""
import pytest

from ansible_collections.segmented.registry.plugins.module_utils.consumer import node_rollout
from lab import machine_config as mc

NOW, LATER = "2026-12-04T10:00:00Z", "2026-12-04T10:00:04Z"


def _pool(generation, status, target):
    return {"metadata": {"name": "worker", "generation": generation},
            "spec": mc.pool_spec("worker", target), "status": status}


def test_a_pool_updating_to_a_new_pull_secret_is_not_rolled_out_until_its_nodes_have_it():
    old = mc.rendered_name("worker", mc.content_digest(b'{"auths":{}}'))
    new = mc.rendered_name("worker", mc.content_digest(b'{"auths":{"r":{}}}'))
    done_before = mc.pool_status("worker", 3, old, old, True, {}, NOW)
    assert node_rollout.rolled_out(_pool(3, done_before, old), 2)

    updating = mc.pool_status("worker", 4, new, old, False, done_before, LATER)
    assert updating["configuration"]["name"] == old
    assert (updating["updatedMachineCount"], updating["machineCount"], updating["unavailableMachineCount"]) == (0, 1, 1)
    assert {c["type"]: c["status"] for c in updating["conditions"]}["Updating"] == "True"
    assert not node_rollout.rolled_out(_pool(4, updating, new), 3)

    updated = mc.pool_status("worker", 4, new, old, True, updating, LATER)
    assert node_rollout.rolled_out(_pool(4, updated, new), 3)
    # the status of the generation before the change does not count for the change
    assert not node_rollout.rolled_out(_pool(3, done_before, old), 3)


def test_a_condition_keeps_its_transition_time_while_its_status_stays():
    first = mc.pool_status("worker", 1, "rendered-worker-a", "rendered-worker-a", True, {}, NOW)
    again = mc.pool_status("worker", 2, "rendered-worker-b", "rendered-worker-a", False, first, LATER)
    times = {c["type"]: c["lastTransitionTime"] for c in again["conditions"]}
    assert times["Degraded"] == NOW and times["Updated"] == LATER and times["Updating"] == LATER


def test_the_rendered_name_follows_the_content():
    assert mc.content_digest(b"a") != mc.content_digest(b"b")
    assert mc.rendered_name("master", mc.content_digest(b"a")).startswith("rendered-master-")


def test_the_node_lag_comes_from_the_environment():
    assert mc.lag_from_env({}) == mc.DEFAULT_LAG
    assert mc.lag_from_env({mc.LAG_ENV: "0.5"}) == 0.5
    for bad in ("-1", "soon"):
        with pytest.raises(ValueError, match=mc.LAG_ENV):
            mc.lag_from_env({mc.LAG_ENV: bad})
