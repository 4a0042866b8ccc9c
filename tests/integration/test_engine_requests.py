"""What the promotion engine asks of the registries, counted by the registries themselves.

Each lab registry writes an access log line per request; these tests read the lines of their
own (unique) namespace that a promotion added, so the counts do not rest on the module's own
counters. Promotions run as a user runs them: ansible-playbook playbooks/promote.yml on the lab
inventory (through ansible-runner, as AWX runs it). A registry that asks the engine to slow down
(429 or 503 with Retry-After) is seen through a fault proxy in front of a lab registry, which
counts and times what reached it."""
import json

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import RETRY_AFTER_CAP
from ansible_collections.segmented.registry.plugins.module_utils.promotion.state import read_state
from tests.integration import promotion_lab as pl

SMALL = 64 * 1024
ENVIRONMENTS = ("test", "uat", "prod")


class AccessLogs:
    """The requests each lab registry logged since the last ``since()`` call."""

    def __init__(self, lab):
        self.logs = {env: pl.RegistryLog(lab, env) for env, _endpoint in lab.layout.registries}

    def since(self, repository):
        """``{environment: [(method, path)]}`` of requests to ``repository`` logged since the last call."""
        return {env: [(method, uri.split("?")[0]) for method, uri, _status in log.requests(f"/v2/{repository}/")]
                for env, log in self.logs.items()}


def count(requests, method, prefix):
    return sum(1 for m, path in requests if m == method and path.startswith(prefix))


@pytest.fixture
def job(run_playbook, tmp_path):
    """job(playbook, **extravars) -> the report of the reconcile step of that playbook run (None:
    none): the reconcile module's report, or the ``reconcile`` part of the promote module's."""
    def run(playbook, **extravars):
        report = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.json"
        runner = run_playbook(playbook, extravars=dict(extravars, segmented_registry_reconcile_report_file=str(report)))
        assert runner.status == "successful", runner.stdout_text[-3000:]
        if not report.exists():
            return None
        result = json.loads(report.read_text())
        return result.get("reconcile", result)
    return run


def test_source_checked_once_per_tag_and_no_blob_request_for_a_digest_already_there(lab, unique, job):
    namespace = "er-" + unique
    digest = lab.push(namespace, "app", "v1", 3, SMALL)["digest"]
    pl.tag_in_source(lab, namespace, "app", "v2", digest)  # more tags of the same image
    pl.tag_in_source(lab, namespace, "app", "v3", digest)
    repository = namespace + "/app"
    source = pl.client(lab, lab.layout.integrated_endpoint, pl.promoter_token(lab))
    try:
        manifest = source.get_manifest(repository, digest)
    finally:
        source.close()
    blobs = pl.manifests.parse_manifest(manifest["data"], manifest["media_type"])["blobs"]
    image_bytes = sum(blob["size"] for blob in blobs)
    logs = AccessLogs(lab)
    everywhere = ",".join(ENVIRONMENTS)

    # v1 into three environments (prod after uat, in a later wave): every blob uploaded once per
    # registry, the source asked once whether the tag still serves the planned digest
    first = job("playbooks/promote.yml", project=namespace, image="app:v1", env=everywhere)
    seen = logs.since(repository)
    assert first["summary"] == {"copied": 3}, first["summary"]
    assert count(seen["default"], "HEAD", f"/v2/{repository}/manifests/v1") == 1, seen["default"]
    for env in ENVIRONMENTS:
        assert count(seen[env], "PATCH", f"/v2/{repository}/blobs/uploads/") == len(blobs), (env, seen[env])
        assert count(seen[env], "PUT", f"/v2/{repository}/manifests/v1") == 1, (env, seen[env])
    assert first["stats"]["blob_bytes_sent"] == len(ENVIRONMENTS) * image_bytes == first["bytes_moved"]

    # v2, the same digest, already in each repository; promote.yml reconciles v2 alone, so its
    # state read does not see v1: one manifest HEAD by digest says the image is there, then only
    # the tag is PUT, no blob request at all; the source checked once for the three environments
    second = job("playbooks/promote.yml", project=namespace, image="app:v2", env=everywhere)
    seen = logs.since(repository)
    assert second["summary"] == {"copied": 3}, second["summary"]
    assert count(seen["default"], "HEAD", f"/v2/{repository}/manifests/v2") == 1, seen["default"]
    for env in ENVIRONMENTS:
        assert count(seen[env], "HEAD", f"/v2/{repository}/blobs/") == 0, (env, seen[env])
        assert count(seen[env], "POST", f"/v2/{repository}/blobs/uploads/") == 0, (env, seen[env])
        assert count(seen[env], "HEAD", f"/v2/{repository}/manifests/{digest}") == 1, (env, seen[env])
        assert count(seen[env], "PUT", f"/v2/{repository}/manifests/v2") == 1, (env, seen[env])
    for copy in second["copies"]:
        assert (copy["blobs_present"], copy["blobs_sent"], copy["bytes_sent"]) == (0, 0, 0), copy
    assert second["stats"]["blob_bytes_sent"] == 0

    # v3 approved, then a reconcile of the whole namespace: its state read shows the digest in
    # each repository, so not even the manifest HEAD by digest is needed
    job("playbooks/promote.yml", project=namespace, image="app:v3", env=everywhere, reconcile=False)
    logs.since(repository)
    third = job("playbooks/reconcile.yml", project=namespace)
    seen = logs.since(repository)
    assert third["summary"] == {"copied": 3, "skipped": 6}, third["summary"]
    assert count(seen["default"], "HEAD", f"/v2/{repository}/manifests/v3") == 1, seen["default"]
    for env in ENVIRONMENTS:
        assert count(seen[env], "HEAD", f"/v2/{repository}/blobs/") == 0, (env, seen[env])
        assert count(seen[env], "HEAD", f"/v2/{repository}/manifests/{digest}") == 0, (env, seen[env])
        assert count(seen[env], "PUT", f"/v2/{repository}/manifests/v3") == 1, (env, seen[env])
    assert third["stats"]["blob_bytes_sent"] == 0


