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

from lab import labctl
from tests.integration import promotion_lab as pl
from tests.integration.runs import task_result

RC = "tests/integration/playbooks/reconcile.yml"
TE = "tests/integration/playbooks/tag_environments.yml"
# the environment registries, as inventories/lab defines them
ENDPOINTS = {env: endpoint for env, endpoint, *_rest in labctl.Layout().registries if env != "default"}
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


def rc_extravars(lab, lab_auth, out, check=False, **args):
    """The extra vars of one reconcile.yml run; an option given as None is left out."""
    options = {"environments": pl.lab_environments(lab), "integrated_registry": lab.layout.integrated_endpoint,
               "integrated_ca_cert": lab.ca.cert_path}
    options.update(args)
    options = {key: value for key, value in options.items() if value is not None}
    return {"rc_args": options, "rc_auth": lab_auth, "rc_check": check, "rc_out": str(out)}


@pytest.fixture
def reconcile(lab, token, run_playbook, lab_auth, tmp_path):
    """reconcile(check=False, environments=None, **options) -> the module's registered result."""
    def run(check=False, **args):
        out = tmp_path / (f"rc-{uuid.uuid4().hex}.json")
        # the token given as registry_token (no_log): the leak checks below look for the very
        # secret the module uses; test_minted_token_never_leaks covers the minted-token path
        args.setdefault("registry_token", token)
        runner = run_playbook(RC, extravars=rc_extravars(lab, lab_auth, out, check, **args))
        assert runner.status == "successful", runner.stdout_text[-3000:]
        result = json.loads(out.read_text())
        assert token not in json.dumps(result), "a registry token leaked into the result"
        assert token not in runner.stdout_text, "a registry token leaked into the output"
        return result
    return run


@pytest.fixture
def approve(run_playbook, lab_auth):
    """approve(namespace, "stream:tag", add=[...] / remove=[...]): issue 3's module."""
    def run(namespace, name, **change):
        runner = run_playbook(TE, extravars={"te_args": dict(change, namespace=namespace, name=name),
                                             "te_auth": lab_auth})
        assert runner.status == "successful", runner.stdout_text[-3000:]
        result = task_result(runner, "Edit the environment list")
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
                               "--cert-dir", lab.trust_dir, f"docker://{endpoint}/{reference}"],
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


