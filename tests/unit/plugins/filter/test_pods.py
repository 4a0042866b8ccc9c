"""segmented.registry.pod_problems and pull_failures (plugins/filter/pods.py): why Pods are not
ready, and which images they cannot pull, from the status a kubelet reports (pure logic: Pod
objects in, lines out)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.segmented.registry.plugins.filter.pods import FilterModule, pod_problems, pull_failures


def pod(name, statuses=(), conditions=(), phase="Pending", deleting=False, init=()):
    return {
        "metadata": dict({"namespace": "segmented-registry", "name": name},
                         **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})),
        "spec": {"containers": [{"name": "token-server", "image": "registry.example.com/token-server:1"}]},
        "status": {"phase": phase, "conditions": list(conditions), "containerStatuses": list(statuses),
                   "initContainerStatuses": list(init)},
    }


def waiting(reason, message=None, image="registry.example.com/token-server:missing", last=None):
    status = {"name": "token-server", "image": image, "ready": False, "restartCount": 3 if last else 0,
              "state": {"waiting": dict({"reason": reason}, **({"message": message} if message else {}))}}
    if last:
        status["lastState"] = {"terminated": last}
    return status


READY = {"type": "Ready", "status": "True"}


def test_the_filter_is_registered_by_its_name():
    assert FilterModule().filters() == {"pod_problems": pod_problems, "pull_failures": pull_failures}


def test_an_image_that_cannot_be_pulled_names_the_reason_and_the_image():
    found = pod_problems([pod("ts-1", [waiting("ImagePullBackOff", 'Back-off pulling image "registry.example.com/'
                                                                   'token-server:missing"')])])
    assert found == ["pod segmented-registry/ts-1, container token-server: ImagePullBackOff (image "
                     "registry.example.com/token-server:missing): Back-off pulling image "
                     "\"registry.example.com/token-server:missing\""]


def test_a_missing_secret_says_so_and_a_crash_loop_gives_the_last_exit():
    found = pod_problems([
        pod("ts-1", [waiting("CreateContainerConfigError", 'secret "token-server-signing" not found')]),
        pod("ts-2", [waiting("CrashLoopBackOff", "back-off 40s restarting failed container",
                             last={"exitCode": 2, "reason": "Error"})]),
    ])
    assert found == [
        "pod segmented-registry/ts-1, container token-server: CreateContainerConfigError: secret "
        "\"token-server-signing\" not found",
        "pod segmented-registry/ts-2, container token-server: CrashLoopBackOff: back-off 40s restarting failed "
        "container; it last exited with code 2 (Error)",
    ]


def test_an_image_missing_from_the_status_is_taken_from_the_spec():
    status = waiting("ErrImagePull", "not found", image=None)
    assert pod_problems([pod("ts-1", [status])]) == [
        "pod segmented-registry/ts-1, container token-server: ErrImagePull (image "
        "registry.example.com/token-server:1): not found"]


def test_init_containers_exits_and_readiness_are_reported():
    exited = {"exitCode": 1, "reason": "Error", "message": "no config"}
    init = {"name": "setup", "ready": False, "state": {"terminated": exited}}
    running = {"name": "token-server", "ready": False, "restartCount": 0, "state": {"running": {}}}
    assert pod_problems([pod("ts-1", init=[init]), pod("ts-2", [running], phase="Running")]) == [
        "pod segmented-registry/ts-1, container setup: exited with code 1 (Error): no config",
        "pod segmented-registry/ts-2, container token-server: running but not ready (restarted 0 times): its "
        "readiness probe fails",
    ]


def test_a_pod_that_is_not_scheduled_gives_the_schedulers_message():
    unscheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                   "message": "0/1 nodes are available: 1 Insufficient memory."}
    assert pod_problems([pod("ts-1", conditions=[unscheduled])]) == [
        "pod segmented-registry/ts-1: not scheduled: Unschedulable: 0/1 nodes are available: 1 Insufficient memory."]
    assert pod_problems([pod("ts-2")]) == ["pod segmented-registry/ts-2: Pending, not ready"]


def test_ready_pods_and_pods_being_deleted_say_nothing():
    ready = {"name": "token-server", "ready": True, "restartCount": 0, "state": {"running": {}}}
    assert pod_problems([pod("ts-1", [ready], [READY], phase="Running"),
                         pod("ts-2", [waiting("ImagePullBackOff")], deleting=True)]) == []
    assert pod_problems([]) == []


def test_pull_failures_are_the_images_that_cannot_be_pulled_each_once():
    found = pull_failures([
        pod("ts-1", [waiting("ImagePullBackOff")]),
        pod("ts-2", [waiting("ErrImagePull", image=None)]),  # the image from the spec
        pod("ts-3", [waiting("ErrImagePull")]),
        pod("ts-4", [waiting("CreateContainerConfigError", 'secret "x" not found')]),
        pod("ts-5", [waiting("InvalidImageName", image="BAD")]),
        pod("ts-6", [waiting("ImagePullBackOff", image="registry.example.com/other:1")], deleting=True),
    ])
    assert found == ["registry.example.com/token-server:1", "registry.example.com/token-server:missing"]
    ready = {"name": "token-server", "ready": True, "restartCount": 0, "state": {"running": {}}}
    assert pull_failures([pod("ts-1", [ready], [READY], phase="Running"), pod("ts-2")]) == []


@pytest.mark.parametrize("value", [None, {"metadata": {}}, ["pod"]])
@pytest.mark.parametrize("name", ["pod_problems", "pull_failures"])
def test_anything_but_a_list_of_pods_is_refused(name, value):
    with pytest.raises(AnsibleFilterError, match=f"{name} takes a list of Pod objects"):
        FilterModule().filters()[name](value)
