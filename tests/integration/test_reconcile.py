"""segmented.registry.reconcile (issue 4), playbooks reconcile.yml and audit.yml, on the lab.

Whitelists are edited with issue 3's tag_environments module, then the promotion engine copies
into the lab's real environment registries (CNCF distribution 2.8.2 with OpenShift-style token
auth). Results are checked with skopeo (manifest bytes -> sha256 == digest) and with the
registries' own answers. Reliability tests run against a registry process of our own and a
fault-injecting proxy (tests/integration/promotion_lab.py); the lab's registries are never
stopped. Every module run goes through ansible-playbook (ansible-runner, as AWX runs it)."""
import base64
import hashlib
import json
import os
import re
import subprocess
import threading
import time
import uuid

import pytest
from kubernetes import client as kclient
from kubernetes.dynamic import DynamicClient

import promotion_lab as pl

RC = "tests/integration/playbooks/reconcile.yml"
TE = "tests/integration/playbooks/tag_environments.yml"
ENDPOINTS = {"test": "localhost:5101", "uat": "localhost:5102", "prod": "localhost:5103"}
SMALL = 64 * 1024


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token(lab):
    return pl.promoter_token(lab)


@pytest.fixture(scope="module")
def lab_auth(lab):
    return {"kubeconfig": lab.kubeconfig, "context": lab.layout.registry_cluster}


@pytest.fixture
def namespace(lab, unique):
    name = "rc-" + unique
    kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def reconcile(lab, token, run_playbook, lab_auth, tmp_path):
    """reconcile(check=False, environments=None, **options) -> the module's registered result."""
    def run(check=False, **args):
        out = tmp_path / ("rc-%s.json" % uuid.uuid4().hex)
        # the token given as registry_token (no_log): the leak checks below look for the very
        # secret the module uses; the playbook tests cover the minted-token path
        options = {"environments": pl.lab_environments(lab), "integrated_registry": lab.layout.integrated_endpoint,
                   "integrated_ca_cert": lab.ca.cert_path, "registry_token": token}
        options.update(args)
        runner = run_playbook(RC, extravars={"rc_args": options, "rc_auth": lab_auth, "rc_check": check,
                                             "rc_out": str(out)})
        assert runner.status == "successful", runner.stdout_text[-3000:]
        result = json.loads(out.read_text())
        assert token not in json.dumps(result), "a registry token leaked into the result"
        assert token not in runner.stdout_text, "a registry token leaked into the output"
        return result
    return run


@pytest.fixture
def approve(run_playbook, lab_auth, tmp_path):
    """approve(namespace, "stream:tag", add=[...] / remove=[...]): issue 3's module."""
    def run(namespace, name, **change):
        out = tmp_path / ("te-%s.json" % uuid.uuid4().hex)
        runner = run_playbook(TE, extravars={"te_args": dict(change, namespace=namespace, name=name),
                                             "te_auth": lab_auth, "te_out": str(out)})
        assert runner.status == "successful", runner.stdout_text[-3000:]
        result = json.loads(out.read_text())
        assert not result.get("failed"), result.get("msg")
        return result
    return run