def jwt_claims(token):
    """The claims of a JWT (not verified: only to tell whose token it is)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def secret_pieces(text, width=32, step=8):
    """``width``-character pieces of ``text`` every ``step`` characters: any
    ``width + step - 1`` consecutive characters of ``text`` contain one."""
    return {text[i:i + width] for i in range(0, max(len(text) - width, 0) + 1, step)}


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
    assert raw_manifest(ENDPOINTS["test"], f"{namespace}/app:v1") is None, "check mode copied something"

    done = reconcile(namespace=[namespace])
    assert not done.get("failed"), done.get("msg")
    assert done["changed"] is True and done["summary"] == {"copied": 2}
    for env in ("test", "uat"):
        data = raw_manifest(ENDPOINTS[env], f"{namespace}/app:v1")
        assert sha(data) == digest, f"{env} serves other bytes than the source"
    assert raw_manifest(ENDPOINTS["prod"], f"{namespace}/app:v1") is None
    copies = {a["environment"]: a for a in done["copies"]}
    assert copies["test"]["blobs_sent"] == 4 and copies["test"]["bytes_sent"] > 3 * SMALL
    assert done["bytes_moved"] == sum(a["bytes_sent"] for a in done["copies"])
    # one ImageStream list and one history ConfigMap list (one namespace), then the history's get and
    # create; the token is given
    assert done["stats"]["api_calls"] == 4

    again = reconcile(namespace=[namespace])
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False and again["summary"] == {"skipped": 2} and again["bytes_moved"] == 0
    assert set(again["stats"]["registry_requests_by_method"]) <= {"GET", "HEAD"}


def test_second_tag_of_a_present_digest_sends_no_blob(lab, token, namespace, approve, reconcile, raw_manifest):
    """No blob byte goes to the registry: counted in the test registry's own access log (no
    upload PATCH or PUT of this namespace), not only in the module's counters."""
    digest = lab.push(namespace, "app", "v1", 2, SMALL)["digest"]
    approve(namespace, "app:v1", add=["test"])
    log = pl.RegistryLog(lab, "test")
    assert reconcile(namespace=[namespace])["summary"] == {"copied": 1}
    first = log.requests(f"/v2/{namespace}/")
    uploads = [r for r in first if r[0] in ("PATCH", "PUT") and "/blobs/uploads/" in r[1]]
    assert len([r for r in uploads if r[0] == "PATCH"]) == 3, first  # the log does show uploads
    pl.tag_in_source(lab, namespace, "app", "v1-ga", digest)
    pl.tag_in_source(lab, namespace, "other", "v1", digest, from_stream="app")  # same image, another stream
    approve(namespace, "app:v1-ga", add=["test"])
    approve(namespace, "other:v1", add=["test"])
    log = pl.RegistryLog(lab, "test")
    result = reconcile(namespace=[namespace])
    assert not result.get("failed"), result.get("msg")
    seen = log.requests(f"/v2/{namespace}/")
    assert [r for r in seen if r[0] in ("PATCH", "PUT") and "/blobs/uploads/" in r[1]] == [], seen
    mounts = [r for r in seen if r[0] == "POST" and "mount=" in r[1] and r[2] == 201]
    assert len(mounts) == 3 and all(f"/v2/{namespace}/other/" in r[1] for r in mounts), seen
    copies = {(a["repository"], a["tag"]): a for a in result["copies"]}
    same_repo = copies[(f"{namespace}/app", "v1-ga")]
    other_repo = copies[(f"{namespace}/other", "v1")]
    assert same_repo["bytes_sent"] == 0 and same_repo["blobs_present"] == 0  # the image is there: no blob HEAD
    assert other_repo["bytes_sent"] == 0 and other_repo["blobs_mounted"] == 3  # cross-repository mount
    assert result["bytes_moved"] == 0
    assert sha(raw_manifest(ENDPOINTS["test"], f"{namespace}/other:v1")) == digest


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
    repo = f"{namespace}/multi"
    index = raw_manifest(ENDPOINTS["test"], f"{repo}:v1")
    assert sha(index) == built["index"]
    assert json.loads(index)["mediaType"] == pl.manifests.OCI_INDEX
    for child in built["children"]:
        assert sha(raw_manifest(ENDPOINTS["test"], f"{repo}@{child}")) == child
    hexpart = built["index"].split(":")[1]
    for suffix, digest in (("sig", signature), ("att", attestation)):
        assert sha(raw_manifest(ENDPOINTS["test"], f"{repo}:sha256-{hexpart}.{suffix}")) == digest
    artifacts = [a for a in result["copies"] if a.get("artifact_of")]
    assert sorted(a["tag"] for a in artifacts) == [f"sha256-{hexpart}.att", f"sha256-{hexpart}.sig"]
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
        ["v1", f"sha256-{hexpart}.sig", f"sha256-{hexpart}.att"])
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
    assert tags_of(lab, token, ENDPOINTS["test"], f"{namespace}/app") == ["v2"]
    assert reconcile(namespace=[namespace])["changed"] is False


