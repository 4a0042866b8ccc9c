"""The promotion history (pure): entries from an executed plan, their JSON shape, order, the
per-key limit, the bound under the API server's object limit, and the flat list the audit shows."""

import hashlib
import json

import jmespath
import pytest
import yaml

from ansible_collections.segmented.registry.plugins.doc_fragments import promotion

from ansible_collections.segmented.registry.plugins.module_utils.promotion import history
from ansible_collections.segmented.registry.plugins.module_utils.promotion.history import (
    DATA_BUDGET_BYTES,
    ENTRY_MAX_BYTES,
    MAX_LIMIT,
    HistoryError,
)


def d(seed):
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def copy(tag, digest, current, result="copied", env="prod", repo="ns/app", **extra):
    return dict({"action": "copy", "environment": env, "repository": repo, "tag": tag, "digest": digest,
                 "current": current, "result": result, "reason": "retarget" if current else "not there yet"}, **extra)


def test_the_bound_follows_from_the_object_limit_and_an_entry_s_size():
    assert DATA_BUDGET_BYTES < 1024 * 1024
    assert MAX_LIMIT == DATA_BUDGET_BYTES // ENTRY_MAX_BYTES
    assert history.check_limit(0) == 0
    assert history.check_limit(MAX_LIMIT) == MAX_LIMIT


def test_the_option_s_documentation_states_the_bound():
    text = yaml.safe_load(promotion.ModuleDocFragment.DOCUMENTATION)["options"]["history_limit"]
    assert f"At most {MAX_LIMIT}," in " ".join(text["description"]) and f"{ENTRY_MAX_BYTES} bytes" in " ".join(text["description"])
    assert text["default"] == history.DEFAULT_LIMIT


@pytest.mark.parametrize("limit", [-1, MAX_LIMIT + 1, 100000])
def test_a_limit_that_could_pass_the_object_limit_is_refused_naming_the_option(limit):
    with pytest.raises(HistoryError) as error:
        history.check_limit(limit)
    assert error.value.field == "history_limit"
    assert "history_limit" in str(error.value) and str(MAX_LIMIT) in str(error.value) and "1 MiB" in str(error.value)


def test_an_entry_at_its_longest_stays_within_its_bound():
    longest = "sha512:" + "f" * 128
    item = history.entry("2026-12-05T18:09:48Z", "rollback", "e" * 63, "t" * 128, longest, longest, "b" * 1000, "failed",
                         "\u00e9\n\"" * 5000)
    assert len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()) <= ENTRY_MAX_BYTES
    assert item["message"].endswith("...") and len(item["by"]) == history.MAX_BY
    short = history.entry("2026-12-05T18:09:48Z", "promote", "prod", "v1", None, d("a"), "alice", "ok", "copied")
    assert short["message"] == "copied"


def test_entries_of_an_executed_plan_record_copies_and_removals_with_their_shape():
    actions = [
        copy("v1", d("b"), d("a")),
        copy("v2", d("c"), None, result="failed", error="blob unknown"),
        {"action": "remove", "environment": "uat", "repository": "ns/app", "tag": "old", "digest": d("o"), "current": d("o"),
         "result": "removed", "reason": "no longer approved"},
        copy("sha256-" + "a" * 64 + ".sig", d("s"), None, artifact_of=d("b")),  # travels with its image: not recorded
        {"action": "skip", "environment": "prod", "repository": "ns/app", "tag": "v3", "digest": d("x"), "result": "skipped"},
        {"action": "gated", "environment": "prod", "repository": "ns/app", "tag": "v4", "digest": d("y"), "result": "gated"},
        copy("v9", d("z"), None, repo="other/web"),
    ]
    found = history.entries_of(actions, "alice", "2026-12-05T18:09:48Z")
    assert sorted(found) == [("ns", "app"), ("other", "web")]
    promote, failed, demote = found[("ns", "app")]
    assert list(promote) == ["time", "action", "environment", "tag", "digest_before", "digest_after", "by", "result", "message"]
    assert promote == {"time": "2026-12-05T18:09:48Z", "action": "promote", "environment": "prod", "tag": "v1",
                       "digest_before": d("a"), "digest_after": d("b"), "by": "alice", "result": "ok", "message": "retarget"}
    assert failed["result"] == "failed" and failed["digest_after"] is None and failed["digest_before"] is None
    assert d("c") in failed["message"] and "blob unknown" in failed["message"]
    assert demote["action"] == "demote" and demote["digest_before"] == d("o") and demote["digest_after"] is None
    assert demote["environment"] == "uat"


