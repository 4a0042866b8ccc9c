"""The promotion planner, the audit view and the executor's wave ordering: pure."""

import hashlib
import json

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    Environment,
    ScanGate,
    absent_names,
    promotion_order,
    promotion_targets,
)
from ansible_collections.segmented.registry.plugins.module_utils.promotion.audit import audit_rows, format_table
from ansible_collections.segmented.registry.plugins.module_utils.promotion.execute import _removal_groups, _waves
from ansible_collections.segmented.registry.plugins.module_utils.promotion.plan import plan, summarize
from ansible_collections.segmented.registry.plugins.module_utils.promotion.run import reconcile
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope


def d(seed):
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def environments(**policies):
    """The inventory's ``{name: Environment}``, in the order given, with these policies."""
    return {name: Environment(name=name, route_host=f"{name}-registry.apps.example.com",
                              endpoint=f"{name}-registry.apps.example.com", **policy)
            for name, policy in policies.items()}


ENVS = environments(test={}, uat={}, prod={"after": "uat"})


def entry(tag, digest, envs, namespace="ns", stream="app", error=None):
    item = {"namespace": namespace, "stream": stream, "tag": tag, "digest": digest,
            "environments": envs if envs is not None else None}
    if error:
        item["error"] = error
    return item


def by(actions, kind=None, env=None, tag=None):
    return [a for a in actions if (kind is None or a["action"] == kind) and (env is None or a["environment"] == env)
            and (tag is None or a["tag"] == tag)]


def one(actions, **kw):
    found = by(actions, **kw)
    assert len(found) == 1, (kw, actions)
    return found[0]


def test_copy_into_each_approved_environment_and_nothing_else():
    result = plan([entry("v1", d("a"), ["test", "uat"])], ENVS, {})
    actions = result["actions"]
    assert [(a["action"], a["environment"]) for a in actions] == [("copy", "test"), ("copy", "uat")]
    assert all(a["repository"] == "ns/app" and a["digest"] == d("a") for a in actions)


def test_skip_when_the_same_digest_is_there_and_copy_when_another_is():
    actual = {"test": {"ns/app": {"v1": d("a"), "v2": d("old")}}}
    actions = plan([entry("v1", d("a"), ["test"]), entry("v2", d("b"), ["test"])], ENVS, actual)["actions"]
    assert one(actions, tag="v1")["action"] == "skip"
    retarget = one(actions, tag="v2")
    assert retarget["action"] == "copy" and retarget["current"] == d("old") and retarget["digest"] == d("b")


def test_default_only_tags_are_not_copied_and_are_removed_where_present():
    actual = {"test": {"ns/app": {"v1": d("a")}}}
    actions = plan([entry("v1", d("a"), ["default"])], ENVS, actual)["actions"]
    removal = one(actions, kind="remove")
    assert removal["environment"] == "test" and removal["method"] == "delete" and removal["keeps"] == []


def test_prune_false_removes_nothing():
    actual = {"test": {"ns/app": {"v1": d("a"), "gone": d("g")}}}
    actions = plan([entry("v1", d("a"), ["default"])], ENVS, actual, prune=False)["actions"]
    assert by(actions, kind="remove") == []


def test_tags_of_deleted_streams_are_removed_but_foreign_repositories_are_not():
    actual = {"test": {"ns/deleted": {"x": d("x")}, "toplevel": {"y": d("y")}, "a/b/c": {"z": d("z")}}}
    actions = plan([], ENVS, actual)["actions"]
    assert [(a["repository"], a["tag"]) for a in by(actions, kind="remove")] == [("ns/deleted", "x")]


def test_demotion_with_a_shared_digest_retargets_and_keeps_the_other_tag():
    actual = {"prod": {"ns/app": {"v1": d("a"), "stable": d("a")}}}
    entries = [entry("v1", d("a"), ["default"]), entry("stable", d("a"), ["test", "uat", "prod"])]
    actions = plan(entries, ENVS, actual, scope=Scope(environments=["prod"]))["actions"]
    removal = one(actions, kind="remove")
    assert removal["tag"] == "v1" and removal["method"] == "retarget" and removal["keeps"] == ["stable"]
    assert "stable" in removal["reason"] and "placeholder" in removal["reason"]
    assert one(actions, tag="stable")["action"] == "skip"