def test_demotion_with_a_shared_digest_keeps_the_other_approved_tag(
        lab, token, namespace, approve, reconcile, extra_registry):
    """`stable` is served at every moment while `v1` (same digest) is removed. The proxy holds
    every manifest PUT and DELETE of the demotion back for DELAY seconds, so a step that takes
    `stable` away (a delete-then-re-tag) leaves a gap that long; from the run's first request
    to the registry on, a watcher HEADs `stable` directly at the registry every few ms and must
    have sampled that window many times."""
    delay = 0.3
    digest = lab.push(namespace, "app", "v1", 2, SMALL)["digest"]
    pl.tag_in_source(lab, namespace, "app", "stable", digest)
    approve(namespace, "app:v1", add=["chaos"])
    approve(namespace, "app:stable", add=["chaos"])
    repository = f"{namespace}/app"
    proxy = pl.FaultProxy(lab, extra_registry.endpoint).start()
    environments = chaos_environments(lab, proxy.endpoint)
    direct = pl.client(lab, extra_registry.endpoint, token)
    try:
        assert reconcile(namespace=[namespace], environment=["chaos"], environments=environments)["summary"] == {
            "copied": 2}
        approve(namespace, "app:v1", remove=["chaos"])
        running = threading.Event()

        def hold_back(method, path):
            running.set()
            return ("delay", delay) if method in ("PUT", "DELETE") and f"/{repository}/manifests/" in path else None

        proxy.rule = hold_back
        direct.head_manifest(repository, "stable")  # the watcher's token, fetched before it starts
        watcher = pl.Sampler(lambda: direct.head_manifest(repository, "stable"), pause=0.005).start(running)
        try:
            result = reconcile(namespace=[namespace], environment=["chaos"], environments=environments)
        finally:
            watcher.stop()
        assert not result.get("failed"), result.get("msg")
        removal = results(result, "removed", tag="v1")[0]
        assert removal["method"] == "retarget" and removal["keeps"] == ["stable"]
        assert "stable" in removal["reason"]
        assert tags_of(lab, token, extra_registry.endpoint, repository) == ["stable"]
        assert direct.get_manifest(repository, "stable")["digest"] == digest
        proxy.rule = lambda method, path: None
        assert reconcile(namespace=[namespace], environment=["chaos"], environments=environments)["changed"] is False
    finally:
        proxy.stop()
        direct.close()
    gaps = [found for _s, _e, found in watcher.samples if not found or found["digest"] != digest]
    assert gaps == [], f"the approved tag was not served for a moment: {gaps[:3]}"
    steps = [e for e in proxy.events if e["what"] == "delay"]
    assert [e["method"] for e in steps] == ["PUT", "DELETE"], steps  # the placeholder, then its digest
    window = watcher.within(steps[0]["t_start"], steps[-1]["t_end"])
    assert len(window) >= 20, f"only {len(window)} samples while the demotion ran"


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
    assert raw_manifest(ENDPOINTS["prod"], f"{namespace}/app:v1") is None

    approve(namespace, "app:v1", add=["uat"])
    result = reconcile(namespace=[namespace])
    assert not result.get("failed"), result.get("msg")
    copies = {a["environment"]: a for a in result["copies"]}
    assert copies["uat"]["result"] == "copied" and copies["prod"]["result"] == "copied"
    assert copies["prod"]["requires"]["environment"] == "uat"
    assert sha(raw_manifest(ENDPOINTS["prod"], f"{namespace}/app:v1")) == digest


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
    assert raw_manifest(ENDPOINTS["test"], f"{namespace}/app:v1") is None
    assert raw_manifest(ENDPOINTS["test"], f"{namespace}/app@{moved}") is None, "the moved digest was copied"
    assert "1 tag failed" in result["msg"]

    pl.image.record_push(lab.api_client(lab.layout.registry_cluster), namespace, "app", "v1", moved,
                         lab.layout.integrated_endpoint)
    result = reconcile(namespace=[namespace])
    assert not result.get("failed"), result.get("msg")
    assert sha(raw_manifest(ENDPOINTS["test"], f"{namespace}/app:v1")) == moved


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
        approve(namespace, f"{stream}:v1", add=["chaos"])
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
    by_stream = {a["repository"].split("/")[1]: a["error"] for a in broken}
    assert sorted(by_stream) == ["broken", "hangs"]
    assert "HTTP 503" in by_stream["broken"] and "after 3 attempts" in by_stream["broken"]
    assert f"registry {proxy.endpoint} (chaos)" in by_stream["broken"]
    assert f"{namespace}/broken" in by_stream["broken"]
    assert "timed out" in by_stream["hangs"] and "after 3 attempts" in by_stream["hangs"]
    # bounded: retries=2 means exactly 3 attempts of the failing request, no more
    assert proxy.count("PUT", "/broken/manifests/", "status") == 3
    assert proxy.count("PUT", "/hangs/manifests/", "hang") == 3
    assert result["stats"]["retries"] >= 2 + 2 + 2
    assert elapsed < 120
    assert "2 tags failed" in result["msg"]