def test_merge_puts_a_run_s_entries_first_newest_first_and_keeps_at_most_the_limit():
    def e(time, digest):
        return history.entry(time, "promote", "prod", "v1", None, digest, "alice", "ok", "")

    stored = history.merge({}, [e("2026-01-01T00:00:00Z", d("1")), e("2026-01-02T00:00:00Z", d("2"))], 3, "cm")
    stored.update(history.merge({}, [history.entry("2026-01-01T00:00:00Z", "promote", "uat", "v1", None, d("u"), "a", "ok", "")], 3, "cm"))
    merged = history.merge(stored, [e("2026-01-03T00:00:00Z", d("3")), e("2026-01-03T00:00:00Z", d("4"))], 3, "cm")
    prod = json.loads(merged["v1.prod"])
    assert [item["digest_after"] for item in prod] == [d("4"), d("3"), d("2")]  # the run's last first; the oldest trimmed
    assert merged["v1.uat"] == stored["v1.uat"]  # a key the run did not touch is left as stored
    assert history.merge(stored, [e("2026-01-03T00:00:00Z", d("3"))], 0, "cm") == {"v1.uat": stored["v1.uat"]}  # 0 keeps none
    assert history.merge({}, [e("2026-01-03T00:00:00Z", d("3"))], 0, "cm") == {}


def test_an_unreadable_key_is_an_error_naming_the_configmap_and_key():
    with pytest.raises(HistoryError) as error:
        history.merge({"v1.prod": "{not json"}, [history.entry("t", "promote", "prod", "v1", None, d("1"), "a", "ok", "")], 5, "ConfigMap ns/h")
    assert "ConfigMap ns/h key v1.prod" in str(error.value)


def test_fit_drops_the_oldest_entries_over_all_keys_but_never_a_key_s_newest():
    big = "x" * 1800

    def e(day, env):
        return history.entry(f"2026-01-{day:02d}T00:00:00Z", "promote", env, "v1", None, d(env), "a", "ok", big)

    keys = 300
    stored = {history.data_key("v1", f"e{k}"): json.dumps([e(20, f"e{k}")] + [e(1, f"e{k}")]) for k in range(keys)}
    merged = history.merge(stored, [e(21, "e0")], MAX_LIMIT, "cm")
    size = sum(len(key) + len(value.encode()) for key, value in merged.items())
    assert size <= DATA_BUDGET_BYTES
    assert all(json.loads(value)[0]["time"] >= "2026-01-20" for value in merged.values())
    assert len(json.loads(merged["v1.e0"])) >= 2  # the run's new entry and the key's previous newest
    with pytest.raises(HistoryError, match="newest entry of each of its"):
        history.fit({f"k{k}": [e(1, "e")] for k in range(600)}, "cm")


def test_names_and_keys():
    assert history.configmap_name("app") == "segmented-registry-history-app"
    long_one, other = "a" * 250, "a" * 249 + "b"
    assert len(history.configmap_name(long_one)) <= 253
    assert history.configmap_name(long_one) != history.configmap_name(other)
    assert history.data_key("v1.2.3", "prod") == "v1.2.3.prod"