@pytest.fixture
def raw_manifest(lab, token, tmp_path):
    """raw_manifest(endpoint, "repo:tag" or "repo@digest") -> bytes from `skopeo inspect --raw`,
    or None when the registry has no such manifest."""
    auth = tmp_path / "auth.json"
    fd = os.open(str(auth), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"auths": {endpoint: {"auth": base64.b64encode(("promoter:" + token).encode()).decode()}
                             for endpoint in list(ENDPOINTS.values()) + [lab.layout.integrated_endpoint]}}, handle)

    def run(endpoint, reference):
        proc = subprocess.run(["skopeo", "--command-timeout", "60s", "inspect", "--raw", "--authfile", str(auth),
                               "--cert-dir", lab.trust_dir, "docker://%s/%s" % (endpoint, reference)],
                              capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            if b"manifest unknown" in proc.stderr or b"not found" in proc.stderr:
                return None
            raise AssertionError(proc.stderr.decode()[-1000:])
        return proc.stdout
    return run


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tags_of(lab, token, endpoint, repository):
    registry = pl.client(lab, endpoint, token)
    try:
        return sorted(registry.list_tags(repository))
    finally:
        registry.close()


def results(result, kind=None, env=None, tag=None):
    """The actions of a result with that outcome (``result``, or the planned ``action``)."""
    items = []
    for key in ("copies", "skips", "removals", "gated", "failures"):
        items.extend(a for a in result.get(key) or [] if a not in items)
    return [a for a in items if (kind is None or (a.get("result") or a["action"]) == kind)
            and (env is None or a.get("environment") == env) and (tag is None or a["tag"] == tag)]


# ---------------------------------------------------------------------------------------------
# copies by digest, rerun, check mode
# ---------------------------------------------------------------------------------------------


def test_check_mode_plans_then_copy_by_digest_then_rerun_skips(lab, namespace, approve, reconcile, raw_manifest):
    pushed = lab.push(namespace, "app", "v1", 3, SMALL)
    digest = pushed["digest"]
    approve(namespace, "app:v1", add=["test", "uat"])

    plan = reconcile(check=True, namespace=[namespace])
    assert not plan.get("failed"), plan.get("msg")
    assert plan["changed"] is True
    assert sorted((a["environment"], a["action"], a["digest"]) for a in plan["copies"]) == [
        ("test", "copy", digest), ("uat", "copy", digest)]
    assert plan["bytes_moved"] == 0
    assert raw_manifest(ENDPOINTS["test"], "%s/app:v1" % namespace) is None, "check mode copied something"

    done = reconcile(namespace=[namespace])
    assert not done.get("failed"), done.get("msg")
    assert done["changed"] is True and done["summary"] == {"copied": 2}
    for env in ("test", "uat"):
        data = raw_manifest(ENDPOINTS[env], "%s/app:v1" % namespace)
        assert sha(data) == digest, "%s serves other bytes than the source" % env
    assert raw_manifest(ENDPOINTS["prod"], "%s/app:v1" % namespace) is None
    copies = {a["environment"]: a for a in done["copies"]}
    assert copies["test"]["blobs_sent"] == 4 and copies["test"]["bytes_sent"] > 3 * SMALL
    assert done["bytes_moved"] == sum(a["bytes_sent"] for a in done["copies"])
    assert done["stats"]["api_calls"] == 1  # one ImageStream list (one namespace); the token is given

    again = reconcile(namespace=[namespace])
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False and again["summary"] == {"skipped": 2} and again["bytes_moved"] == 0
    assert set(again["stats"]["registry_requests_by_method"]) <= {"GET", "HEAD"}


def test_second_tag_of_a_present_digest_sends_no_blob(lab, token, namespace, approve, reconcile, raw_manifest):
    digest = lab.push(namespace, "app", "v1", 2, SMALL)["digest"]
    approve(namespace, "app:v1", add=["test"])
    assert reconcile(namespace=[namespace])["summary"] == {"copied": 1}
    pl.tag_in_source(lab, namespace, "app", "v1-ga", digest)
    pl.tag_in_source(lab, namespace, "other", "v1", digest, from_stream="app")  # same image, another stream
    approve(namespace, "app:v1-ga", add=["test"])
    approve(namespace, "other:v1", add=["test"])
    result = reconcile(namespace=[namespace])
    assert not result.get("failed"), result.get("msg")
    copies = {(a["repository"], a["tag"]): a for a in result["copies"]}
    same_repo = copies[("%s/app" % namespace, "v1-ga")]
    other_repo = copies[("%s/other" % namespace, "v1")]
    assert same_repo["bytes_sent"] == 0 and same_repo["blobs_present"] == 0  # the image is there: no blob HEAD
    assert other_repo["bytes_sent"] == 0 and other_repo["blobs_mounted"] == 3  # cross-repository mount
    assert result["bytes_moved"] == 0
    assert sha(raw_manifest(ENDPOINTS["test"], "%s/other:v1" % namespace)) == digest


# ---------------------------------------------------------------------------------------------
# manifest lists and signatures
# ---------------------------------------------------------------------------------------------


def test_two_platform_index_and_its_signature_travel(lab, token, namespace, approve, reconcile, raw_manifest):
    built = pl.push_index(lab, namespace, "multi", "v1")
    signature = pl.push_signature(lab, namespace, "multi", built["index"], "sig")
    attestation = pl.push_signature(lab, namespace, "multi", built["index"], "att")
    approve(namespace, "multi:v1", add=["test"])
    result = reconcile(namespace=[namespace], stream="multi", tag="v1")
    assert not result.get("failed"), result.get("msg")
    repo = "%s/multi" % namespace
    index = raw_manifest(ENDPOINTS["test"], "%s:v1" % repo)
    assert sha(index) == built["index"]
    assert json.loads(index)["mediaType"] == pl.oci.OCI_INDEX
    for child in built["children"]:
        assert sha(raw_manifest(ENDPOINTS["test"], "%s@%s" % (repo, child))) == child
    hexpart = built["index"].split(":")[1]
    for suffix, digest in (("sig", signature), ("att", attestation)):
        assert sha(raw_manifest(ENDPOINTS["test"], "%s:sha256-%s.%s" % (repo, hexpart, suffix))) == digest
    artifacts = [a for a in result["copies"] if a.get("artifact_of")]
    assert sorted(a["tag"] for a in artifacts) == ["sha256-%s.att" % hexpart, "sha256-%s.sig" % hexpart]
    registry = pl.client(lab, ENDPOINTS["test"], token)
    try:
        problems, error = pl.registry_consistency(registry, repo)
    finally:
        registry.close()
    assert error is None and problems == []

    # demoted: the index and its artifacts leave together
    approve(namespace, "multi:v1", remove=["test"])
    result = reconcile(namespace=[namespace])
    assert not result.get("failed"), result.get("msg")
    assert sorted(a["tag"] for a in result["removals"]) == sorted(
        ["v1", "sha256-%s.sig" % hexpart, "sha256-%s.att" % hexpart])
    assert tags_of(lab, token, ENDPOINTS["test"], repo) == []


# ---------------------------------------------------------------------------------------------
# demotion
# ---------------------------------------------------------------------------------------------


def test_demotion_removes_the_tag(lab, token, namespace, approve, reconcile, raw_manifest):
    lab.push(namespace, "app", "v1", 2, SMALL)
    lab.push(namespace, "app", "v2", 2, SMALL)
    approve(namespace, "app:v1", add=["test"])
    approve(namespace, "app:v2", add=["test"])
    assert reconcile(namespace=[namespace])["summary"] == {"copied": 2}
    approve(namespace, "app:v1", remove=["test"])
    result = reconcile(namespace=[namespace])
    assert not result.get("failed"), result.get("msg")
    removal = results(result, "removed", tag="v1")[0]
    assert removal["method"] == "delete" and removal["environment"] == "test"
    assert tags_of(lab, token, ENDPOINTS["test"], "%s/app" % namespace) == ["v2"]
    assert reconcile(namespace=[namespace])["changed"] is False


def test_demotion_with_a_shared_digest_keeps_the_other_approved_tag(
        lab, token, namespace, approve, reconcile, raw_manifest):
    digest = lab.push(namespace, "app", "v1", 2, SMALL)["digest"]
    pl.tag_in_source(lab, namespace, "app", "stable", digest)
    approve(namespace, "app:v1", add=["test", "uat"])
    approve(namespace, "app:stable", add=["test", "uat"])
    assert reconcile(namespace=[namespace], environment=["test"])["summary"] == {"copied": 2}

    approve(namespace, "app:v1", remove=["test"])
    stop = threading.Event()
    gaps = []

    def watch():  # `stable` must be served at every moment of the demotion
        registry = pl.client(lab, ENDPOINTS["test"], token)
        try:
            while not stop.is_set():
                found = registry.head_manifest("%s/app" % namespace, "stable")
                if not found or found["digest"] != digest:
                    gaps.append(found)
                time.sleep(0.005)
        finally:
            registry.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = reconcile(namespace=[namespace], environment=["test"])
    finally:
        stop.set()
        watcher.join()
    assert not result.get("failed"), result.get("msg")
    removal = results(result, "removed", tag="v1")[0]
    assert removal["method"] == "retarget" and removal["keeps"] == ["stable"]
    assert "stable" in removal["reason"]
    assert tags_of(lab, token, ENDPOINTS["test"], "%s/app" % namespace) == ["stable"]
    assert sha(raw_manifest(ENDPOINTS["test"], "%s/app:stable" % namespace)) == digest
    assert gaps == [], "the approved tag was not served for a moment: %s" % gaps[:3]
    assert reconcile(namespace=[namespace], environment=["test"])["changed"] is False


# ---------------------------------------------------------------------------------------------
# policies
# ---------------------------------------------------------------------------------------------


def test_after_gate_prod_only_takes_digests_in_uat(lab, token, namespace, approve, reconcile, raw_manifest):
    digest = lab.push(namespace, "app", "v1", 2, SMALL)["digest"]
    approve(namespace, "app:v1", add=["prod"])
    result = reconcile(namespace=[namespace])
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    gated = results(result, "gated", env="prod")
    assert len(gated) == 1 and "after uat" in gated[0]["reason"]
    assert raw_manifest(ENDPOINTS["prod"], "%s/app:v1" % namespace) is None

    approve(namespace, "app:v1", add=["uat"])
    result = reconcile(namespace=[namespace])
    assert not result.get("failed"), result.get("msg")
    copies = {a["environment"]: a for a in result["copies"]}
    assert copies["uat"]["result"] == "copied" and copies["prod"]["result"] == "copied"
    assert copies["prod"]["requires"]["environment"] == "uat"
    assert sha(raw_manifest(ENDPOINTS["prod"], "%s/app:v1" % namespace)) == digest


def test_scan_gate_reads_the_verdict_per_digest(lab, token, namespace, approve, reconcile):
    first = lab.push(namespace, "app", "v1", 1, SMALL)["digest"]
    lab.push(namespace, "app", "v2", 1, SMALL)
    approve(namespace, "app:v1", add=["test"])
    approve(namespace, "app:v2", add=["test"])
    streams = DynamicClient(lab.api_client(lab.layout.registry_cluster)).resources.get(
        api_version="image.openshift.io/v1", kind="ImageStream")
    streams.patch(name="app", namespace=namespace, content_type="application/merge-patch+json",
                  body={"metadata": {"annotations": {"scan.example.com/result": json.dumps({first: "passed"})}}})
    environments = pl.lab_environments(lab)
    for env in environments:
        if env["name"] == "test":
            env["policy"] = {"scan_gate": {"annotation": "scan.example.com/result", "value": "passed"}}
    result = reconcile(namespace=[namespace], environment=["test"], environments=environments)
    assert not result.get("failed"), result.get("msg")
    assert [a["tag"] for a in results(result, "copied")] == ["v1"]
    gated = results(result, "gated", tag="v2")
    assert len(gated) == 1 and "has no result" in gated[0]["reason"]


# ---------------------------------------------------------------------------------------------
# reliability
# ---------------------------------------------------------------------------------------------


def test_source_retargeted_between_plan_and_copy_is_not_copied(lab, token, namespace, approve, reconcile,
                                                               raw_manifest):
    planned = lab.push(namespace, "app", "v1", 2, SMALL)["digest"]
    lab.push(namespace, "app", "v2", 2, SMALL)
    approve(namespace, "app:v1", add=["test"])
    approve(namespace, "app:v2", add=["test"])
    # The registry tag moves; the ImageStream (the plan's input) still says `planned`.
    moved = pl.push_unrecorded(lab, namespace, "app", "v1", seed="moved " + namespace)
    assert moved != planned
    result = reconcile(namespace=[namespace])
    assert result.get("failed") is True
    failure = results(result, "failed", tag="v1")[0]
    assert "source moved" in failure["error"] and moved in failure["error"] and planned in failure["error"]
    assert results(result, "copied", tag="v2"), "the other tag must still be copied"
    assert raw_manifest(ENDPOINTS["test"], "%s/app:v1" % namespace) is None
    assert raw_manifest(ENDPOINTS["test"], "%s/app@%s" % (namespace, moved)) is None, "the moved digest was copied"
    assert "1 tag failed" in result["msg"]

    pl.image.record_push(lab.api_client(lab.layout.registry_cluster), namespace, "app", "v1", moved,
                         lab.layout.integrated_endpoint)
    result = reconcile(namespace=[namespace])
    assert not result.get("failed"), result.get("msg")
    assert sha(raw_manifest(ENDPOINTS["test"], "%s/app:v1" % namespace)) == moved


@pytest.fixture
def extra_registry(lab, tmp_path):
    registry = pl.ExtraRegistry(lab, str(tmp_path / "extra")).start()
    yield registry
    registry.stop()


def chaos_environments(lab, endpoint):
    """The lab's environments plus `chaos`, our own registry (maybe behind the fault injector)."""
    return pl.lab_environments(lab) + [{"name": "chaos", "route_host": "chaos-registry.apps.registry.lab.local",
                                        "endpoint": endpoint, "ca_cert": lab.ca.cert_path}]


def test_5xx_and_hanging_registry_bounded_retries_then_per_tag_failure(
        lab, namespace, approve, reconcile, extra_registry):
    for stream in ("good", "flaky", "broken", "hangs"):
        lab.push(namespace, stream, "v1", 1, SMALL)
        approve(namespace, "%s:v1" % stream, add=["chaos"])
    flaky_seen = []

    def rule(method, path):
        if "/broken/manifests/" in path and method == "PUT":
            return ("status", 503)
        if "/hangs/manifests/" in path and method == "PUT":
            return ("hang", 5)
        if "/flaky/manifests/v1" in path and method == "PUT":
            flaky_seen.append(path)
            if len(flaky_seen) <= 2:
                return ("status", 502)
        return None

    proxy = pl.FaultProxy(lab, extra_registry.endpoint, rule).start()
    try:
        started = time.monotonic()
        result = reconcile(namespace=[namespace], environment=["chaos"], environments=chaos_environments(
            lab, proxy.endpoint), retries=2, timeout=2)
        elapsed = time.monotonic() - started
    finally:
        proxy.stop()
    assert result.get("failed") is True
    assert sorted(a["repository"].split("/")[1] for a in results(result, "copied")) == ["flaky", "good"]
    broken = results(result, "failed", tag="v1")
    by_stream = dict((a["repository"].split("/")[1], a["error"]) for a in broken)
    assert sorted(by_stream) == ["broken", "hangs"]
    assert "HTTP 503" in by_stream["broken"] and "after 3 attempts" in by_stream["broken"]
    assert "registry %s (chaos)" % proxy.endpoint in by_stream["broken"]
    assert "%s/broken" % namespace in by_stream["broken"]
    assert "timed out" in by_stream["hangs"] and "after 3 attempts" in by_stream["hangs"]
    # bounded: retries=2 means exactly 3 attempts of the failing request, no more
    assert proxy.count("PUT", "/broken/manifests/", "status") == 3
    assert proxy.count("PUT", "/hangs/manifests/", "hang") == 3
    assert result["stats"]["retries"] >= 2 + 2 + 2
    assert elapsed < 120
    assert "2 tags failed" in result["msg"]


def test_destination_killed_mid_copy_then_rerun_completes(lab, token, namespace, approve, reconcile,
                                                          extra_registry):
    digest = lab.push(namespace, "app", "v1", 4, 256 * 1024)["digest"]
    approve(namespace, "app:v1", add=["chaos"])
    killed = threading.Event()

    def kill_on_first_upload(method, path):
        if method == "PATCH" and "/blobs/uploads/" in path and not killed.is_set():
            def kill():
                killed.set()
                extra_registry.kill()
            return ("hook", kill)
        return None

    proxy = pl.FaultProxy(lab, extra_registry.endpoint, kill_on_first_upload).start()
    direct = pl.client(lab, extra_registry.endpoint, token, retries=1, backoff=0.05, timeout=(2.0, 5.0))
    stop = threading.Event()
    violations, checks = [], []

    def watch():  # at no time may the destination serve a tag whose blobs are missing
        while not stop.is_set():
            try:
                problems, error = pl.registry_consistency(direct, "%s/app" % namespace)
            except pl.oci.RegistryError:
                problems, error = [], "down"
            checks.append("down" if error else "ok")
            violations.extend(problems)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = reconcile(namespace=[namespace], environment=["chaos"],
                           environments=chaos_environments(lab, proxy.endpoint), retries=1, timeout=5)
        assert killed.is_set()
        assert result.get("failed") is True
        failure = results(result, "failed", tag="v1")[0]
        assert "registry %s (chaos)" % proxy.endpoint in failure["error"]
        assert "%s/app" % namespace in failure["error"]

        extra_registry.start()  # same storage, same port: what survived the kill
        assert "v1" not in (direct.list_tags("%s/app" % namespace) or [])
        rerun = reconcile(namespace=[namespace], environment=["chaos"],
                          environments=chaos_environments(lab, proxy.endpoint))
        assert not rerun.get("failed"), rerun.get("msg")
        assert rerun["summary"] == {"copied": 1}
        manifest = direct.get_manifest("%s/app" % namespace, "v1")
        assert manifest["digest"] == digest
        time.sleep(0.2)
    finally:
        stop.set()
        watcher.join()
        proxy.stop()
        direct.close()
    assert "ok" in checks and "down" in checks, "the watcher must have seen the registry up and down"
    assert violations == []


# ---------------------------------------------------------------------------------------------
# playbooks
# ---------------------------------------------------------------------------------------------


def test_reconcile_and_audit_playbooks(lab, token, namespace, approve, run_playbook, raw_manifest):
    digest = lab.push(namespace, "app", "v1", 1, SMALL)["digest"]
    approve(namespace, "app:v1", add=["test"])
    audit = run_playbook("playbooks/audit.yml", extravars={"project": namespace})
    assert audit.status == "successful", audit.stdout_text[-3000:]
    assert "%s/app:v1" % namespace in audit.stdout_text and "test: missing" in audit.stdout_text

    run = run_playbook("playbooks/reconcile.yml", extravars={"project": namespace})
    assert run.status == "successful", run.stdout_text[-3000:]
    assert sha(raw_manifest(ENDPOINTS["test"], "%s/app:v1" % namespace)) == digest

    audit = run_playbook("playbooks/audit.yml", extravars={"project": namespace})
    assert audit.status == "successful", audit.stdout_text[-3000:]
    text = re.sub(r"\x1b\[[0-9;]*m", "", audit.stdout_text)
    line = [row for row in text.splitlines() if "%s/app:v1" % namespace in row][0]
    cells = line.split()
    assert cells[-1] == "none" and cells[-2] == "test" and cells[-3] == "test", line


def test_promote_and_demote_playbooks_reconcile_the_tag(lab, token, namespace, run_playbook, raw_manifest):
    digest = lab.push(namespace, "app", "v1", 1, SMALL)["digest"]
    other = lab.push(namespace, "app", "v2", 1, SMALL)["digest"]
    survey = {"project": namespace, "image": "app:v1", "env": "test"}
    promoted = run_playbook("playbooks/promote.yml", extravars=survey)
    assert promoted.status == "successful", promoted.stdout_text[-3000:]
    assert sha(raw_manifest(ENDPOINTS["test"], "%s/app:v1" % namespace)) == digest
    assert raw_manifest(ENDPOINTS["test"], "%s/app@%s" % (namespace, other)) is None  # only the tag it changed
    assert '{"copied": 1}' in promoted.stdout_text

    demoted = run_playbook("playbooks/demote.yml", extravars=survey)
    assert demoted.status == "successful", demoted.stdout_text[-3000:]
    assert '{"removed": 1}' in demoted.stdout_text
    assert tags_of(lab, token, ENDPOINTS["test"], "%s/app" % namespace) == []

    whitelist_only = run_playbook("playbooks/promote.yml", extravars=dict(survey, reconcile=False))
    assert whitelist_only.status == "successful", whitelist_only.stdout_text[-3000:]
    assert tags_of(lab, token, ENDPOINTS["test"], "%s/app" % namespace) == []