def test_shared_digest_counts_a_tag_that_this_run_will_copy():
    # v1 leaves prod; v2 (same digest) is approved for prod but not there yet: its copy must not be
    # undone by deleting the digest.
    actual = {"uat": {"ns/app": {"v1": d("a")}}, "prod": {"ns/app": {"v1": d("a")}}}
    entries = [entry("v1", d("a"), ["uat"]), entry("v2", d("a"), ["uat", "prod"])]
    actions = plan(entries, ENVS, actual)["actions"]
    removal = one(actions, kind="remove")
    assert removal["environment"] == "prod" and removal["method"] == "retarget" and removal["keeps"] == ["v2"]


def test_all_tags_of_a_digest_leaving_go_with_one_delete():
    actual = {"test": {"ns/app": {"v1": d("a"), "v1-copy": d("a")}}}
    actions = plan([], ENVS, actual)["actions"]
    removals = by(actions, kind="remove")
    assert {a["method"] for a in removals} == {"delete"}
    assert one(actions, tag="v1")["removes_with"] == ["v1-copy"]
    assert len(_removal_groups(removals)) == 1


def test_narrowed_to_one_tag_removal_always_retargets():
    actual = {"test": {"ns/app": {"v1": d("a")}}}
    scope = Scope(namespaces=["ns"], stream="app", tag="v1")
    actions = plan([entry("v1", d("a"), ["default"])], ENVS, actual, scope=scope)["actions"]
    removal = one(actions, kind="remove")
    assert removal["method"] == "retarget" and "narrowed" in removal["reason"]


def test_scope_limits_what_is_planned():
    entries = [entry("v1", d("a"), ["test"]), entry("v2", d("b"), ["test"]),
               entry("v1", d("c"), ["test"], stream="other"), entry("v1", d("e"), ["test"], namespace="ns2")]
    actual = {"test": {"ns/app": {"stale": d("s")}, "ns2/app": {"stale": d("s")}}}
    actions = plan(entries, ENVS, actual, scope=Scope(namespaces=["ns"], stream="app", tag="v2"))["actions"]
    assert [(a["action"], a["repository"], a["tag"]) for a in actions] == [("copy", "ns/app", "v2")]
    actions = plan(entries, ENVS, actual, scope=Scope(namespaces=["ns"]))["actions"]
    assert sorted((a["action"], a["repository"], a["tag"]) for a in actions) == [
        ("copy", "ns/app", "v1"), ("copy", "ns/app", "v2"), ("copy", "ns/other", "v1"), ("remove", "ns/app", "stale")]
    actions = plan(entries, ENVS, {}, scope=Scope(environments=["uat"]))["actions"]
    assert actions == []


def test_after_gate_holds_back_until_the_digest_is_in_the_earlier_environment():
    actions = plan([entry("v1", d("a"), ["prod"])], ENVS, {"uat": {"ns/app": {}}})["actions"]
    gated = one(actions, env="prod")
    assert gated["action"] == "gated" and "after uat" in gated["reason"]
    # present in uat under any tag of the same repository: prod takes it
    actions = plan([entry("v1", d("a"), ["prod"])], ENVS, {"uat": {"ns/app": {"rc": d("a")}}})["actions"]
    assert one(actions, env="prod")["action"] == "copy" and "requires" not in one(actions, env="prod")


def test_after_gate_is_satisfied_by_a_copy_earlier_in_the_same_run():
    actions = plan([entry("v1", d("a"), ["uat", "prod"])], ENVS, {})["actions"]
    assert [a["environment"] for a in actions] == ["uat", "prod"]  # promotion order
    prod = one(actions, env="prod")
    assert prod["action"] == "copy" and prod["requires"] == {"environment": "uat", "repository": "ns/app",
                                                             "digest": d("a")}
    waves = _waves(by(actions, kind="copy"))
    assert [[a["environment"] for a in wave] for wave in waves] == [["uat"], ["prod"]]


def test_gated_keeps_what_is_there_and_says_so():
    actual = {"prod": {"ns/app": {"v1": d("old")}}, "uat": {"ns/app": {}}}
    actions = plan([entry("v1", d("new"), ["prod"])], ENVS, actual)["actions"]
    gated = one(actions, env="prod")
    assert gated["action"] == "gated" and d("old") in gated["reason"]
    assert by(actions, kind="remove") == []


