"""Scheduled garbage collection of an environment registry (roles/registry_cluster,
registry_cluster_gc_enabled), run once on the lab: the job takes the registry read-only, collects
in its own pod (the registry's image pinned by digest, on the registry's volume; its service account
may not exec into pods), and puts it back in service; an unreferenced blob is reclaimed from the
registry's volume and every tagged image, a multi-platform index with its children included, stays
whole. A collector that fails leaves the registry in service too, and an image given by tag is
refused before anything is written."""
import hashlib
import os
import time

import pytest
from kubernetes import client as kclient

from tests.integration import promotion_lab as pl
from tests.integration.runs import task_result

PLAYBOOK = "playbooks/registry_cluster.yml"
ENV = "test"


def blob_file(volume, digest):
    algorithm, hexdigest = digest.split(":")
    return os.path.join(volume, "docker", "registry", "v2", "blobs", algorithm, hexdigest[:2], hexdigest, "data")


def promote(run_playbook, namespace, image, state="present"):
    runner = run_playbook("playbooks/promote.yml" if state == "present" else "playbooks/demote.yml",
                          extravars={"project": namespace, "image": image, "env": ENV})
    assert runner.status == "successful", runner.stdout_text[-3000:]


def run_job_once(batch, name, edit=None):
    """What the CronJob runs at its schedule, started now (as `kubectl create job --from=cronjob/...`),
    its job spec changed by ``edit`` first when given."""
    cronjob = batch.read_namespaced_cron_job("registry-gc", ENV)
    job = kclient.V1Job(
        metadata=kclient.V1ObjectMeta(name=name, namespace=ENV, labels=cronjob.spec.job_template.metadata.labels
                                      if cronjob.spec.job_template.metadata else None),
        spec=cronjob.spec.job_template.spec)
    if edit:
        edit(job.spec)
    batch.create_namespaced_job(ENV, job)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = batch.read_namespaced_job(name, ENV).status
        if status.succeeded or status.failed:
            return status
        time.sleep(1)
    pytest.fail(f"job {name} did not finish in 300 s")


def job_logs(core, name):
    """The log of each container of job ``name``'s pod, by container name."""
    pod = core.list_namespaced_pod(ENV, label_selector=f"job-name={name}").items[0]
    return {c: core.read_namespaced_pod_log(pod.metadata.name, ENV, container=c)
            for c in ("read-only", "collect", "back-in-service")}


def registry_pods(core):
    return [p for p in core.list_namespaced_pod(ENV, label_selector="app.kubernetes.io/name=registry").items
            if p.metadata.deletion_timestamp is None]


def gc_may(authz, verb, resource, subresource=None, name=None):
    """Whether the registry-gc service account may do ``verb`` on ``resource`` in the namespace."""
    review = authz.create_subject_access_review({"spec": {
        "user": f"system:serviceaccount:{ENV}:registry-gc",
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ENV}", "system:authenticated"],
        "resourceAttributes": {"namespace": ENV, "verb": verb, "resource": resource, "subresource": subresource,
                               "name": name, "group": "apps" if resource == "deployments" else ""}}})
    return review.status.allowed


def in_service(apps, core, before):
    """The pods read config.yml again, after two rollouts (read-only, then back): one new pod."""
    deployment = apps.read_namespaced_deployment("registry", ENV)
    assert deployment.spec.template.spec.volumes[0].config_map.items[0].key == "config.yml"
    after = registry_pods(core)
    assert len(after) == 1 and after[0].metadata.uid not in before


