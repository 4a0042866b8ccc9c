"""Copies as Kubernetes Jobs (issue 26, the option ``copy_jobs``), on the lab's registry cluster node.

The copier image (components/copier) is built by lab/build/build-binaries.sh and served by the
lab's mirror pinned by digest (lab/images.py); the Jobs run on the node as the promoter service
account and reach the registries through their Services: the environment registries' ``registry``
Services, the token server's, and the integrated registry's (lab/integrated_service.py). Every
module run goes through ansible-playbook; the fixtures are test_reconcile.py's."""
import threading
import time

import pytest
from kubernetes import client as kclient

from ansible_collections.segmented.registry.plugins.module_utils.promotion.copy_plan import RUN_LABEL
from tests.integration import promotion_lab as pl
from tests.integration import test_reconcile as rc
from tests.integration.test_reconcile import ENDPOINTS, SMALL, sha, tags_of

# test_reconcile.py's fixtures, used here by name
approve, lab_auth, namespace, raw_manifest, reconcile, token = rc.approve, rc.lab_auth, rc.namespace, rc.raw_manifest, rc.reconcile, rc.token

PROMOTER_NAMESPACE = pl.PROMOTER.split("/", maxsplit=1)[0]
PROMOTER_BINDING = "segmented-registry:promoter:segmented-registry-promotion:promoter"


@pytest.fixture(scope="module", autouse=True)
def restricted_pods(lab):
    """OpenShift admits the copy Jobs' pods only under the restricted-v2 SCC (non-root, no privilege
    escalation, every capability dropped, RuntimeDefault seccomp). The lab has no SCC admission; its
    nearest real check is Kubernetes' own PodSecurity admission at the restricted level, enforced on
    the Jobs' namespace while these tests run: a Job whose pod the restricted level refuses never
    starts, and the tests fail."""
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
    label = "pod-security.kubernetes.io/enforce"
    core.patch_namespace(PROMOTER_NAMESPACE, {"metadata": {"labels": {label: "restricted"}}})
    yield
    core.patch_namespace(PROMOTER_NAMESPACE, {"metadata": {"labels": {label: None}}})


def through_jobs(lab, **extra):
    """The options of a reconcile whose copies run as Jobs, as the promoter."""
    return {"service_account": pl.PROMOTER, "registry_token": None,
            "copy_jobs": dict({"image": lab.image_references()["pinned"]["copier"], "jobs": 2}, **extra)}


def copy_jobs_left(lab):
    batch = kclient.BatchV1Api(lab.api_client(lab.layout.registry_cluster))
    return [job.metadata.name for job in batch.list_namespaced_job(PROMOTER_NAMESPACE, label_selector=RUN_LABEL).items
            if not job.metadata.deletion_timestamp]


def test_copies_through_jobs_land_what_the_in_process_path_plans_and_no_image_byte_passes_here(
        lab, lab_node, environment_registries, namespace, approve, reconcile, raw_manifest):
    single = lab.push(namespace, "app", "v1", 3, SMALL)
    built = pl.push_index(lab, namespace, "multi", "v1")
    signature = pl.push_signature(lab, namespace, "multi", built["index"], "sig")
    approve(namespace, "app:v1", add=["test", "uat", "prod"])
    approve(namespace, "multi:v1", add=["test"])

    # check mode is the plan as before: no Job starts, nothing is copied
    preview = reconcile(check=True, namespace=[namespace], **through_jobs(lab))
    assert not preview.get("failed"), preview.get("msg")
    assert preview["copies"] and preview["bytes_planned"] > 3 * SMALL, preview["copies"]
    assert copy_jobs_left(lab) == [] and raw_manifest(ENDPOINTS["test"], f"{namespace}/app:v1") is None

    result = reconcile(namespace=[namespace], **through_jobs(lab))
    assert not result.get("failed"), result.get("msg")
    copies = result["copies"]
    assert copies and {c["result"] for c in copies} == {"copied"}, copies
    assert sorted((c["environment"], c["repository"], c["tag"]) for c in copies) == sorted(
        (c["environment"], c["repository"], c["tag"]) for c in preview["copies"])
    assert all(c["job"].startswith("segmented-registry-copy-") for c in copies)
    assert result["bytes_moved"] > 3 * SMALL  # what the Jobs reported sending
    # the machine running Ansible read the registries and sent no image byte
    assert result["stats"]["blob_bytes_sent"] == 0
    assert not set(result["stats"]["registry_requests_by_method"]) & {"PUT", "POST", "PATCH"}, result["stats"]

    repo = f"{namespace}/app"
    for env in ("test", "uat", "prod"):
        assert sha(raw_manifest(ENDPOINTS[env], f"{repo}:v1")) == single["digest"]
    assert sha(raw_manifest(ENDPOINTS["test"], f"{namespace}/multi:v1")) == built["index"]
    for child in built["children"]:
        assert sha(raw_manifest(ENDPOINTS["test"], f"{namespace}/multi@{child}")) == child
    hexpart = built["index"].split(":")[1]
    assert sha(raw_manifest(ENDPOINTS["test"], f"{namespace}/multi:sha256-{hexpart}.sig")) == signature

    # the in-process engine agrees: it would copy and remove nothing, and sees no drift
    again = reconcile(check=True, namespace=[namespace])
    assert again["copies"] == [] and again["removals"] == [], (again["copies"], again["removals"])
    assert not [row for row in again["audit"] if row["drift"]]
    assert copy_jobs_left(lab) == []