def test_scan_gate_reads_a_digest_keyed_json_annotation():
    envs = environments(test={"scan_gate": ScanGate(annotation="scan.example.com/result", value="passed")})
    entries = [entry("v1", d("a"), ["test"]), entry("v2", d("b"), ["test"]), entry("v3", d("c"), ["test"])]
    annotations = {"ns/app": {"scan.example.com/result": json.dumps({d("a"): "passed", d("b"): "failed"})}}
    actions = plan(entries, envs, {}, stream_annotations=annotations)["actions"]
    assert one(actions, tag="v1")["action"] == "copy"
    assert one(actions, tag="v2")["action"] == "gated" and "'failed'" in one(actions, tag="v2")["reason"]
    assert one(actions, tag="v3")["action"] == "gated" and "no result" in one(actions, tag="v3")["reason"]
    broken = {"ns/app": {"scan.example.com/result": "passed"}}
    actions = plan(entries[:1], envs, {}, stream_annotations=broken)["actions"]
    assert one(actions, tag="v1")["action"] == "gated" and "JSON object" in one(actions, tag="v1")["reason"]


def test_unreadable_whitelist_fails_that_tag_and_protects_it_everywhere():
    actual = {"test": {"ns/app": {"v1": d("a")}}}
    actions = plan([entry("v1", d("a"), None, error="cannot read 'te st'")], ENVS, actual)["actions"]
    assert [a["action"] for a in actions] == ["failed"]
    assert "te st" in actions[0]["reason"]


def test_approved_tag_without_an_image_is_reported_and_protected():
    actual = {"test": {"ns/app": {"v1": d("a")}}}
    actions = plan([entry("v1", None, ["test"])], ENVS, actual)["actions"]
    assert [a["action"] for a in actions] == ["skip"] and "no image" in actions[0]["reason"]


def test_read_errors_fail_the_tags_and_block_removal_there():
    actual = {"test": {}}
    errors = {("test", "ns/app"): "registry localhost:5101: HTTP 503"}
    actions = plan([entry("v1", d("a"), ["test"])], ENVS, actual, read_errors=errors)["actions"]
    assert [(a["action"], a["reason"]) for a in actions] == [("failed", "registry localhost:5101: HTTP 503")]
    errors = {("uat", None): "unreachable"}
    actions = plan([entry("v1", d("a"), ["prod"])], ENVS, {}, read_errors=errors)["actions"]
    assert one(actions, env="prod")["action"] == "gated" and "could not be read" in one(actions, env="prod")["reason"]


def test_unknown_environments_in_a_whitelist_are_listed_not_used():
    result = plan([entry("v1", d("a"), ["test", "retired"])], ENVS, {})
    assert result["unknown_environments"] == ["retired"]
    assert [a["environment"] for a in result["actions"]] == ["test"]


def test_cosign_artifacts_travel_with_the_digest_and_leave_with_it():
    sig = f"sha256-{d('a').split(':')[1]}.sig"
    att = f"sha256-{d('a').split(':')[1]}.att"
    artifacts = {"ns/app": {sig: d("sig"), att: d("att")}}
    actual = {"test": {"ns/app": {att: d("att")}}}
    actions = plan([entry("v1", d("a"), ["test"]), entry("v1-b", d("a"), ["test"])], ENVS, actual,
                   source_artifacts=artifacts)["actions"]
    sig_copy = one(actions, tag=sig)
    assert sig_copy["action"] == "copy" and sig_copy["artifact_of"] == d("a")
    assert sig_copy["requires"] == {"environment": "test", "repository": "ns/app", "digest": d("a")}
    assert one(actions, tag=att)["action"] == "skip"
    # once the digest leaves test, its artifacts leave too
    actual = {"test": {"ns/app": {"v1": d("a"), sig: d("sig")}}}
    actions = plan([entry("v1", d("a"), ["default"])], ENVS, actual, source_artifacts=artifacts)["actions"]
    assert sorted(a["tag"] for a in by(actions, kind="remove")) == sorted(["v1", sig])
    assert one(actions, tag=sig)["artifact_of"] == d("a")


def test_artifacts_of_a_gated_digest_are_not_copied():
    sig = f"sha256-{d('a').split(':')[1]}.sig"
    actions = plan([entry("v1", d("a"), ["prod"])], ENVS, {"uat": {"ns/app": {}}},
                   source_artifacts={"ns/app": {sig: d("sig")}})["actions"]
    assert [a["action"] for a in actions] == ["gated"]


