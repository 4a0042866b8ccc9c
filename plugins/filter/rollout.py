# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Applying rendered objects and saying why they did not become ready (documented in
apply_preview.yml, deployment_pods.yml and rollout_failure.yml beside this file)."""

from ansible_collections.segmented.registry.plugins.filter.pods import pod_problems, pull_failures


def apply_preview(objects, preview):
    """``{"apply": [...], "later": ["Kind/name", ...]}``: the objects to apply now, and those a real
    run creates. With ``preview`` (check mode, their namespace does not exist yet, so the API server
    cannot dry-run them) only the cluster-scoped objects (the namespace among them) are applied and
    the namespaced ones are named; without, every object is applied."""
    if not preview:
        return {"apply": list(objects), "later": []}
    namespaced = [item for item in objects if "namespace" in item["metadata"]]
    return {
        "apply": [item for item in objects if "namespace" not in item["metadata"]],
        "later": [f"{item['kind']}/{item['metadata']['name']}" for item in namespaced],
    }


def deployment_pods(objects):
    """``[{"namespace", "name", "label_selectors"}, ...]``: where to find the Pods of each Deployment
    of ``objects`` (its selector's matchLabels as ``key=value``)."""
    return [
        {
            "namespace": item["metadata"]["namespace"],
            "name": item["metadata"]["name"],
            "label_selectors": [f"{key}={value}" for key, value in item["spec"]["selector"]["matchLabels"].items()],
        }
        for item in objects
        if item["kind"] == "Deployment"
    ]


def rollout_failure(failed_result, pod_reads, what, timeout, pull_howto=""):
    """The message of a failed apply of ``what``: the errors of ``failed_result`` (a loop's failed
    items, or the one failed call), why the Pods of ``pod_reads`` (the results of k8s_info over
    deployment_pods) are not ready within ``timeout`` seconds, and, with ``pull_howto``, how to get
    an image they cannot pull."""
    errors = [item.get("msg", "") for item in failed_result.get("results", [failed_result]) if item.get("failed")]
    pods = [pod for read in pod_reads if "resources" in read for pod in read["resources"]]
    message = f"{what}: {'; '.join(str(error) for error in errors)}"
    problems = pod_problems(pods)
    if problems:
        message += f". Its Pods are not ready (within registry_cluster_rollout_timeout, {timeout} s): {'; '.join(problems)}"
    failures = pull_failures(pods)
    if failures and pull_howto:
        message += f". Cannot pull {', '.join(failures)}: {pull_howto}"
    return message


class FilterModule:
    def filters(self):
        return {"apply_preview": apply_preview, "deployment_pods": deployment_pods, "rollout_failure": rollout_failure}