def test_garbage_collection_reclaims_unreferenced_blobs_and_keeps_every_tagged_image(
        lab, run_playbook, unique):
    api = lab.api_client(lab.layout.registry_cluster)
    core, apps, batch = kclient.CoreV1Api(api), kclient.AppsV1Api(api), kclient.BatchV1Api(api)
    namespace = "gc-" + unique
    core.create_namespace({"metadata": {"name": namespace}})
    # what stays: a single-platform image and a two-platform index, promoted to test
    lab.push(namespace, "app", "v1", 3, 64 * 1024)
    pl.push_index(lab, namespace, "multi", "v1")
    promote(run_playbook, namespace, "app:v1")
    promote(run_playbook, namespace, "multi:v1")
    # what goes: an image promoted then demoted (its manifest deleted, its layers referenced by
    # nothing), and a blob uploaded without any manifest
    lab.push(namespace, "old", "v1", 2, 64 * 1024)
    promote(run_playbook, namespace, "old:v1")
    promoter = pl.promoter_token(lab)
    registry = pl.client(lab, dict(lab.layout.registries)[ENV], promoter, name=ENV)
    try:
        old_manifest = registry.get_manifest(f"{namespace}/old", "v1")
        parsed = pl.manifests.parse_manifest(old_manifest["data"], old_manifest["media_type"])
        old_blobs = [blob["digest"] for blob in parsed["blobs"]]
        promote(run_playbook, namespace, "old:v1", state="absent")
        junk = os.urandom(200 * 1024)
        junk_digest = pl._put_blob(registry, f"{namespace}/junk", junk)["digest"]
        assert junk_digest == "sha256:" + hashlib.sha256(junk).hexdigest()

        claim = core.read_namespaced_persistent_volume_claim("registry-storage", ENV)
        volume = core.read_persistent_volume(claim.spec.volume_name).spec.host_path.path
        assert os.path.exists(blob_file(volume, junk_digest))
        assert all(os.path.exists(blob_file(volume, d)) for d in old_blobs)

        deployed = run_playbook(PLAYBOOK, extravars={"registry_cluster_gc_enabled": True})
        assert deployed.status == "successful", deployed.stdout_text[-3000:]
        cronjob = batch.read_namespaced_cron_job("registry-gc", ENV)
        assert cronjob.spec.schedule == "30 3 * * 0" and cronjob.spec.concurrency_policy == "Forbid"

        # the job's identity: the registry Deployment's read-only switch, no shell in any pod
        authz = kclient.AuthorizationV1Api(api)
        assert gc_may(authz, "patch", "deployments", name="registry")
        assert not gc_may(authz, "create", "pods", "exec"), "the garbage collection job may exec into pods"
        pod_spec = cronjob.spec.job_template.spec.template.spec
        assert all("@sha256:" in c.image for c in pod_spec.init_containers + pod_spec.containers)
        before = {p.metadata.uid for p in registry_pods(core)}

        status = run_job_once(batch, "registry-gc-" + unique)
        logs = job_logs(core, "registry-gc-" + unique)
        assert status.succeeded == 1, logs
        assert f"blob eligible for deletion: {junk_digest}" in logs["collect"], logs  # the collector's own words

        # reclaimed: the junk blob and the demoted image's layers are gone from the volume
        assert not os.path.exists(blob_file(volume, junk_digest)), "the unreferenced blob is still on the volume"
        assert not any(os.path.exists(blob_file(volume, d)) for d in old_blobs)
        # kept whole: every tagged image, the index's children and their layers
        for repository in (f"{namespace}/app", f"{namespace}/multi"):
            assert registry.head_manifest(repository, "v1") is not None
            assert pl.tree_problems(registry, repository, "v1") == []
        # back in service: read-only, then back
        assert "deployment.apps/registry patched" in logs["read-only"], logs
        assert "deployment.apps/registry patched" in logs["back-in-service"], logs
        in_service(apps, core, before)

        # a collector that fails (a configuration it cannot read): the job fails, the registry is
        # put back in service all the same and takes pushes
        def broken(spec):
            collect = next(c for c in spec.template.spec.containers if c.name == "collect")
            collect.command = collect.command[:-1] + ["/etc/distribution/missing.yml"]

        before = {p.metadata.uid for p in registry_pods(core)}
        status = run_job_once(batch, "registry-gc-fails-" + unique, edit=broken)
        logs = job_logs(core, "registry-gc-fails-" + unique)
        assert status.failed == 1 and not status.succeeded, logs
        assert "the collector exited with 1" in logs["back-in-service"], logs
        in_service(apps, core, before)

        # a collector the deadline stops (one that never ends): the pod's grace puts it back
        def hangs(spec):
            spec.active_deadline_seconds = 30
            collect = next(c for c in spec.template.spec.containers if c.name == "collect")
            collect.image = spec.template.spec.init_containers[0].image  # a shell; the registry's has none
            collect.command = ["sh", "-c", "trap 'exit 143' TERM; sleep 3600 & wait"]

        before = {p.metadata.uid for p in registry_pods(core)}
        status = run_job_once(batch, "registry-gc-deadline-" + unique, edit=hangs)
        assert status.failed == 1 and not status.succeeded
        assert {c.reason for c in status.conditions if c.type in ("FailureTarget", "Failed")} == {"DeadlineExceeded"}
        deadline = time.monotonic() + 120  # the pod's grace: the registry back, then the pod gone
        while core.list_namespaced_pod(ENV, label_selector=f"job-name=registry-gc-deadline-{unique}").items:
            assert time.monotonic() < deadline, "the stopped job's pod is still there after 120 s"
            time.sleep(1)
        in_service(apps, core, before)
        lab.push(namespace, "app", "v2", 1, 64 * 1024)
        promote(run_playbook, namespace, "app:v2")
    finally:
        registry.close()
        off = run_playbook(PLAYBOOK)
        assert off.status == "successful", off.stdout_text[-3000:]
    assert batch.list_namespaced_cron_job(ENV).items == [], "garbage collection is off by default: no CronJob"


def test_garbage_collection_refuses_an_image_given_by_tag(lab, run_playbook, inventory):
    """With garbage collection on, the job's images must be pinned by digest: a tag is refused
    before anything is written, naming the variable and the fix."""
    batch = kclient.BatchV1Api(lab.api_client(lab.layout.registry_cluster))
    tagged = lab.image_references()["kubectl"]

    def edit(hosts, group_vars):
        group_vars.update(registry_cluster_gc_enabled=True, registry_cluster_gc_image=tagged)

    run = run_playbook(PLAYBOOK, inventory=inventory(edit))
    assert run.status == "failed", run.stdout_text[-3000:]
    message = task_result(run, "Check that garbage collection runs images pinned by digest")["msg"]
    assert f'registry_cluster_gc_image is "{tagged}", not pinned by digest' in message, message
    assert "<name>@sha256:<digest>" in message and "Nothing was changed" in message, message
    assert "registry_cluster_registry_image is" not in message, message  # that one is pinned
    assert batch.list_namespaced_cron_job(ENV).items == []
