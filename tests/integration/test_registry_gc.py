"""Scheduled garbage collection of an environment registry (roles/registry_cluster,
registry_cluster_gc_enabled), run once on the lab: the job takes the registry read-only, collects,
and puts it back in service; an unreferenced blob is reclaimed from the registry's volume and every
tagged image, a multi-platform index with its children included, stays whole."""
import hashlib
import os
import time

import pytest
from kubernetes import client as kclient

from tests.integration import promotion_lab as pl

PLAYBOOK = "playbooks/registry_cluster.yml"
ENV = "test"


def blob_file(volume, digest):
    algorithm, hexdigest = digest.split(":")
    return os.path.join(volume, "docker", "registry", "v2", "blobs", algorithm, hexdigest[:2], hexdigest, "data")


def promote(run_playbook, namespace, image, state="present"):
    runner = run_playbook("playbooks/promote.yml" if state == "present" else "playbooks/demote.yml",
                          extravars={"project": namespace, "image": image, "env": ENV})
    assert runner.status == "successful", runner.stdout_text[-3000:]


def run_job_once(lab, batch, name):
    """What the CronJob runs at its schedule, started now (as `kubectl create job --from=cronjob/...`)."""
    cronjob = batch.read_namespaced_cron_job("registry-gc", ENV)
    job = kclient.V1Job(
        metadata=kclient.V1ObjectMeta(name=name, namespace=ENV, labels=cronjob.spec.job_template.metadata.labels
                                      if cronjob.spec.job_template.metadata else None),
        spec=cronjob.spec.job_template.spec)
    batch.create_namespaced_job(ENV, job)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = batch.read_namespaced_job(name, ENV).status
        if status.succeeded or status.failed:
            return status
        time.sleep(1)
    pytest.fail(f"job {name} did not finish in 300 s")


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
        before = {p.metadata.uid for p in core.list_namespaced_pod(ENV, label_selector="app.kubernetes.io/name=registry").items}

        status = run_job_once(lab, batch, "registry-gc-" + unique)
        pods = core.list_namespaced_pod(ENV, label_selector=f"job-name=registry-gc-{unique}").items
        log = core.read_namespaced_pod_log(pods[0].metadata.name, ENV) if pods else ""
        assert status.succeeded == 1, log[-3000:]
        assert f"blob eligible for deletion: {junk_digest}" in log, log[-3000:]  # the collector's own words

        # reclaimed: the junk blob and the demoted image's layers are gone from the volume
        assert not os.path.exists(blob_file(volume, junk_digest)), "the unreferenced blob is still on the volume"
        assert not any(os.path.exists(blob_file(volume, d)) for d in old_blobs)
        # kept whole: every tagged image, the index's children and their layers
        for repository in (f"{namespace}/app", f"{namespace}/multi"):
            assert registry.head_manifest(repository, "v1") is not None
            assert pl.tree_problems(registry, repository, "v1") == []
        # back in service: the pods read config.yml again and the registry takes pushes
        deployment = apps.read_namespaced_deployment("registry", ENV)
        assert deployment.spec.template.spec.volumes[0].secret.items[0].key == "config.yml"
        assert log.count("deployment.apps/registry patched") == 2, log[-3000:]  # read-only, then back
        after = [p for p in core.list_namespaced_pod(ENV, label_selector="app.kubernetes.io/name=registry").items
                 if p.metadata.deletion_timestamp is None]
        assert len(after) == 1 and after[0].metadata.uid not in before  # read-only, then back: two rollouts
        lab.push(namespace, "app", "v2", 1, 64 * 1024)
        promote(run_playbook, namespace, "app:v2")
    finally:
        registry.close()
        off = run_playbook(PLAYBOOK)
        assert off.status == "successful", off.stdout_text[-3000:]
    assert batch.list_namespaced_cron_job(ENV).items == [], "garbage collection is off by default: no CronJob"