def test_rerun_of_a_converged_state_is_all_skips():
    entries = [entry("v1", d("a"), ["test", "uat", "prod"]), entry("v2", d("b"), ["test"])]
    actual = {"test": {"ns/app": {"v1": d("a"), "v2": d("b")}}, "uat": {"ns/app": {"v1": d("a")}},
              "prod": {"ns/app": {"v1": d("a")}}}
    actions = plan(entries, ENVS, actual)["actions"]
    assert summarize(actions) == {"skip": 4}


def test_promotion_order_and_scope_validation():
    assert promotion_order(environments(prod={"after": "uat"}, uat={"after": "test"}, test={})) == [
        "test", "uat", "prod"]
    with pytest.raises(ValueError):
        Scope(tag="v1")
    with pytest.raises(ValueError):
        Scope(stream="app")


def test_audit_rows_show_drift_both_ways():
    entries = [entry("v1", d("a"), ["test", "uat"]), entry("v2", d("b"), ["default"])]
    actual = {"test": {"ns/app": {"v1": d("a"), "v2": d("b"), "orphan": d("o")}}, "uat": {"ns/app": {"v1": d("x")}}}
    rows = audit_rows(entries, ENVS, actual)
    v1 = [r for r in rows if r["tag"] == "ns/app:v1"][0]
    assert v1["present"] == ["test"] and v1["drift"] == ["uat: serves " + d("x")[:19]]
    v2 = [r for r in rows if r["tag"] == "ns/app:v2"][0]
    assert v2["drift"] == ["test: not approved"]
    orphan = [r for r in rows if r["tag"] == "ns/app:orphan"][0]
    assert orphan["present"] == ["test"] and "not in any ImageStream" in orphan["drift"][0]
    table = format_table(rows)
    assert table[0].split() == ["TAG", "DIGEST", "APPROVED", "PRESENT", "DRIFT"]
    assert any(line.startswith("ns/app:v1 ") and "test,uat" in line for line in table)


def test_audit_lists_environments_in_promotion_order_in_every_column():
    # stored lists are sorted by name (prod,test,uat); the table follows promotion order
    entries = [entry("v1", d("a"), ["prod", "test", "uat"])]
    actual = {env: {"ns/app": {"v1": d("a")}} for env in ("prod", "uat", "test")}
    row = audit_rows(entries, ENVS, actual)[0]
    assert row["approved"] == ["test", "uat", "prod"] and row["present"] == ["test", "uat", "prod"]
    assert format_table([row])[1].split()[2:4] == ["test,uat,prod", "test,uat,prod"]


def test_audit_names_an_environment_the_inventory_does_not_know():
    row = audit_rows([entry("v1", d("a"), ["test", "tset"])], ENVS, {"test": {"ns/app": {"v1": d("a")}}})[0]
    assert row["approved"] == ["test"] and row["drift"] == ["tset: not an environment of the inventory (ignored)"]


# --- environments with state: absent ---------------------------------------------------------

RETIRED = environments(test={}, uat={"state": "absent"}, prod={"after": "test"})


def test_absent_environments_are_no_promotion_target():
    assert promotion_order(RETIRED) == ["test", "prod"]
    assert list(promotion_targets(RETIRED)) == ["test", "prod"]
    assert absent_names(RETIRED) == ["uat"]
    # an after naming an absent environment (validation refuses it) is ignored, as one outside the mapping
    assert promotion_order(environments(prod={"after": "uat"}, uat={"state": "absent"})) == ["prod"]


def test_absent_environments_are_not_planned():
    """Nothing is copied to, skipped in or removed from an absent environment's registry, whatever
    the approval lists and the registry hold; the lists naming it are reported."""
    entries = [entry("v1", d("a"), ["test", "uat"]), entry("v2", d("b"), ["uat"]), entry("v3", d("c"), ["default"])]
    actual = {"uat": {"ns/app": {"v1": d("a"), "v3": d("c"), "stale": d("s")}}, "test": {}}
    result = plan(entries, RETIRED, actual)
    assert [(a["action"], a["environment"], a["tag"]) for a in result["actions"]] == [("copy", "test", "v1")]
    assert result["absent_environments"] == ["uat"]
    assert result["unknown_environments"] == []
    # narrowed to the absent environment by hand: still nothing
    assert plan(entries, RETIRED, actual, scope=Scope(environments=["uat"]))["actions"] == []


