"""The copier's golden copy cases (components/copier/testdata/golden/*.json, described in its
README.md) run against the collection's Python engine, promotion.execute.Executor, as
components/copier/golden_test.go runs them against the copier: the two engines must not disagree.

components/copier/internal/cmd/golden-registries (built once per session with Go) serves a case's
registries (go-containerregistry's in-memory registry, internal/testregistry) on 127.0.0.1, seeded
as golden_test.go seeds them, and prints their endpoints and the images' digests. Each case's
items become the plan's copy actions, run once per ``runs`` entry by a new Executor with
RegistryClient clients (TLS verified against the served certificate), and each item's result,
the summary and, after the runs, ``expect_tags`` are checked as golden_test.go checks the
copier's output lines.

How the copier's plan maps onto the Executor:
- ``present`` -> ``actual`` (``{env: {repo: {tag: digest}}}``): the Executor reads only its
  digests (mount sources, images already there), as copy_jobs.plan_document sends the copier
  only those; the tags are named after the digests.
- ``by_digest`` -> ``pinned_from`` (a rollback's pin), which the Executor reads as "check the
  source by digest".
- an item's result line -> the action after ``execute``: ``result``, ``error``, ``reason`` and the
  counters are set on it as the copier's line holds them; the exit code is 1 when an item failed.
- ``insecure`` (plain HTTP): the collection's modules reach every registry over HTTPS, the copier
  reaches a Service over HTTP; here the Python client is given ``scheme="http"`` for such a
  registry, so that the copy itself is compared.
"""

import glob
import json
import os
import re
import subprocess

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.oci.client import RegistryClient
from ansible_collections.segmented.registry.plugins.module_utils.promotion.execute import Executor
from ansible_collections.segmented.registry.plugins.module_utils.promotion.plan import summarize
from tests.unit.components.test_go_components import REPO, _run

GOLDEN = os.path.join(REPO, "components", "copier", "testdata", "golden")
CASES = sorted(glob.glob(os.path.join(GOLDEN, "*.json")))
TEMPLATE = re.compile(r"\{(source|dest:[^}]+|digest:[^}]+|hex:[^}]+)\}")

# the keys of the format (README.md); one this test does not map fails it rather than being ignored
CASE_KEYS = {"description", "images", "source", "destinations", "present", "items", "runs", "expect_tags"}
REGISTRY_KEYS = {"insecure", "deny_push", "repositories"}
ITEM_KEYS = {"id", "environment", "repository", "source_repository", "tag", "digest", "by_digest", "requires", "artifact_of"}
RUN_KEYS = {"exit", "results", "summary"}
SUMMARY_KEYS = {"copied", "failed", "gated", "bytes_sent"}
# the digest a by_digest item's rollback was pinned against: the case does not say, and the
# Executor reads only that pinned_from is set
PINNED_FROM = "sha256:" + "0" * 64


@pytest.fixture(scope="session")
def golden_registries(tmp_path_factory):
    """The golden-registries program, built once."""
    binary = str(tmp_path_factory.mktemp("golden-registries") / "golden-registries")
    result = _run("copier", "go", "build", "-o", binary, "./internal/cmd/golden-registries")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return binary


class Served:
    """A case's registries, served by golden-registries until ``close``."""

    def __init__(self, binary, case_path, tmp_path):
        self.stderr_path = tmp_path / "golden-registries.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen([binary, case_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        line = self.process.stdout.readline()
        if not line:
            self.close()
            pytest.fail(f"golden-registries {os.path.basename(case_path)} printed nothing: {self.stderr_path.read_text()}")
        self.info = json.loads(line)
        self.hosts = {"source": self.info["source"]["registry"]}
        self.hosts.update({env: entry["registry"] for env, entry in self.info["destinations"].items()})

    def close(self):
        self.process.stdin.close()  # the program serves until its stdin is closed
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()

    def digest(self, name):
        assert name in self.info["digests"], f"the case names image {name!r}, which its images do not define"
        return self.info["digests"][name]

    def resolve(self, text):
        """``{digest:NAME}``, ``{hex:NAME}``, ``{source}`` and ``{dest:ENV}`` in ``text`` replaced."""

        def one(match):
            kind, _colon, name = match.group(1).partition(":")
            if kind == "source":
                return self.hosts["source"]
            if kind == "dest":
                assert name in self.hosts, f"{match.group(0)}: the case has no destination {name!r}"
                return self.hosts[name]
            digest = self.digest(name)
            return digest[len("sha256:") :] if kind == "hex" else digest

        return TEMPLATE.sub(one, text)

    def client(self, name):
        """A RegistryClient of the registry ``name`` ("source" or an environment)."""
        entry = self.info["source"] if name == "source" else self.info["destinations"][name]
        return RegistryClient(
            entry["registry"],
            ca_cert=entry.get("ca_file"),
            name="default (integrated registry)" if name == "source" else name,
            scheme="http" if entry["insecure"] else "https",
            timeout=20,
            retries=2,
            backoff=0.01,
        )