def test_destination_killed_mid_copy_then_rerun_completes(lab, token, namespace, approve, reconcile,
                                                          extra_registry):
    """The registry is killed while a layer's bytes are flowing into it (the proxy streams the
    upload; after 1 MiB it waits until the registry has written part of it to its storage, then
    kills it), never serves the tag meanwhile, and a rerun completes the copy of a two-platform
    index. The order is checked on the wire, where the registry's own refusal of a manifest with
    missing references does not help: no PUT of a platform manifest before each of its blobs,
    and none of the index before each platform manifest, was answered as in place. A watcher
    reads the registry throughout; if it dies, the test fails."""
    layer = 2 * 1024 * 1024
    digest = pl.push_index(lab, namespace, "app", "v1", layer_size=layer)["index"]
    approve(namespace, "app:v1", add=["chaos"])
    repository = f"{namespace}/app"
    killed = {}

    def partial_uploads():  # sizes of the upload sessions in the registry's storage
        return [os.path.getsize(os.path.join(root, "data")) for root, _dirs, files in os.walk(extra_registry.storage)
                if "_uploads" in root and "data" in files]

    def kill():  # once the registry has written some of the body (the proxy holds the rest back)
        deadline = time.monotonic() + 10
        while not any(partial_uploads()) and time.monotonic() < deadline:
            time.sleep(0.01)
        killed.setdefault("at", time.monotonic())  # uploads in parallel may each pull the trigger
        extra_registry.kill()

    def kill_while_uploading(method, path):
        if method == "PATCH" and "/blobs/uploads/" in path and not killed:
            return ("after_bytes", 1024 * 1024, kill)
        return None

    proxy = pl.FaultProxy(lab, extra_registry.endpoint, kill_while_uploading).start()
    direct = pl.client(lab, extra_registry.endpoint, token, retries=1, backoff=0.05, timeout=(2.0, 5.0))

    def probe():  # what the registry serves now: a tag whose manifest, child or blob is missing is a problem
        try:
            tags = direct.list_tags(repository)
            problems = [p for tag in tags for p in pl.tree_problems(direct, repository, tag)]
        except pl.RegistryError:
            return "down", [], []
        return "up", tags, problems

    watcher = pl.Sampler(probe, pause=0.05).start()
    try:
        result = reconcile(namespace=[namespace], environment=["chaos"],
                           environments=chaos_environments(lab, proxy.endpoint), retries=1, timeout=5)
        assert killed, "the registry was never killed"
        assert result.get("failed") is True
        failure = results(result, "failed", tag="v1")[0]
        assert f"registry {proxy.endpoint} (chaos)" in failure["error"]
        assert repository in failure["error"]
        partial = partial_uploads()  # the registry had received part of a layer when it died
        assert any(0 < size < layer for size in partial), f"no partly received layer in the registry: {partial}"

        extra_registry.start()  # same storage, same port: what survived the kill
        restarted = time.monotonic()
        assert direct.head_manifest(repository, "v1") is None
        rerun = reconcile(namespace=[namespace], environment=["chaos"],
                          environments=chaos_environments(lab, proxy.endpoint))
        assert not rerun.get("failed"), rerun.get("msg")
        assert rerun["summary"] == {"copied": 1}
        manifest = direct.get_manifest(repository, "v1")
        assert manifest["digest"] == digest
        children = {child["digest"]: direct.get_manifest(repository, child["digest"]) for child in
                    pl.manifests.parse_manifest(manifest["data"], manifest["media_type"])["children"]}
        assert len(children) == 2
        done = time.monotonic()
        assert watcher.wait_for(lambda samples: sum(1 for started, _ended, (state, tags, _error) in samples
                                                    if started > done and "v1" in tags) >= 3), \
            "the watcher never saw the copied tag"
    finally:
        proxy.stop()
        try:
            watcher.stop()
        finally:
            direct.close()

    states = [value[0] for value in watcher.within(0, killed["at"])]
    assert states.count("up") >= 3, f"too few samples before the kill: {states}"
    assert "down" in [value[0] for value in watcher.within(killed["at"], restarted)]
    violations = [p for _s, _e, (_state, _tags, problems) in watcher.samples for p in problems]
    assert violations == [], violations[:5]

    disorder, answers = [], {}
    for reference, stored in [("v1", manifest)] + list(children.items()):
        puts, problems = pl.manifest_puts_out_of_order(proxy.events, repository, reference,
                                                       pl.manifests.parse_manifest(stored["data"], stored["media_type"]))
        answers[reference] = [put["status"] for put in puts]
        disorder.extend(problems)
    assert disorder == [], disorder
    assert answers == {reference: [201] for reference in answers}, answers  # each manifest PUT once
    assert any(e["method"] == "PATCH" and e["what"] == "upstream down" for e in proxy.events)