def test_absent_environments_are_not_audited():
    entries = [entry("v1", d("a"), ["test", "uat"])]
    actual = {"test": {"ns/app": {"v1": d("a")}}, "uat": {"ns/app": {"v1": d("x"), "orphan": d("o")}}}
    rows = audit_rows(entries, RETIRED, actual)
    assert rows == [{"tag": "ns/app:v1", "digest": d("a"), "approved": ["test"], "present": ["test"], "drift": []}]


class FakeRegistry:
    """Just enough of a RegistryClient for a read: ``repos`` is ``{repository: {tag: digest}}``."""

    def __init__(self, name, repos):
        self.name, self.repos, self.calls = name, repos, []

    def catalog(self):
        self.calls.append("catalog")
        return sorted(self.repos)

    def prefetch_tokens(self, repositories, action):
        self.calls.append("token")

    def narrow_token(self, repositories, action):
        self.calls.append("narrow " + ",".join(repositories))

    def list_tags(self, repository):
        self.calls.append(f"tags {repository}")
        return sorted(self.repos.get(repository) or {})

    def head_manifests(self, repository, tags):
        return [(tag, {"digest": self.repos[repository][tag]}) for tag in tags]

    def head_manifest(self, repository, tag):
        return {"digest": self.repos[repository][tag]}


def test_a_run_never_reads_or_writes_an_absent_environment():
    """The job gives no client for an absent environment (``Job.targets``): a run must not need one."""
    entries = [entry("v1", d("a"), ["test", "uat", "prod"])]
    registries = {"test": FakeRegistry("test", {"ns/app": {"v1": d("a")}}),
                  "prod": FakeRegistry("prod", {"ns/app": {"v1": d("a")}})}
    source = FakeRegistry("default", {"ns/app": {"v1": d("a")}})
    outcome = reconcile(entries, RETIRED, source, registries, check_mode=True)
    assert [(a["action"], a["environment"]) for a in outcome["actions"]] == [("skip", "test"), ("skip", "prod")]
    assert outcome["absent_environments"] == ["uat"] and outcome["unknown_environments"] == []
    assert [row["approved"] for row in outcome["audit"]] == [["test", "prod"]]
    assert all(registry.calls for registry in registries.values())


# -- a rollback's pin ---------------------------------------------------------------------------
PINNED = {("ns/app", "v1", "prod"): (d("b"), d("a"))}  # prod rolled back from b to a


def test_a_pinned_tag_keeps_the_rolled_back_digest_while_the_source_serves_the_one_rolled_back_from():
    entries = [entry("v1", d("b"), ["test", "uat", "prod"])]
    actual = {"test": {"ns/app": {"v1": d("b")}}, "uat": {"ns/app": {"v1": d("b"), "old": d("a")}}, "prod": {"ns/app": {"v1": d("b")}}}
    actions = plan(entries, ENVS, actual, pins=PINNED)["actions"]
    rollback = one(actions, env="prod", tag="v1")
    assert (rollback["action"], rollback["digest"], rollback["current"], rollback["pinned_from"]) == ("copy", d("a"), d("b"), d("b"))
    assert "pinned by a rollback" in rollback["reason"]
    assert one(actions, env="uat", tag="v1")["action"] == "skip" and "pinned_from" not in one(actions, env="uat", tag="v1")
    # once it is there, the next runs keep it (a skip that still says why), and remove nothing
    actual["prod"]["ns/app"]["v1"] = d("a")
    kept = one(plan(entries, ENVS, actual, pins=PINNED)["actions"], env="prod", tag="v1")
    assert (kept["action"], kept["digest"], kept["pinned_from"]) == ("skip", d("a"), d("b"))
    assert not by(plan(entries, ENVS, actual, pins=PINNED)["actions"], kind="remove", env="prod")
    assert audit_rows(entries, ENVS, actual, pins=PINNED)[0]["drift"] == []
    assert audit_rows(entries, ENVS, actual)[0]["drift"] == ["prod: serves " + d("a")[:19]]


