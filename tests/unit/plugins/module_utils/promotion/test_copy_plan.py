"""The copy Jobs' plan (module_utils/promotion/copy_plan.py, pure): shards, the copier's plan, the Job, the report."""
import base64
import hashlib
import gzip
import json

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.errors import PromotionError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Environment, Tls
from ansible_collections.segmented.registry.plugins.module_utils.promotion import copy_plan

DIGEST = "sha256:" + "a" * 64
IMAGE = "mirror.example.com/segmented-registry/copier@" + DIGEST


def option(**changes):
    return dict({"image": IMAGE, "jobs": 2, "integrated_service": "image-registry.openshift-image-registry.svc:5000",
                 "token_server_service": "token-server.segmented-registry.svc:8443", "timeout": 600}, **changes)


def copy(repository, tag="v1", env="test", **extra):
    return dict({"action": "copy", "environment": env, "repository": repository, "tag": tag, "digest": DIGEST}, **extra)


def test_settings_take_a_pinned_image_and_the_service_account():
    settings = copy_plan.Settings.of(option(), "segmented-registry-promotion/promoter")
    assert (settings.jobs, settings.service_account) == (2, "segmented-registry-promotion/promoter")


@pytest.mark.parametrize("changes, account, field, words", [
    ({"image": "mirror.example.com/copier:latest"}, "ns/sa", "copy_jobs.image", "not pinned by digest"),
    ({"jobs": 0}, "ns/sa", "copy_jobs.jobs", "at least 1"),
    ({"timeout": 5}, "ns/sa", "copy_jobs.timeout", "at least 30"),
    ({"integrated_service": "registry.example.com:5000"}, "ns/sa", "copy_jobs.integrated_service", "<service>.<namespace>.svc"),
    ({}, None, "service_account", "registry_token cannot be given to a Job"),
])
def test_settings_name_the_wrong_field_and_the_fix(changes, account, field, words):
    with pytest.raises(PromotionError) as caught:
        copy_plan.Settings.of(option(**changes), account)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_shards_keep_a_namespace_whole_and_balance_the_rest():
    copies = [copy("big/a", tag=str(n)) for n in range(5)] + [copy("mid/a", tag=str(n)) for n in range(3)]
    copies += [copy("small/a"), copy("tiny/b")]
    groups = copy_plan.shards(copies, 2)
    namespaces = [sorted({item["repository"].split("/")[0] for item in group}) for group in groups]
    assert namespaces == [["big"], ["mid", "small", "tiny"]]
    assert sum(len(group) for group in groups) == len(copies)


def test_shards_never_outnumber_the_namespaces_or_the_bound():
    copies = [copy(f"ns{n}/app") for n in range(7)]
    assert len(copy_plan.shards(copies, 3)) == 3
    assert len(copy_plan.shards(copies[:2], 8)) == 2
    assert copy_plan.shards([], 4) == []


def test_a_copy_and_the_copy_it_requires_share_a_job():
    uat = copy("team/app", env="uat")
    prod = copy("team/app", env="prod", requires={"environment": "uat", "repository": "team/app", "digest": DIGEST})
    others = [copy(f"other{n}/app") for n in range(6)]
    groups = copy_plan.shards(others + [uat, prod], 4)
    assert any(uat in group and prod in group for group in groups)


@pytest.mark.parametrize("tls, expected", [
    (Tls("edge"), {"registry": "registry.test.svc:5000", "insecure": True, "ca": "service-ca.crt", "host": "registry.test.svc"}),
    (Tls("reencrypt"), {"registry": "registry.test.svc:5000", "ca": "service-ca.crt", "host": "registry.test.svc"}),
    (Tls("reencrypt", "own-cert"), {"registry": "test-registry.apps.example.com:5000", "ca": "extra-ca.crt",
                                    "host": "test-registry.apps.example.com"}),
    (Tls("passthrough", "own-cert"), {"registry": "test-registry.apps.example.com:5000", "ca": "extra-ca.crt",
                                      "host": "test-registry.apps.example.com"}),
])
def test_a_job_reaches_an_environment_registry_through_its_service(tls, expected):
    env = Environment("test", "test-registry.apps.example.com", "test-registry.apps.example.com", tls=tls)
    endpoint = copy_plan.environment_endpoint(env)
    assert endpoint.pop("service") == "registry.test.svc"
    assert endpoint == expected


