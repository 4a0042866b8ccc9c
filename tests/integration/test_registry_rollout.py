"""A registry-cluster Deployment that never becomes ready fails with what its Pods report (the
kubelet's reason, the image), within registry_cluster_rollout_timeout, not after a bare
"Timed out waiting on resource"; a token server image that cannot be pulled is followed by how to
get it (registry_cluster_token_server_image_howto). On the lab's real node (containerd, kubelet)."""
import json
import os
import re

from tests.integration.runs import task_result

REASON = "Say why it failed: the token server"


def test_a_token_server_image_that_does_not_exist_is_named_with_the_kubelets_reason_and_how_to_get_it(
        lab, run_playbook, inventory, unique):
    """The token server's image is a tag the lab's mirror registry does not have. Its Deployment
    keeps its old Pod serving while the new one cannot pull (a rolling update), so the lab's token
    server keeps working; the lab inventory puts the image back afterwards."""
    with open(os.path.join(lab.state, "images.json")) as handle:
        image = json.load(handle)["token-server"]
    missing = image.rsplit(":", 1)[0] + ":not-pushed-" + unique

    def edit(hosts, group_vars):
        group_vars["registry_cluster_token_server_image"] = missing
        group_vars["registry_cluster_rollout_timeout"] = 15  # the kubelet says why within a second or two

    try:
        run = run_playbook("playbooks/registry_cluster.yml", inventory=inventory(edit))
    finally:
        restored = run_playbook("playbooks/registry_cluster.yml")
        assert restored.status == "successful", restored.stdout_text[-3000:]
    assert run.status == "failed", run.stdout_text[-3000:]
    message = task_result(run, REASON)["msg"]
    assert "Timed out waiting on resource" in message, message  # the apply's own error is kept
    assert "Its Pods are not ready (within registry_cluster_rollout_timeout, 15 s): pod segmented-registry/token-server-" \
        in message, message
    assert re.search(r"container token-server: (ImagePullBackOff|ErrImagePull) \(image " + re.escape(missing) + r"\)",
                     message), message
    # how to get the image: the preflight's text for an empty image, after the image that cannot be pulled
    assert f". Cannot pull {missing}: The token server (components/token-server of this collection, at " in message, message
    assert "`podman build -t <registry the cluster pulls from>/segmented-registry/token-server:<version> " in message, message