def test_the_pin_ends_when_the_source_serves_another_digest_the_next_promotion():
    entries = [entry("v1", d("c"), ["test", "uat", "prod"])]
    actual = {"test": {"ns/app": {"v1": d("c")}}, "uat": {"ns/app": {"v1": d("c")}}, "prod": {"ns/app": {"v1": d("a")}}}
    promotion = one(plan(entries, ENVS, actual, pins=PINNED)["actions"], env="prod", tag="v1")
    assert (promotion["action"], promotion["digest"], promotion["current"]) == ("copy", d("c"), d("a"))
    assert "pinned_from" not in promotion


def test_a_pin_of_another_environment_or_tag_changes_nothing_here():
    entries = [entry("v1", d("b"), ["test"]), entry("v2", d("b"), ["test"])]
    pins = {("ns/app", "v1", "prod"): (d("b"), d("a")), ("ns/app", "v2", "uat"): (d("b"), d("a"))}
    assert plan(entries, ENVS, {}, pins=pins) == plan(entries, ENVS, {})


def test_a_run_reads_the_cosign_artifacts_of_a_pinned_digest_and_copies_it_by_digest():
    entries = [entry("v1", d("b"), ["prod"])]
    envs = environments(prod={})
    sig = "sha256-" + d("a")[len("sha256:"):] + ".sig"
    source = Registry("default", {"ns/app": {"v1": d("b"), sig: d("s"), d("a"): d("a")}})
    prod = Registry("prod", {"ns/app": {"v1": d("b"), d("a"): d("a"), d("s"): d("s")}})  # a and its signature are still there, untagged
    outcome = reconcile(entries, envs, source, {"prod": prod}, check_mode=True, pins=PINNED)
    assert [(a["action"], a["tag"], a["digest"]) for a in outcome["actions"]] == [("copy", sig, d("s")), ("copy", "v1", d("a"))]
    source.repos["ns/app"][d("s")] = d("s")
    # carried out: the source is asked for the pinned digest itself, not for the tag (which serves b)
    outcome = reconcile(entries, envs, source, {"prod": prod}, pins=PINNED)
    assert [(a["tag"], a["result"]) for a in outcome["actions"]] == [(sig, "copied"), ("v1", "copied")]
    assert prod.repos["ns/app"]["v1"] == d("a")
    del source.repos["ns/app"][d("a")]  # pruned from the integrated registry since
    prod.repos["ns/app"]["v1"] = d("b")
    failed = one(reconcile(entries, envs, source, {"prod": prod}, pins=PINNED)["actions"], tag="v1")
    assert failed["result"] == "failed" and "no longer exists in the source registry" in failed["error"]
    assert prod.repos["ns/app"]["v1"] == d("b")


class Registry(FakeRegistry):
    """A FakeRegistry that serves manifests by tag or digest (a digest stands as a tag of itself)
    and takes them; a manifest's bytes are its digest, and every image has its blobs already."""

    host = "registry.example.com"

    def list_tags(self, repository):
        return [tag for tag in super().list_tags(repository) if not tag.startswith("sha256:")]

    def get_manifest(self, repository, reference):
        found = self.head_manifest(repository, reference)
        return found and {"data": found["digest"].encode(), "media_type": "application/vnd.oci.image.manifest.v1+json"}

    def head_manifest(self, repository, tag):  # a tag, or a digest
        digest = (self.repos.get(repository) or {}).get(tag)
        return {"digest": digest} if digest else None

    def put_manifest(self, repository, tag, data, media_type):
        self.repos[repository][tag] = data.decode()


@pytest.mark.parametrize("left", [[], [entry("v2", d("b"), ["test"])]], ids=["stream-deleted", "tag-deleted"])
def test_a_run_narrowed_to_a_vanished_tag_demotes_it_and_nothing_else(left):
    """The event of a deleted tag (or stream) runs a reconcile narrowed to it: the ImageStream no
    longer lists it, yet the environment registries are read there and what they hold is removed."""
    test = Registry("test", {"ns/app": {"v1": d("a"), "v2": d("b")}})
    prod = Registry("prod", {"ns/app": {"v1": d("a")}})
    source = Registry("default", {"ns/app": {}})
    envs = environments(test={}, prod={})
    outcome = reconcile(left, envs, source, {"test": test, "prod": prod}, scope=Scope(["ns"], "app", "v1"), check_mode=True)
    assert [(a["action"], a["environment"], a["tag"]) for a in outcome["actions"]] == [("remove", "test", "v1"), ("remove", "prod", "v1")]
