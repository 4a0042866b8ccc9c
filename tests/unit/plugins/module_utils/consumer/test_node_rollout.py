"""When a global pull-secret change counts as rolled out to the nodes (pure): every
MachineConfigPool updated, all machines, for a generation newer than before the change."""
import pytest

from ansible_collections.segmented.registry.plugins.module_utils.consumer import node_rollout as nr
from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ObjectsError


def pool(name="worker", generation=5, observed=5, updated="True", machines=3, done=3, wanted="rendered-worker-b",
         current="rendered-worker-b", paused=False):
    return {"metadata": {"name": name, "generation": generation},
            "spec": {"configuration": {"name": wanted}, "paused": paused},
            "status": {"observedGeneration": observed, "machineCount": machines, "updatedMachineCount": done,
                       "configuration": {"name": current},
                       "conditions": [{"type": "Updated", "status": updated},
                                      {"type": "Updating", "status": "False" if updated == "True" else "True"}]}}


def test_a_pool_counts_once_it_reports_every_machine_updated_for_a_newer_generation():
    assert nr.rolled_out(pool(), 4)
    assert nr.rolled_out(pool(), None)  # a pool made after the change


@pytest.mark.parametrize("late, why", [
    (pool(generation=4, observed=4), "the status is for the generation before the change (render not seen yet)"),
    (pool(generation=6, observed=5), "the controller has not observed the newest spec"),
    (pool(updated="False"), "Updated is not True"),
    (pool(done=2), "a machine is not updated"),
    (pool(current="rendered-worker-a"), "the machines have another configuration than the spec names"),
    ({"metadata": {"name": "worker", "generation": 5}, "spec": {}}, "no status at all"),
])
def test_a_pool_does_not_count(late, why):
    assert not nr.rolled_out(late, 4), why


def test_pending_names_the_late_pools_and_the_message_says_why_without_secrets():
    before = nr.generations([pool("master", generation=4), pool("worker", generation=4)])
    assert before == {"master": 4, "worker": 4}
    pools = [pool("worker", updated="False", done=1, current="rendered-worker-a", paused=True), pool("master")]
    assert [p["metadata"]["name"] for p in nr.pending(pools, before)] == ["worker"]
    message = nr.timeout_message(pools, before, 900, "Secret openshift-config/pull-secret at https://api")
    assert "within 900s" in message and "worker: Updated=False" in message and "1/3 machines updated" in message
    assert "paused" in message and "master" not in message.split("not updated:")[1]


def test_a_wait_needs_a_positive_timeout_and_says_which_option():
    with pytest.raises(ObjectsError, match="wait_timeout"):
        nr.RolledOutEdit(object(), True, 0)
    nr.RolledOutEdit(object(), False, 0)  # no wait, no timeout needed