# ---------------------------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------------------------


def test_minted_token_never_leaks(lab, token, namespace, approve, run_playbook, lab_auth, tmp_path):
    """The default path: no registry_token, the module mints a TokenRequest token of its
    service_account. The test learns that token where it can be observed without changing the
    product: our own registry sends clients for registry tokens to a proxy in front of the
    token server, which keeps the basic-auth password it is given (the minted token). No 39
    characters of it, raw or as the basic-auth header's base64, may appear in the -vvv output,
    the registered result, the report file or any other file the run left."""
    lab.push(namespace, "app", "v1", 1, SMALL)
    approve(namespace, "app:v1", add=["chaos"])
    realm = pl.FaultProxy(lab, f"{lab.layout.token_server_host}:443", pass_host=False).start()
    registry = pl.ExtraRegistry(lab, str(tmp_path / "extra"), realm=f"https://{realm.endpoint}/token")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    try:
        registry.start()
        extravars = rc_extravars(lab, lab_auth, run_dir / "result.json", namespace=[namespace],
                                 environment=["chaos"], environments=chaos_environments(lab, registry.endpoint),
                                 service_account="segmented-registry-promotion/promoter",
                                 report_file=str(run_dir / "report.json"))
        runner = run_playbook(RC, extravars=extravars, verbosity=3, artifact_dir=str(run_dir / "artifacts"))
    finally:
        registry.stop()
        realm.stop()
    minted = sorted(pair for pair in realm.credentials if pair[1] != token)
    assert len(minted) == 1, f"the token realm saw {len(minted)} passwords besides the test's own token, not 1"
    user, secret = minted[0]
    assert jwt_claims(secret)["sub"] == "system:serviceaccount:segmented-registry-promotion:promoter"
    header, rest = secret.split(".", 1)
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    skip = 4 * ((len(user) + len(header) + 2) // 3) + 4  # the base64 of "user:<JWT header>." is not secret
    pieces = secret_pieces(rest) | secret_pieces(basic[skip:])

    assert runner.status == "successful", runner.stdout_text[-3000:].replace(secret, "<minted token>")
    result = json.loads((run_dir / "result.json").read_text())
    assert not result.get("failed"), result.get("msg")
    # the list, a TokenRequest per audience, the history's list, get and create
    assert result["summary"] == {"copied": 1} and result["stats"]["api_calls"] == 6
    verbose = "module_args" in runner.stdout_text  # (not in the assertion: pytest would print the output)
    assert verbose, "not the -vvv output (the full result, with the module's arguments)"
    written = {str(path.relative_to(run_dir)): path.read_bytes().decode("utf-8", "replace")
               for path in run_dir.rglob("*") if path.is_file()}
    assert {"report.json", "result.json"} <= set(written) and any(name.startswith("artifacts/") for name in written)
    where = dict(written, **{"the -vvv output": runner.stdout_text})
    leaks = sorted(name for name, text in where.items() if any(piece in text for piece in pieces))
    assert leaks == [], f"the minted token leaked into: {', '.join(leaks)}"


# ---------------------------------------------------------------------------------------------
# playbooks
# ---------------------------------------------------------------------------------------------


def test_reconcile_and_audit_playbooks(lab, token, namespace, approve, run_playbook, raw_manifest):
    """audit.yml shows the drift (its table, and the rows JMESPath selects from the result: the
    module's query option), fails on it when asked, reconcile.yml removes it, and a bad JMESPath
    expression is an error that names it."""
    digest = lab.push(namespace, "app", "v1", 1, SMALL)["digest"]
    approve(namespace, "app:v1", add=["test"])
    survey = {"project": namespace, "select": "copies[].[environment, tag]", "fail_on_drift": "true"}
    audit = run_playbook("playbooks/audit.yml", extravars=survey)
    assert audit.status == "failed", audit.stdout_text[-3000:]  # fail_on_drift
    assert f"{namespace}/app:v1" in audit.stdout_text and "test: missing" in audit.stdout_text
    assert task_result(audit, "Show the tags with drift")["msg"] == [{"tag": f"{namespace}/app:v1",
                                                                     "drift": "test: missing"}]
    assert task_result(audit, "Show the tags a policy holds back")["msg"] == []
    assert task_result(audit, "Show the selection")["msg"] == [["test", "v1"]]
    assert "1 tags drift and 0 are held back" in task_result(audit, "Fail when anything drifts")["msg"]

    # a check run's last task prints the plan; a real run's, what it did
    preview = run_playbook("playbooks/reconcile.yml", extravars={"project": namespace}, cmdline="--check")
    assert preview.status == "successful", preview.stdout_text[-3000:]
    plan = task_result(preview, "Say what the run did")["msg"]
    assert [(c["environment"], c["repository"], c["tag"], c["digest"]) for c in plan] == [
        ("test", f"{namespace}/app", "v1", digest)], plan

    run = run_playbook("playbooks/reconcile.yml", extravars={"project": namespace})
    assert run.status == "successful", run.stdout_text[-3000:]
    assert sha(raw_manifest(ENDPOINTS["test"], f"{namespace}/app:v1")) == digest
    assert task_result(run, "Say what the run did")["msg"].startswith('{"copied": 1}, '), run.stdout_text[-3000:]

    audit = run_playbook("playbooks/audit.yml", extravars={"project": namespace, "fail_on_drift": True})
    assert audit.status == "successful", audit.stdout_text[-3000:]
    text = re.sub(r"\x1b\[[0-9;]*m", "", audit.stdout_text)
    line = [row for row in text.splitlines() if f"{namespace}/app:v1" in row][0]
    cells = line.split()
    assert cells[-1] == "none" and cells[-2] == "test" and cells[-3] == "test", line
    assert task_result(audit, "Show the tags with drift")["msg"] == []
    assert not [event for event in audit.events if (event.get("event_data") or {}).get("task") == "Show the selection"
                and event.get("event") == "runner_on_ok"], "a selection was shown without select"

    bad = run_playbook("playbooks/audit.yml", extravars={"project": namespace, "select": "copies[?environment=="})
    assert bad.status == "failed"
    failed = [event["event_data"]["res"] for event in bad.events if event.get("event") == "runner_on_failed"][0]
    assert failed["msg"].startswith("query.selected: 'copies[?environment==' is not a JMESPath expression"), failed
    assert "summary" not in failed  # failed before reading any cluster


def test_promote_and_demote_playbooks_reconcile_the_tag(lab, token, namespace, run_playbook, raw_manifest):
    digest = lab.push(namespace, "app", "v1", 1, SMALL)["digest"]
    other = lab.push(namespace, "app", "v2", 1, SMALL)["digest"]
    survey = {"project": namespace, "image": "app:v1", "env": "test"}
    promoted = run_playbook("playbooks/promote.yml", extravars=survey)
    assert promoted.status == "successful", promoted.stdout_text[-3000:]
    assert sha(raw_manifest(ENDPOINTS["test"], f"{namespace}/app:v1")) == digest
    assert raw_manifest(ENDPOINTS["test"], f"{namespace}/app@{other}") is None  # only the tag it changed
    assert '{"copied": 1}' in " ".join(promoted.stdout_text.split())

    demoted = run_playbook("playbooks/demote.yml", extravars=survey)
    assert demoted.status == "successful", demoted.stdout_text[-3000:]
    assert '{"removed": 1}' in " ".join(demoted.stdout_text.split())
    assert tags_of(lab, token, ENDPOINTS["test"], f"{namespace}/app") == []

    whitelist_only = run_playbook("playbooks/promote.yml", extravars=dict(survey, reconcile=False))
    assert whitelist_only.status == "successful", whitelist_only.stdout_text[-3000:]
    assert tags_of(lab, token, ENDPOINTS["test"], f"{namespace}/app") == []