def endpoints():
    return {"source": {"registry": "image-registry.openshift-image-registry.svc:5000", "ca": "service-ca.crt"},
            "uat": {"registry": "registry.uat.svc:5000", "insecure": True, "ca": "service-ca.crt"},
            "prod": {"registry": "registry.prod.svc:5000", "ca": "service-ca.crt"}}


def test_the_plan_holds_the_shard_its_registries_and_what_they_held_and_no_secret():
    uat = copy("team/app", env="uat")
    prod = copy("team/app", env="prod", requires={"environment": "uat", "repository": "team/app", "digest": DIGEST},
                source_repository="team/base", pinned_from="sha256:" + "b" * 64, artifact_of="sha256:" + "c" * 64)
    actual = {"uat": {"team/app": {"old": "sha256:" + "d" * 64}, "elsewhere/x": {"v": DIGEST}}, "prod": {}}
    document = copy_plan.plan_document([(3, uat), (7, prod)], endpoints(), {"https://a/token": "https://b/token"}, actual, 4, 6, 3, 60)
    assert document["items"] == [
        {"id": 3, "environment": "uat", "repository": "team/app", "tag": "v1", "digest": DIGEST},
        {"id": 7, "environment": "prod", "repository": "team/app", "tag": "v1", "digest": DIGEST, "source_repository": "team/base",
         "by_digest": True, "requires": {"environment": "uat", "repository": "team/app", "digest": DIGEST}, "artifact_of": "sha256:" + "c" * 64},
    ]
    assert document["present"] == {"uat": {"team/app": ["sha256:" + "d" * 64]}}
    assert document["source"] == {"registry": "image-registry.openshift-image-registry.svc:5000", "insecure": False,
                                  "token_file": "/var/run/secrets/segmented-registry/integrated", "ca_file": "/etc/copier/ca/service-ca.crt"}
    assert document["destinations"]["uat"] == {"registry": "registry.uat.svc:5000", "insecure": True,
                                               "ca_file": "/etc/copier/ca/service-ca.crt",
                                               "token_file": "/var/run/secrets/segmented-registry/registry"}
    assert document["destinations"]["prod"]["ca_file"] == "/etc/copier/ca/service-ca.crt"
    assert (document["parallel_images"], document["parallel_blobs"], document["retries"], document["timeout_seconds"]) == (4, 6, 3, 60)
    assert "token" not in json.dumps(document["items"])