def test_a_registry_that_asks_to_wait_is_waited_for_not_hammered(lab, unique, job):
    """The test registry behind a fault proxy answers the engine's first tag listing with 429 and
    Retry-After: 2: the engine's state read sends exactly one more listing, no sooner than 2 s
    after the 429 (a bound the registry set, not a measure of speed), and reads the promoted tag.
    A Retry-After beyond what a job waits (503, an hour) is not retried at all: one request,
    and the error says how long the registry asked for."""
    namespace = "ra-" + unique
    digest = lab.push(namespace, "app", "v1", 1, SMALL)["digest"]
    job("playbooks/promote.yml", project=namespace, image="app:v1", env="test")
    repository = f"{namespace}/app"
    listing = f"/v2/{repository}/tags/list"
    answers = [("status", 429, {"Retry-After": "2"})]

    def rule(method, path):
        return answers.pop(0) if method == "GET" and path.startswith(listing) and answers else None

    route_host = dict(lab.layout.registries)["test"]
    proxy = pl.FaultProxy(lab, f"{route_host}:443", rule, pass_host=False).start()
    client = pl.client(lab, proxy.endpoint, pl.promoter_token(lab), name="test")
    try:
        state, errors = read_state(client, [repository])
        assert errors == {} and state == {repository: {"v1": digest}}, errors
        listings = [e for e in proxy.events if e["method"] == "GET" and e["path"].startswith(listing)]
        assert [e["status"] for e in listings] == [429, 200], listings
        # from the 429's arrival (before the engine read it) to the retry's: never under 2 s
        assert listings[1]["t_start"] - listings[0]["t_start"] >= 2, listings

        answers.append(("status", 503, {"Retry-After": "3600"}))
        state, errors = read_state(client, [repository])
    finally:
        client.close()
        proxy.stop()
    assert state == {} and list(errors) == [repository], (state, errors)
    assert proxy.count("GET", listing) == 3  # the two above, and this one alone
    assert "HTTP 503" in errors[repository] and "it asked to wait 3600 s (Retry-After), longer than the " \
        f"{RETRY_AFTER_CAP} s a promotion job waits" in errors[repository], errors[repository]