def check_format(case):
    def unknown(what, keys, known):
        extra = set(keys) - known
        assert not extra, f"{what}: {sorted(extra)} not mapped onto the Python Executor by this test (see its docstring); map them or say why not"

    unknown("case", case, CASE_KEYS)
    for name, spec in [("source", case["source"])] + sorted(case["destinations"].items()):
        unknown(name, spec, REGISTRY_KEYS)
    for item in case["items"]:
        unknown(f"item {item['id']}", item, ITEM_KEYS)
    for number, run in enumerate(case["runs"], 1):
        unknown(f"run {number}", run, RUN_KEYS)
        unknown(f"run {number} summary", run.get("summary") or {}, SUMMARY_KEYS)
        assert run["exit"] in (0, 1), f"run {number}: exit {run['exit']} (the plan cannot be used) has no Executor equivalent"


def actions_of(case, served):
    """The case's items as the plan's copy actions."""
    actions = []
    for item in case["items"]:
        action = {
            "action": "copy",
            "id": item["id"],
            "environment": item["environment"],
            "repository": item["repository"],
            "tag": served.resolve(item["tag"]),
            "digest": served.digest(item["digest"]),
        }
        if item.get("source_repository"):
            action["source_repository"] = item["source_repository"]
        if item.get("by_digest"):
            action["pinned_from"] = PINNED_FROM
        if item.get("requires"):
            requires = item["requires"]
            action["requires"] = {"environment": requires["environment"], "repository": requires["repository"], "digest": served.digest(requires["digest"])}
        if item.get("artifact_of"):
            action["artifact_of"] = served.digest(item["artifact_of"])
        actions.append(action)
    return actions


def actual_of(case, served):
    return {
        env: {repo: {served.digest(name): served.digest(name) for name in names} for repo, names in repos.items()}
        for env, repos in (case.get("present") or {}).items()
    }


def mismatches(served, what, want, got):
    """What in ``got`` (an action after execute) differs from ``want`` (a case's expected fields)."""
    problems = []
    for key, value in sorted(want.items()):
        if key == "error_contains":
            text = got.get("error") or ""
            for part in value if isinstance(value, list) else [value]:
                if served.resolve(part) not in text:
                    problems.append(f"{what}: error {text!r} does not contain {served.resolve(part)!r}")
        elif key == "absent":
            problems.extend(f"{what}: has {name!r}: {got[name]!r}" for name in value if name in got)
        else:
            expected = served.resolve(value) if isinstance(value, str) else value
            if got.get(key) != expected:
                problems.append(f"{what} {key}: Python gives {got.get(key)!r}, the case wants {expected!r}")
    return problems


def test_every_golden_case_is_run():
    assert len(CASES) >= 9, f"{len(CASES)} golden cases in {GOLDEN}, expected at least 9"


@pytest.mark.parametrize("case_path", CASES, ids=[os.path.basename(path)[: -len(".json")] for path in CASES])
def test_golden_case_against_python_executor(golden_registries, case_path, tmp_path):
    with open(case_path, encoding="utf-8") as handle:
        case = json.load(handle)
    check_format(case)
    served = Served(golden_registries, case_path, tmp_path)
    clients = []
    try:
        source = served.client("source")
        destinations = {env: served.client(env) for env in case["destinations"]}
        clients = [source, *destinations.values()]
        problems = []
        for number, run in enumerate(case["runs"], 1):
            actions = actions_of(case, served)
            Executor(source, destinations, actual_of(case, served), image_workers=4, blob_workers=6).execute(actions)
            by_id = {str(action["id"]): action for action in actions}
            problems.extend(f"run {number} item {action['id']}: no result" for action in actions if "result" not in action)
            exit_code = 1 if any(action.get("result") == "failed" for action in actions) else 0
            if exit_code != run["exit"]:
                problems.append(f"run {number}: exit {exit_code} (an item failed or not), the case wants {run['exit']}")
            for item_id, want in sorted(run["results"].items()):
                problems.extend(mismatches(served, f"run {number} item {item_id}", want, by_id[item_id]))
            counts = summarize(actions)
            summary = {key: counts.get(key, 0) for key in ("copied", "failed", "gated")}
            summary["bytes_sent"] = sum(action.get("bytes_sent", 0) for action in actions)
            problems.extend(mismatches(served, f"run {number} summary", run.get("summary") or {}, summary))
            if problems:
                problems.append(f"run {number} actions: {json.dumps(actions, indent=1, sort_keys=True)}")
                break
        for env, repos in sorted((case.get("expect_tags") or {}).items()):
            for repo, refs in sorted(repos.items()):
                for ref, name in sorted(refs.items()):
                    found = destinations[env].head_manifest(repo, served.resolve(ref))
                    got = found["digest"] if found else None
                    want = served.digest(name) if name else None
                    if got != want:
                        problems.append(f"destination {env} {repo}:{served.resolve(ref)} serves {got}, the case wants {want} ({name or 'none'})")
        assert not problems, "\n".join(problems)
    finally:
        for client in clients:
            client.close()
        served.close()