def test_a_plan_packs_into_configmaps_split_by_items_when_too_large():
    document = {"retries": 3, "items": [{"id": 1}]}
    assert [json.loads(gzip.decompress(base64.b64decode(part))) for part in copy_plan.pack(document)] == [document]
    huge = {"retries": 3, "items": [{"id": n, "digest": "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()} for n in range(40000)]}
    parts = [json.loads(gzip.decompress(base64.b64decode(part))) for part in copy_plan.pack(huge)]
    assert len(parts) > 1
    assert all(len(base64.b64decode(part)) <= copy_plan.PLAN_LIMIT_BYTES for part in copy_plan.pack(huge))
    assert [item for part in parts for item in part["items"]] == huge["items"]
    assert all(part["retries"] == 3 for part in parts)


def test_the_job_runs_the_pinned_copier_as_the_promoter_without_root_or_a_writable_root():
    settings = copy_plan.Settings.of(option(), "segmented-registry-promotion/promoter")
    job = copy_plan.job_manifest("segmented-registry-copy-x-0", "segmented-registry-promotion", "x", settings,
                                 {"10.96.0.9": {"registry.test.svc"}}, parts=2)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    assert pod["serviceAccountName"] == "promoter"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert pod["hostAliases"] == [{"ip": "10.96.0.9", "hostnames": ["registry.test.svc"]}]
    plan = next(v for v in pod["volumes"] if v["name"] == "plan")["projected"]["sources"]
    assert [source["configMap"]["name"] for source in plan] == ["segmented-registry-copy-x-0-0", "segmented-registry-copy-x-0-1"]
    assert container["args"] == ["--plan", "/etc/copier/plan"]
    tokens = next(v for v in pod["volumes"] if v["name"] == "tokens")["projected"]["sources"]
    assert [t["serviceAccountToken"].get("audience") for t in tokens] == ["segmented.registry/token-server", None]
    assert job["spec"]["activeDeadlineSeconds"] == 600
    rule = job["spec"]["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [1, 2]


def test_the_report_is_read_from_the_log_lines_and_nothing_else():
    log = "\n".join([
        "starting copier",
        json.dumps({"id": 0, "result": "copied", "bytes_sent": 10, "blobs_sent": 1, "seconds": 0.5, "extra": "dropped"}),
        json.dumps({"id": 1, "result": "failed", "error": "denied: requested access to the resource is denied"}),
        "{not json",
        json.dumps({"summary": {"copied": 1, "failed": 1}}),
    ])
    assert copy_plan.parse_report(log) == {
        0: {"result": "copied", "bytes_sent": 10, "blobs_sent": 1, "seconds": 0.5},
        1: {"result": "failed", "error": "denied: requested access to the resource is denied"},
    }


@pytest.mark.parametrize("conditions, expected", [
    ([], (False, "")),
    ([{"type": "Complete", "status": "True"}], (True, "")),
    ([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}],
     (True, "DeadlineExceeded: Job was active longer than specified deadline")),
    ([{"type": "Failed", "status": "False"}], (False, "")),
])
def test_a_job_is_finished_once_complete_or_failed(conditions, expected):
    assert copy_plan.job_outcome({"status": {"conditions": conditions}}) == expected


def _pod(*statuses):
    return {"status": {"containerStatuses": [{"name": name, "state": state} for name, state in statuses]}}


@pytest.mark.parametrize("pod, expected", [
    (_pod(), (False, "")),
    (_pod(("copier", {"running": {}})), (False, "")),
    (_pod(("copier", {"terminated": {"exitCode": 0}})), (True, "")),
    (_pod(("copier", {"terminated": {"exitCode": 1}})), (True, "its copier exited with code 1: a copy failed")),
    (_pod(("copier", {"terminated": {"exitCode": 2}})), (True, "its copier exited with code 2: the plan was refused")),
    # killed or evicted: the Job tries again, so only the Job can say it is over
    (_pod(("copier", {"terminated": {"exitCode": 137, "reason": "Error"}})), (False, "")),
    (_pod(("sidecar", {"terminated": {"exitCode": 0}}), ("copier", {"running": {}})), (False, "")),
], ids=["no-status", "running", "done", "copy-failed", "bad-plan", "killed", "other-container"])
def test_a_pod_ends_its_job_when_the_copier_exits_with_a_code_the_job_acts_on(pod, expected):
    assert copy_plan.pod_outcome(pod) == expected


def test_the_job_fails_at_once_on_the_exit_codes_a_pod_is_read_as_final():
    settings = copy_plan.Settings.of(option(), "segmented-registry-promotion/promoter")
    policy = copy_plan.job_manifest("j", "ns", "run", settings, {})["spec"]["podFailurePolicy"]["rules"]
    assert policy == [{"action": "FailJob", "onExitCodes": {"containerName": "copier", "operator": "In", "values": [1, 2]}}]


@pytest.mark.parametrize("line, expected", [
    ('{"summary":{"copied":1,"failed":0,"gated":0,"bytes_sent":123}}', True),
    ('{"summary":{"copied":1,"failed":0,"gated":0,"bytes_sent":123}}\r', True),
    ('{"id":0,"result":"copied"}', False),
    ('copier: 1 items from image-registry.openshift-image-registry.svc:5000 into 1 registries', False),
    ('{"summary":"not an object"}', False),
    ('{"summary":{"copied":1', False),  # cut off: the copier has not finished the line
], ids=["summary", "summary-cr", "a-copy", "stderr", "not-an-object", "cut-off"])
def test_the_summary_line_is_the_copiers_last_word_and_nothing_else_is(line, expected):
    assert copy_plan.is_summary(line) is expected
