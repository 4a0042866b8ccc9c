# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Filters about Pods (documented in pod_problems.yml and pull_failures.yml beside this file)."""

from ansible.errors import AnsibleFilterError

#: The kubelet's waiting reasons for an image it cannot pull.
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff")


def _container_problem(status, image):
    """Why one container (its ``status``, as the kubelet reports it) is not ready, or None."""
    state = status.get("state") or {}
    waiting, terminated = state.get("waiting"), state.get("terminated")
    if waiting:
        text = waiting.get("reason") or "waiting"
        if text in PULL_FAILURES + ("InvalidImageName", "ErrImageNeverPull"):
            text += f" (image {image})"
        if waiting.get("message"):
            text += f": {waiting['message']}"
        last = (status.get("lastState") or {}).get("terminated")
        if last:
            text += f"; it last exited with code {last.get('exitCode')} ({last.get('reason') or 'no reason given'})"
        return text
    if terminated:
        text = f"exited with code {terminated.get('exitCode')} ({terminated.get('reason') or 'no reason given'})"
        return text + (f": {terminated['message']}" if terminated.get("message") else "")
    if not status.get("ready"):
        return f"running but not ready (restarted {status.get('restartCount') or 0} times): its readiness probe fails"
    return None


def _checked(pods, name):
    """The Pods of ``pods`` that are not being deleted; refuses anything but a list of Pod objects."""
    if not isinstance(pods, list):
        raise AnsibleFilterError(f"{name} takes a list of Pod objects (k8s_info's resources), not {type(pods).__name__}")
    for pod in pods:
        if not isinstance(pod, dict):
            raise AnsibleFilterError(f"{name} takes a list of Pod objects, and one item is a {type(pod).__name__}")
    return [pod for pod in pods if not (pod.get("metadata") or {}).get("deletionTimestamp")]


def _container_statuses(pod):
    """Each container status of ``pod`` (init containers first) with its image (from the spec when
    the status has none)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    images = {c.get("name"): c.get("image") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])}
    for item in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        yield item, item.get("image") or images.get(item.get("name"))


def pull_failures(pods):
    """The images (sorted, once each) that a container of ``pods`` waits for because the kubelet
    cannot pull them (ErrImagePull, ImagePullBackOff); Pods being deleted say nothing."""
    found = set()
    for pod in _checked(pods, "pull_failures"):
        for item, image in _container_statuses(pod):
            waiting = (item.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in PULL_FAILURES and image:
                found.add(image)
    return sorted(found)


def pod_problems(pods):
    """``["pod <namespace>/<name>, container <c>: <reason> (image <i>): <message>", ...]``: why
    each Pod of ``pods`` (Pod objects, as kubernetes.core.k8s_info returns them) is not ready;
    Pods being deleted and ready Pods say nothing."""
    problems = []
    for pod in _checked(pods, "pod_problems"):
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        where = f"pod {meta.get('namespace')}/{meta.get('name')}"
        found = []
        for item, image in _container_statuses(pod):
            problem = _container_problem(item, image)
            if problem:
                found.append(f"{where}, container {item.get('name')}: {problem}")
        if not found:
            conditions = {c.get("type"): c for c in status.get("conditions") or []}
            scheduled, ready = conditions.get("PodScheduled"), conditions.get("Ready")
            if scheduled and scheduled.get("status") == "False":
                found.append(
                    f"{where}: not scheduled: {scheduled.get('reason') or 'no reason given'}"
                    + (f": {scheduled['message']}" if scheduled.get("message") else "")
                )
            elif not ready or ready.get("status") != "True":
                found.append(f"{where}: {status.get('phase') or 'no status yet'}, not ready" + (f": {status['message']}" if status.get("message") else ""))
        problems.extend(found)
    return problems


class FilterModule:
    def filters(self):
        return {"pod_problems": pod_problems, "pull_failures": pull_failures}
