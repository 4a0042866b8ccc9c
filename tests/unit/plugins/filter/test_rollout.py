"""segmented.registry.apply_preview, deployment_pods and rollout_failure (plugins/filter/rollout.py):
what the registry-cluster role applies (all, or in a check-mode preview the cluster-scoped objects
only), where it finds a Deployment's Pods, and the message of an apply that failed (pure logic, on
objects shaped like templates/token-server.yml.j2's)."""

from ansible_collections.segmented.registry.plugins.filter.rollout import (
    FilterModule,
    apply_preview,
    deployment_pods,
    rollout_failure,
)

NS = "segmented-registry"
LABELS = {"app.kubernetes.io/name": "token-server"}
TOKEN_SERVER = [
    {"kind": "Namespace", "metadata": {"name": NS}},
    {"kind": "ServiceAccount", "metadata": {"name": "token-server", "namespace": NS}},
    {"kind": "ClusterRoleBinding", "metadata": {"name": "segmented-registry:token-server"}},
    {"kind": "Deployment", "metadata": {"name": "token-server", "namespace": NS},
     "spec": {"selector": {"matchLabels": dict(LABELS, **{"app.kubernetes.io/part-of": "segmented-registry"})}}},
    {"kind": "PodDisruptionBudget", "metadata": {"name": "token-server", "namespace": NS},
     "spec": {"selector": {"matchLabels": LABELS}}},
]


def test_a_real_run_applies_everything():
    assert apply_preview(TOKEN_SERVER, False) == {"apply": TOKEN_SERVER, "later": []}


def test_a_preview_applies_the_cluster_scoped_objects_and_names_the_others():
    assert apply_preview(TOKEN_SERVER, True) == {
        "apply": [TOKEN_SERVER[0], TOKEN_SERVER[2]],
        "later": ["ServiceAccount/token-server", "Deployment/token-server", "PodDisruptionBudget/token-server"]}


def test_only_deployments_are_waited_for_by_their_selector():
    assert deployment_pods(TOKEN_SERVER) == [{
        "namespace": NS, "name": "token-server",
        "label_selectors": ["app.kubernetes.io/name=token-server", "app.kubernetes.io/part-of=segmented-registry"]}]


def pulling(image):
    return {"metadata": {"namespace": NS, "name": "token-server-1"},
            "spec": {"containers": [{"name": "token-server", "image": image}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "token-server", "image": image, "ready": False,
                 "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}}


WAIT = "Deployment token-server: timed out waiting for the rollout"


def test_the_message_names_the_error_the_pods_and_how_to_get_the_image():
    failed = {"failed": True, "msg": WAIT}
    reads = [{"item": deployment_pods(TOKEN_SERVER)[0], "resources": [pulling("example.com/ts:1")]}, {"skipped": True}]
    assert rollout_failure(failed, reads, "the token server", 300, "Build it: make image") == (
        f"the token server: {WAIT}. Its Pods are not ready (within registry_cluster_rollout_timeout, 300 s): "
        "pod segmented-registry/token-server-1, container token-server: ImagePullBackOff (image example.com/ts:1): "
        "Back-off pulling image. Cannot pull example.com/ts:1: Build it: make image")
    # an environment's registry has no how-to: the image is named among the Pods' problems only
    assert rollout_failure(failed, reads, "the registry of test", 300).endswith("Back-off pulling image")


def test_a_loops_failed_items_are_joined_and_ready_pods_say_nothing():
    failed = {"failed": True, "msg": "One or more items failed",
              "results": [{"failed": False, "msg": "ok"}, {"failed": True, "msg": "first"}, {"changed": True},
                          {"failed": True, "msg": "second"}]}
    assert rollout_failure(failed, [{"resources": []}], "the registry of test", 300, "") == \
        "the registry of test: first; second"


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"apply_preview", "deployment_pods", "rollout_failure"}