def test_flatten_is_newest_first_and_jmespath_selects_on_it():
    def cm(namespace, stream, data):
        return {"metadata": {"namespace": namespace, "name": history.configmap_name(stream),
                             "annotations": {history.ANNOTATION_STREAM: stream}},
                "data": {key: json.dumps(items) for key, items in data.items()}}

    old = history.entry("2026-01-01T00:00:00Z", "promote", "prod", "v1", None, d("1"), "a", "ok", "")
    new = history.entry("2026-01-02T00:00:00Z", "promote", "uat", "v1", None, d("1"), "a", "ok", "")
    rows = history.flatten([cm("ns", "app", {"v1.prod": [old], "v1.uat": [new], "bad.prod": "x"}), cm("ns", "web", {})])
    assert [row["environment"] for row in rows] == ["uat", "prod"]
    assert rows[0]["namespace"] == "ns" and rows[0]["stream"] == "app"
    assert jmespath.search("history[?environment=='prod'].digest_after", {"history": rows}) == [d("1")]


def key_history(*items):
    """One key's entries, newest first: (action, before, after[, result]) tuples, newest first."""
    return [history.entry(f"2026-01-{10 - n:02d}T00:00:00Z", item[0], "prod", "v1", item[1], item[2], "a",
                          item[3] if len(item) > 3 else "ok", "") for n, item in enumerate(items)]


def as_configmap(items, namespace="ns", stream="app"):
    return {"metadata": {"namespace": namespace, "annotations": {history.ANNOTATION_STREAM: stream}},
            "data": history.merge({}, list(reversed(items)), MAX_LIMIT, "cm")}


def test_a_pinned_copy_is_recorded_as_a_rollback_from_the_digest_it_pins_against():
    actions = [copy("v1", d("a"), None, pinned_from=d("b")),  # the registry had lost the tag: still from b
               copy("v2", d("a"), d("b"), pinned_from=d("b"), result="failed", error="unreachable")]
    done, failed = history.entries_of(actions, "alice", "2026-12-05T18:09:48Z")[("ns", "app")]
    assert (done["action"], done["digest_before"], done["digest_after"], done["result"]) == ("rollback", d("b"), d("a"), "ok")
    assert (failed["action"], failed["digest_before"], failed["digest_after"], failed["result"]) == ("rollback", d("b"), d("b"), "failed")


def test_a_rollback_pins_until_a_newer_promotion_or_demotion_succeeds():
    rolled_back = key_history(("rollback", d("b"), d("a")), ("promote", d("a"), d("b")), ("promote", None, d("a")))
    assert history.pins([as_configmap(rolled_back)]) == {("ns/app", "v1", "prod"): (d("b"), d("a"))}
    failed_later = key_history(("promote", d("a"), d("c"), "failed"), *[(i["action"], i["digest_before"], i["digest_after"]) for i in rolled_back])
    assert history.pins([as_configmap(failed_later)]) == {("ns/app", "v1", "prod"): (d("b"), d("a"))}
    for later in (("promote", d("a"), d("c")), ("demote", d("a"), None)):
        ended = key_history(later, ("rollback", d("b"), d("a")), ("promote", d("a"), d("b")))
        assert history.pins([as_configmap(ended)]) == {}
    assert history.pins([as_configmap(key_history(("rollback", d("b"), d("a"), "failed"), ("promote", d("a"), d("b"))))]) == {}


def test_the_rollbacks_in_force_by_tag_name_each_environment_s_digests():
    rolled_back = key_history(("rollback", d("b"), d("a")), ("promote", d("a"), d("b")))
    promoted = key_history(("promote", d("a"), d("b")))
    configmaps = [as_configmap(rolled_back), as_configmap(promoted, stream="other")]
    assert history.rollbacks_by_tag(configmaps) == {("ns/app", "v1"): {"prod": {"rolled_back_from": d("b"), "rolled_back_to": d("a")}}}
    assert history.rollbacks_by_tag([]) == {}


def test_the_rollback_target_is_what_the_environment_served_before_its_last_promotion():
    promoted = key_history(("promote", d("a"), d("b")), ("promote", None, d("a")))
    assert history.rollback_target(promoted, d("b"), "here") == (d("b"), d("a"))
    # a second rollback finds the same pin (idempotent), a failed promotion since is not the last one
    again = key_history(("rollback", d("b"), d("a")), ("promote", d("c"), d("c"), "failed"), ("promote", d("a"), d("b")))
    assert history.rollback_target(again, d("b"), "here") == (d("b"), d("a"))