def test_a_copy_job_killed_mid_copy_leaves_no_partial_tag_and_the_rerun_converges(
        lab, lab_node, environment_registries, namespace, approve, reconcile, token):
    # 4 layers of 48 MiB: about a second of copying in the pod, so the kill lands mid-copy (at 8 MiB
    # the copy could be done before the pod was seen Running)
    pushed = lab.push(namespace, "big", "v1", 4, 48 * 1024 * 1024)
    approve(namespace, "big:v1", add=["test"])
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
    batch = kclient.BatchV1Api(lab.api_client(lab.layout.registry_cluster))
    killed = []

    def kill_when_copying():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for pod in core.list_namespaced_pod(PROMOTER_NAMESPACE, label_selector=RUN_LABEL).items:
                if pod.status.phase == "Running":
                    job = pod.metadata.labels["batch.kubernetes.io/job-name"]
                    batch.delete_namespaced_job(job, PROMOTER_NAMESPACE, grace_period_seconds=0,
                                                propagation_policy="Foreground")
                    core.delete_namespaced_pod(pod.metadata.name, PROMOTER_NAMESPACE, grace_period_seconds=0)
                    killed.append(job)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_copying)
    killer.start()
    try:
        result = reconcile(namespace=[namespace], **through_jobs(lab))
    finally:
        killer.join()
    assert killed, "no copy Job ran"
    assert result.get("failed")
    failure = result["failures"][0]
    assert killed[0] in failure["error"] and "ended without reporting this copy" in failure["error"], failure
    registry = pl.client(lab, ENDPOINTS["test"], token)
    try:
        assert pl.tree_problems(registry, f"{namespace}/big", "v1") == []  # no tag, or a whole image
    finally:
        registry.close()

    rerun = reconcile(namespace=[namespace], **through_jobs(lab))
    assert not rerun.get("failed"), rerun.get("msg")
    assert tags_of(lab, token, ENDPOINTS["test"], f"{namespace}/big") == ["v1"]
    registry = pl.client(lab, ENDPOINTS["test"], token)
    try:
        assert registry.head_manifest(f"{namespace}/big", "v1")["digest"] == pushed["digest"]
        assert pl.tree_problems(registry, f"{namespace}/big", "v1") == []
    finally:
        registry.close()


def test_a_push_the_registry_denies_fails_those_copies_with_its_message_and_the_rest_land(
        lab, lab_node, environment_registries, namespace, approve, reconcile, raw_manifest):
    pushed = lab.push(namespace, "app", "v1", 2, SMALL)
    approve(namespace, "app:v1", add=["test", "uat"])
    rbac = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster))
    saved = rbac.read_namespaced_role_binding(PROMOTER_BINDING, "uat")
    # the promoter may read uat (the plan is made) but not push there: only the Job's push is denied
    rbac.delete_namespaced_role_binding(PROMOTER_BINDING, "uat")
    rbac.create_namespaced_role_binding("uat", {"metadata": {"name": "copy-jobs-test-puller"}, "subjects": saved.subjects,
                                                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                            "name": "segmented-registry:environment-puller"}})
    try:
        result = reconcile(namespace=[namespace], **through_jobs(lab))
    finally:
        rbac.delete_namespaced_role_binding("copy-jobs-test-puller", "uat")
        rbac.create_namespaced_role_binding("uat", {"metadata": {"name": saved.metadata.name, "labels": saved.metadata.labels},
                                                    "roleRef": saved.role_ref, "subjects": saved.subjects})
    assert result.get("failed")
    failures = result["failures"]
    assert [(f["environment"], f["tag"]) for f in failures] == [("uat", "v1")]
    error = failures[0].get("error", "")
    # the registry's own answer (distribution: 401 UNAUTHORIZED for a token without the push scope), and where
    assert "UNAUTHORIZED" in error and "registry.uat.svc:5000 (uat)" in error, error
    assert sha(raw_manifest(ENDPOINTS["test"], f"{namespace}/app:v1")) == pushed["digest"]