@pytest.mark.parametrize("items,source,words", [
    ([], d("b"), "no promotion is recorded"),
    (key_history(("promote", None, d("a"))), d("a"), "brought the first digest there"),
    (key_history(("promote", d("a"), d("b"))), d("c"), "the source tag now serves " + d("c")),
    (key_history(("demote", d("b"), None), ("promote", d("a"), d("b"))), d("b"), "demoted from there"),
], ids=["no-history", "first-promotion", "source-moved", "demoted-since"])
def test_a_rollback_that_cannot_hold_is_refused_saying_why(items, source, words):
    with pytest.raises(HistoryError) as error:
        history.rollback_target(items, source, "ns/app:v1 in prod")
    assert words in str(error.value) and str(error.value).startswith("ns/app:v1 in prod")


def test_an_approval_list_the_run_cannot_follow_is_a_failed_promotion_in_each_environment_it_concerns():
    entries = [
        {"namespace": "ns", "stream": "app", "tag": "bad", "digest": d("b"), "environments": None,
         "error": "ns/app:bad: annotation segmented.registry/environments has the value \"[uat\""},
        {"namespace": "ns", "stream": "app", "tag": "typo", "digest": d("t"), "environments": ["test", "tset"]},
        {"namespace": "ns", "stream": "web", "tag": "fine", "digest": d("f"), "environments": ["prod", "test"]},
        {"namespace": "ns", "stream": "web", "tag": "unapproved", "digest": d("u"), "environments": ["default"]},
    ]
    found = history.problems_of(entries, {"test": 1, "prod": 2, "old": 3}, ["test", "prod"], "alice", "2026-12-05T18:09:48Z")
    assert list(found) == [("ns", "app")]  # lists that could be followed leave no failure
    rows = [(item["tag"], item["environment"], item["action"], item["result"], item["digest_before"], item["digest_after"], item["by"])
            for item in found[("ns", "app")]]
    assert rows == [("bad", "test", "promote", "failed", None, None, "alice"), ("bad", "prod", "promote", "failed", None, None, "alice"),
                    ("typo", "tset", "promote", "failed", None, None, "alice")]  # nothing was attempted: no digests
    bad, _bad_in_prod, typo = found[("ns", "app")]
    assert bad["message"].startswith(f"the approval list cannot be read, so nothing was copied or removed for this tag (the source serves {d('b')}): "
                                     "ns/app:bad: annotation")
    assert typo["message"] == (f"tset is not an environment of the inventory, so nothing was copied there (the source serves {d('t')}): fix the "
                               "approval list, or add the environment to segmented_registry_environments")


def test_a_failure_met_again_is_not_recorded_again_so_the_promotions_stay_within_the_limit():
    def failure(time, message="the approval list cannot be read"):
        return history.entry(time, "promote", "prod", "v1", None, d("1"), "alice", "failed", message)

    promoted = history.entry("2026-01-01T00:00:00Z", "promote", "prod", "v1", None, d("1"), "alice", "ok", "")
    stored = history.merge({}, [promoted, failure("2026-01-01T01:00:00Z")], 3, "cm")
    for hour in range(2, 6):  # an hourly reconcile meets the same bad list
        stored = history.merge(stored, [failure(f"2026-01-01T0{hour}:00:00Z")], 3, "cm")
    kept = json.loads(stored["v1.prod"])
    assert [(item["result"], item["time"]) for item in kept] == [("failed", "2026-01-01T01:00:00Z"), ("ok", "2026-01-01T00:00:00Z")]
    changed = history.merge(stored, [failure("2026-01-01T06:00:00Z", "another problem")], 3, "cm")
    assert [item["message"] for item in json.loads(changed["v1.prod"])][:2] == ["another problem", "the approval list cannot be read"]
