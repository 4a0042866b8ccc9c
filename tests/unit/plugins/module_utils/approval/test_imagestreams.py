"""Unit tests of the pure parts of plugins/module_utils/approval/imagestreams.py (the JSON patch of an
edit, applied here the way the API server applies it) and of its retry loop. That the API server
really answers so is shown on the lab (tests/integration/test_tag_environments.py)."""


import copy
import functools
import json

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import (
    EnvironmentsError,
    apply_change,
)
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import (
    ImageStreamError,
    digest,
    require_tag,
    resolve_tag_reference,
    split_name,
    stored_environments,
    tag_entries,
    tag_names,
    tag_patch,
)
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    Conflict,
    ImageStreamAPI,
    backoff_delay,
    edit_tag_environments,
    list_tags,
)
from ansible_collections.segmented.registry.plugins.module_utils.approval import imagestreams
from ansible_collections.segmented.registry.plugins.module_utils.errors import SegmentedRegistryError
from tests.unit.plugins.module_utils.fake_cluster import fake_cluster

KEY = "segmented.registry/environments"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def imagestream():
    """A stream with a spec tag tracking an external image (other annotations, from, policy),
    a pushed-only tag, a tag in both, and another spec tag."""
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "app", "namespace": "myproject", "resourceVersion": "41",
                     "annotations": {"openshift.io/image.dockerRepositoryCheck": "2026-01-01T00:00:00Z"},
                     "labels": {"team": "a"}},
        "spec": {
            "lookupPolicy": {"local": True},
            "tags": [
                {"name": "latest",
                 "annotations": {"description": "tracks upstream", "openshift.io/display-name": "App"},
                 "from": {"kind": "DockerImage", "name": "quay.example.com/app:latest"},
                 "importPolicy": {"scheduled": True, "importMode": "Legacy"},
                 "referencePolicy": {"type": "Local"},
                 "generation": 3},
                {"name": "v2", "annotations": {KEY: "test"},
                 "from": {"kind": "ImageStreamTag", "name": "app:v1"},
                 "referencePolicy": {"type": "Source"}},
            ],
        },
        "status": {
            "dockerImageRepository": "image-registry.openshift-image-registry.svc:5000/myproject/app",
            "tags": [
                {"tag": "latest", "items": [{"image": D3, "generation": 3}]},
                {"tag": "v1", "items": [{"image": D1, "generation": 1}, {"image": D2, "generation": 1}]},
                {"tag": "v2", "items": [{"image": D1, "generation": 2}]},
            ],
        },
    }


# --- names -----------------------------------------------------------------------------------


def test_split_name():
    assert split_name("app:v1.2.3") == ("app", "v1.2.3")
    assert split_name("my-app.x:latest") == ("my-app.x", "latest")


@pytest.mark.parametrize("name", ["app", "app:", ":v1", "app:v1:x", "app@sha256:" + "1" * 64, "ns/app:v1",
                                  "App:v1", "app:-v1", "app:" + "x" * 129])
def test_split_name_rejects(name):
    with pytest.raises(ImageStreamError) as info:
        split_name(name)
    message = str(info.value)
    assert "is not an image" in message
    assert "<stream>:<tag>" in message or "the stream in name" in message or "the tag in name" in message


def test_resolve_tag_reference():
    assert resolve_tag_reference(name="app:v1") == ("app", "v1")
    assert resolve_tag_reference(stream="app", tag="v1") == ("app", "v1")
    with pytest.raises(ImageStreamError, match="not both"):
        resolve_tag_reference(name="app:v1", stream="app")
    with pytest.raises(ImageStreamError, match="both stream and tag"):
        resolve_tag_reference(stream="app")


# --- reading ---------------------------------------------------------------------------------


def test_tag_names_include_pushed_only_tags():
    assert tag_names(imagestream()) == ["latest", "v1", "v2"]


def test_digest_is_the_first_status_item():
    stream = imagestream()
    assert digest(stream, "v1") == D1
    assert digest(stream, "latest") == D3
    stream["status"]["tags"].append({"tag": "empty", "items": None})
    assert digest(stream, "empty") is None
    assert digest(stream, "nothing") is None


def test_require_tag_lists_the_tags():
    require_tag(imagestream(), "v1")  # pushed only: exists
    with pytest.raises(ImageStreamError) as info:
        require_tag(imagestream(), "v9")
    assert '"v9"' in str(info.value) and "latest, v1, v2" in str(info.value)


def test_stored_environments_names_the_tag_on_error():
    stream = imagestream()
    stream["spec"]["tags"][1]["annotations"][KEY] = "test;uat"
    with pytest.raises(EnvironmentsError) as info:
        stored_environments(stream, "v2", KEY)
    assert "myproject/app:v2" in str(info.value) and "test;uat" in str(info.value)


def test_tag_entries_reports_a_bad_annotation_in_its_entry_only():
    stream = imagestream()
    stream["spec"]["tags"][0]["annotations"][KEY] = "Prod"
    entries = {entry["tag"]: entry for entry in tag_entries(stream, KEY)}
    assert entries["latest"]["environments"] is None and '"Prod"' in entries["latest"]["error"]
    assert entries["v1"] == {"namespace": "myproject", "stream": "app", "tag": "v1", "digest": D1,
                             "environments": ["default"]}
    assert entries["v2"]["environments"] == ["test"] and "error" not in entries["v2"]


# --- computing the write: the JSON patch -----------------------------------------------------


def apply_like_the_api_server(stream, operations):
    """Apply a JSON patch as the Kubernetes API server's library (evanphx/json-patch) does: a
    ``test`` of a missing member with value null passes, index -1 is the last element, a failed
    test raises Conflict(lost_race=True) (the module's reading of the server's 422). Returns the
    patched copy."""
    doc = copy.deepcopy(stream)
    for operation in operations:
        parts = [part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            try:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
            except (KeyError, IndexError, TypeError):
                raise Conflict(f"test operation does not apply: is missing path: {operation['path']}", lost_race=True)
        key = parts[-1]
        if isinstance(parent, list) and key != "-":
            key = int(key)
        if operation["op"] == "test":
            try:
                value = parent[key]
            except IndexError:
                raise Conflict(f"error in test for path: {operation['path']!r}", lost_race=True)
            except KeyError:
                value = None
            if value != operation["value"]:
                raise Conflict(f"testing value {operation['path']} failed: test failed", lost_race=True)
        elif operation["op"] == "add" and key == "-":
            parent.append(copy.deepcopy(operation["value"]))
        elif operation["op"] == "add":
            parent[key] = copy.deepcopy(operation["value"])
        elif operation["op"] == "remove":
            del parent[key]
        else:
            raise AssertionError(f"unexpected operation {operation!r}")
    return doc


def spec_tag_of(stream, tag):
    return [item for item in stream["spec"]["tags"] if item["name"] == tag]


def test_patch_of_a_spec_tag_tests_its_name_and_old_value_then_sets_it():
    stream = imagestream()
    assert tag_patch(stream, "v2", KEY, "prod,test") == [
        {"op": "test", "path": "/spec/tags/1/name", "value": "v2"},
        {"op": "test", "path": "/spec/tags/1/annotations/segmented.registry~1environments", "value": "test"},
        {"op": "add", "path": "/spec/tags/1/annotations/segmented.registry~1environments", "value": "prod,test"},
    ]
    patched = apply_like_the_api_server(stream, tag_patch(stream, "v2", KEY, "prod,test"))
    expected = copy.deepcopy(stream)
    expected["spec"]["tags"][1]["annotations"][KEY] = "prod,test"
    assert patched == expected  # nothing else: no metadata (no resourceVersion), no status, no other tag


def test_patch_of_an_absent_annotation_tests_it_is_absent():
    stream = imagestream()
    operations = tag_patch(stream, "latest", KEY, "uat")
    assert operations[1] == {"op": "test", "path": "/spec/tags/0/annotations/segmented.registry~1environments",
                             "value": None}
    patched = apply_like_the_api_server(stream, operations)
    assert patched["spec"]["tags"][0]["annotations"] == {"description": "tracks upstream",
                                                         "openshift.io/display-name": "App", KEY: "uat"}
    assert patched["spec"]["tags"][0]["from"] == stream["spec"]["tags"][0]["from"]


def test_patch_removing_the_last_environment_removes_the_annotation_only():
    stream = imagestream()
    operations = tag_patch(stream, "v2", KEY, None)
    assert operations[-1] == {"op": "remove", "path": "/spec/tags/1/annotations/segmented.registry~1environments"}
    patched = apply_like_the_api_server(stream, operations)
    assert patched["spec"]["tags"][1] == {"name": "v2", "annotations": {},
                                          "from": {"kind": "ImageStreamTag", "name": "app:v1"},
                                          "referencePolicy": {"type": "Source"}}


def test_patch_of_a_spec_tag_without_annotations_tests_and_adds_the_map():
    stream = imagestream()
    del stream["spec"]["tags"][1]["annotations"]
    operations = tag_patch(stream, "v2", KEY, "uat")
    assert operations == [{"op": "test", "path": "/spec/tags/1/name", "value": "v2"},
                          {"op": "test", "path": "/spec/tags/1/annotations", "value": None},
                          {"op": "add", "path": "/spec/tags/1/annotations", "value": {KEY: "uat"}}]
    assert apply_like_the_api_server(stream, operations)["spec"]["tags"][1]["annotations"] == {KEY: "uat"}


def test_patch_of_a_pushed_only_tag_appends_a_spec_tag_without_from_guarded_by_the_list():
    stream = imagestream()
    operations = tag_patch(stream, "v1", KEY, "test,uat")
    assert operations == [
        {"op": "test", "path": "/spec/tags/0/name", "value": "latest"},
        {"op": "test", "path": "/spec/tags/1/name", "value": "v2"},
        {"op": "test", "path": "/spec/tags/-1/name", "value": "v2"},
        {"op": "add", "path": "/spec/tags/-",
         "value": {"name": "v1", "annotations": {KEY: "test,uat"}, "referencePolicy": {"type": "Source"}}},
    ]
    patched = apply_like_the_api_server(stream, operations)
    assert patched["spec"]["tags"][:2] == stream["spec"]["tags"]
    assert "from" not in patched["spec"]["tags"][2]


@pytest.mark.parametrize("race", ["same tag added", "other tag added", "entry removed"])
def test_patch_of_a_pushed_only_tag_fails_when_the_list_changed(race):
    stream = imagestream()
    operations = tag_patch(stream, "v1", KEY, "test")
    if race == "same tag added":
        stream["spec"]["tags"].append({"name": "v1", "annotations": {KEY: "prod"}})
    elif race == "other tag added":
        stream["spec"]["tags"].append({"name": "v9"})
    else:
        del stream["spec"]["tags"][0]
    with pytest.raises(Conflict):
        apply_like_the_api_server(stream, operations)


def test_patch_of_a_pushed_only_tag_ignores_other_tags_annotations():
    stream = imagestream()
    operations = tag_patch(stream, "v1", KEY, "test")
    stream["spec"]["tags"][1]["annotations"][KEY] = "prod,test"  # a sibling edit meanwhile
    stream["status"]["tags"][0]["items"].insert(0, {"image": D1})  # a push meanwhile
    patched = apply_like_the_api_server(stream, operations)
    assert spec_tag_of(patched, "v1")[0]["annotations"] == {KEY: "test"}
    assert spec_tag_of(patched, "v2")[0]["annotations"] == {KEY: "prod,test"}


def test_patch_of_a_long_list_tests_it_whole(monkeypatch):
    monkeypatch.setattr(imagestreams, "MAX_NAME_TESTS", 1)
    stream = imagestream()
    operations = tag_patch(stream, "v1", KEY, "test")
    assert operations[0] == {"op": "test", "path": "/spec/tags", "value": stream["spec"]["tags"]}
    assert len(operations) == 2
    stream["spec"]["tags"][1]["annotations"][KEY] = "uat"
    with pytest.raises(Conflict):
        apply_like_the_api_server(stream, operations)


@pytest.mark.parametrize("spec", [None, {}, {"tags": []}])
def test_patch_of_a_stream_without_spec_tags(spec):
    stream = {"metadata": {"name": "s", "namespace": "n", "resourceVersion": "1"},
              "status": {"tags": [{"tag": "t", "items": [{"image": D1}]}]}}
    if spec is not None:
        stream["spec"] = spec
    patched = apply_like_the_api_server(stream, tag_patch(stream, "t", KEY, "test"))
    assert patched["spec"]["tags"] == [{"name": "t", "annotations": {KEY: "test"},
                                        "referencePolicy": {"type": "Source"}}]
    assert patched["status"] == stream["status"]
    raced = copy.deepcopy(stream)
    raced["spec"] = {"tags": [{"name": "t"}]}
    with pytest.raises(Conflict):
        apply_like_the_api_server(raced, tag_patch(stream, "t", KEY, "test"))


def test_patch_of_nothing_to_remove_is_empty():
    assert tag_patch(imagestream(), "v1", KEY, None) == []  # pushed only, no spec tag
    assert tag_patch(imagestream(), "latest", KEY, None) == []  # spec tag without the annotation


def test_patch_other_annotation_key_and_a_changed_old_value():
    stream = imagestream()
    operations = tag_patch(stream, "v2", "environment", "prod")
    assert apply_like_the_api_server(stream, operations)["spec"]["tags"][1]["annotations"] == {
        KEY: "test", "environment": "prod"}
    operations = tag_patch(stream, "v2", KEY, "prod,test")
    stream["spec"]["tags"][1]["annotations"][KEY] = "test,uat"  # someone else's edit meanwhile
    with pytest.raises(Conflict):
        apply_like_the_api_server(stream, operations)


def test_patch_does_not_mutate_its_input():
    stream = imagestream()
    before = copy.deepcopy(stream)
    for tag, value in (("latest", "prod"), ("v1", "test"), ("v2", None)):
        tag_patch(stream, tag, KEY, value)
    assert stream == before


# --- back-off --------------------------------------------------------------------------------


def test_backoff_grows_exponentially_and_is_capped():
    top = [backoff_delay(attempt, rng=lambda: 1.0) for attempt in range(1, 12)]
    assert top[0] == pytest.approx(BACKOFF_BASE_SECONDS)
    assert top[1] == pytest.approx(2 * BACKOFF_BASE_SECONDS) and top[3] == pytest.approx(8 * BACKOFF_BASE_SECONDS)
    assert max(top) == BACKOFF_CAP_SECONDS and top[-1] == BACKOFF_CAP_SECONDS
    assert backoff_delay(5, rng=lambda: 0.0) == pytest.approx(8 * BACKOFF_BASE_SECONDS)  # half is jitter
    assert backoff_delay(1, rng=lambda: 0.0) == pytest.approx(BACKOFF_BASE_SECONDS / 2)
    lows = [backoff_delay(attempt, rng=lambda: 0.0) for attempt in range(1, 12)]
    assert lows == sorted(lows)  # a writer that keeps losing waits longer each time
    # a slow round trip widens the slot; a fast one never shrinks it below the base
    assert backoff_delay(2, rng=lambda: 1.0, round_trip=1.0) == pytest.approx(2.0)
    assert backoff_delay(2, rng=lambda: 1.0, round_trip=0.01) == pytest.approx(2 * BACKOFF_BASE_SECONDS)
    assert backoff_delay(9, rng=lambda: 1.0, round_trip=5.0) == BACKOFF_CAP_SECONDS


# --- the retry loop -------------------------------------------------------------------------


class FakeImageStreamAPI:
    """Stores one ImageStream and applies JSON patches to it the way the API server does
    (``apply_like_the_api_server``: no resourceVersion involved; a failed test is a Conflict).
    ``before_write`` runs between the module's read and its write (a push, another edit)."""

    def __init__(self, stream, before_write=None):
        self.stored = copy.deepcopy(stream)
        self.before_write = before_write
        self.reads = 0
        self.patches = []
        self.writes = []

    def bump(self, mutate):
        mutate(self.stored)
        self.stored["metadata"]["resourceVersion"] = str(int(self.stored["metadata"]["resourceVersion"]) + 1)

    def get(self, namespace, stream):
        self.reads += 1
        return copy.deepcopy(self.stored)

    def patch(self, namespace, stream, operations):
        if self.before_write:
            self.before_write(self)
        self.patches.append(copy.deepcopy(operations))
        self.bump(lambda stored: stored.update(apply_like_the_api_server(stored, operations)))
        self.writes.append(copy.deepcopy(operations))
        return copy.deepcopy(self.stored)


def push(tag, image):
    def mutate(stream):
        for item in stream["status"]["tags"]:
            if item["tag"] == tag:
                item["items"].insert(0, {"image": image})
                return
        stream["status"]["tags"].append({"tag": tag, "items": [{"image": image}]})
    return mutate


def change(**kwargs):
    return functools.partial(apply_change, **kwargs)


def test_edit_unchanged_writes_nothing():
    fake = FakeImageStreamAPI(imagestream())
    result = edit_tag_environments(fake, "myproject", "app", "v2", change(add=["test"]), KEY)
    assert result["changed"] is False and result["attempts"] == 1 and fake.patches == []


def test_edit_writes_one_patch_without_a_resource_version():
    fake = FakeImageStreamAPI(imagestream())
    result = edit_tag_environments(fake, "myproject", "app", "v1", change(add=["uat"]), KEY)
    assert result["changed"] and result["before"] == [] and result["after"] == ["uat"]
    assert result["digest"] == D1 and result["attempts"] == 1
    assert fake.patches == [tag_patch(imagestream(), "v1", KEY, "uat")]
    assert "resourceVersion" not in repr(fake.patches)
    assert result["imagestream"] == fake.stored  # what the server answered


def test_pushes_and_sibling_edits_between_read_and_write_need_no_retry():
    def meanwhile(fake):
        fake.bump(push("v1", D3))
        fake.bump(push("latest", D2))
        fake.bump(lambda stream: stream["spec"]["tags"][1]["annotations"].update({KEY: "prod,test"}))

    for tag in ("latest", "v1"):  # a spec tag, a pushed-only tag
        fake = FakeImageStreamAPI(imagestream(), before_write=meanwhile)
        result = edit_tag_environments(fake, "myproject", "app", tag, change(add=["uat"]), KEY,
                                       sleep=pytest.fail)
        assert result["attempts"] == 1 and fake.reads == 1, tag
        assert spec_tag_of(fake.stored, tag)[0]["annotations"][KEY] == "uat"
        assert fake.stored["status"]["tags"][1]["items"][0]["image"] == D3  # the pushes are kept
        assert spec_tag_of(fake.stored, "v2")[0]["annotations"][KEY] == "prod,test"  # the sibling edit too


def test_a_racing_edit_of_the_same_tag_is_recomputed_not_overwritten():
    def racing_promotion(fake):
        if not fake.patches:  # someone else adds uat to the same tag first
            fake.bump(lambda stream: stream["spec"]["tags"][1]["annotations"].update({KEY: "test,uat"}))

    fake = FakeImageStreamAPI(imagestream(), before_write=racing_promotion)
    sleeps = []
    result = edit_tag_environments(fake, "myproject", "app", "v2", change(add=["prod"]), KEY,
                                   sleep=sleeps.append, rng=lambda: 1.0)
    assert result["attempts"] == 2 and result["before"] == ["test", "uat"] and fake.reads == 2
    assert sleeps == [pytest.approx(BACKOFF_BASE_SECONDS)]
    assert fake.stored["spec"]["tags"][1]["annotations"][KEY] == "prod,test,uat"  # both landed


def test_a_racing_first_edit_of_a_pushed_only_tag_is_recomputed():
    def racing_first_promotion(fake):
        if not fake.patches:
            fake.bump(lambda stream: stream["spec"]["tags"].append(
                {"name": "v1", "annotations": {KEY: "test"}, "referencePolicy": {"type": "Source"}}))

    fake = FakeImageStreamAPI(imagestream(), before_write=racing_first_promotion)
    result = edit_tag_environments(fake, "myproject", "app", "v1", change(add=["prod"]), KEY, sleep=lambda s: None)
    assert result["attempts"] == 2 and result["before"] == ["test"]
    assert spec_tag_of(fake.stored, "v1") == [{"name": "v1", "annotations": {KEY: "prod,test"},
                                               "referencePolicy": {"type": "Source"}}]


def test_lost_races_do_not_count_but_a_run_is_still_bounded():
    count = iter(range(1000))
    fake = FakeImageStreamAPI(imagestream(), before_write=lambda fake: fake.bump(
        lambda stream: stream["spec"]["tags"][0]["annotations"].update({KEY: f"env-{int(next(count))}"})))
    sleeps = []
    with pytest.raises(ImageStreamError) as info:
        edit_tag_environments(fake, "myproject", "app", "latest", change(add=["test"]), KEY, max_attempts=4,
                              sleep=sleeps.append, rng=lambda: 0.5)
    message = str(info.value)
    assert "myproject/app:latest" in message and "16 attempts" in message and "nothing was written" in message
    assert len(sleeps) == 15 and fake.reads == 16 and fake.writes == []


def test_a_tag_that_others_keep_winning_lands_once_they_are_done():
    """23 other writers of the same tag each land once between this writer's read and write: it
    loses 23 races (more than max_attempts), and lands on the 24th attempt with all of theirs."""
    others = iter(f"env-{int(index):02}" for index in range(2, 25))

    def another_promotion(fake):
        env = next(others, None)
        if env:
            fake.bump(lambda stream: stream["spec"]["tags"][1]["annotations"].update(
                {KEY: ",".join(sorted(stream["spec"]["tags"][1]["annotations"][KEY].split(",") + [env]))}))

    fake = FakeImageStreamAPI(imagestream(), before_write=another_promotion)
    result = edit_tag_environments(fake, "myproject", "app", "v2", change(add=["env-01"]), KEY, sleep=lambda s: None)
    assert result["attempts"] == 24
    assert fake.stored["spec"]["tags"][1]["annotations"][KEY] == ",".join(
        sorted(["test"] + [f"env-{int(index):02}" for index in range(1, 25)]))


class Refusing409(FakeImageStreamAPI):
    def patch(self, namespace, stream, operations):
        self.patches.append(operations)
        raise Conflict("the object has been modified")


def test_refusals_without_a_lost_race_count_against_max_attempts():
    fake = Refusing409(imagestream())
    sleeps = []
    with pytest.raises(ImageStreamError, match="4 attempts"):
        edit_tag_environments(fake, "myproject", "app", "latest", change(add=["test"]), KEY, max_attempts=4,
                              sleep=sleeps.append, rng=lambda: 0.5)
    assert len(sleeps) == 3 and fake.reads == 4


def test_backoff_slot_is_the_attempts_own_round_trip_when_longer():
    def two_promotions(fake):
        if len(fake.patches) < 2:
            fake.bump(lambda stream: stream["spec"]["tags"][1]["annotations"].update({KEY: f"env-{len(fake.patches)}"}))

    fake = FakeImageStreamAPI(imagestream(), before_write=two_promotions)
    ticks = iter([0.0, 1.5, 10.0, 13.0, 20.0, 20.1])  # read at 0, refused at 1.5; read at 10, refused at 13
    sleeps = []
    result = edit_tag_environments(fake, "myproject", "app", "v2", change(add=["prod"]), KEY, sleep=sleeps.append,
                                   rng=lambda: 1.0, clock=lambda: next(ticks))
    assert result["attempts"] == 3
    assert sleeps == [pytest.approx(1.5), pytest.approx(min(BACKOFF_CAP_SECONDS, 3.0 * 2))]


def test_malformed_annotation_stops_before_any_write():
    stream = imagestream()
    stream["spec"]["tags"][1]["annotations"][KEY] = "test;uat"
    fake = FakeImageStreamAPI(stream)
    with pytest.raises(EnvironmentsError, match="test;uat"):
        edit_tag_environments(fake, "myproject", "app", "v2", change(add=["prod"]), KEY)
    assert fake.patches == []


def test_missing_tag_stops_before_any_write():
    fake = FakeImageStreamAPI(imagestream())
    with pytest.raises(ImageStreamError, match="no tag"):
        edit_tag_environments(fake, "myproject", "app", "v9", change(add=["prod"]), KEY)
    assert fake.patches == []


def test_removing_the_last_environment_deletes_the_annotation():
    fake = FakeImageStreamAPI(imagestream())
    result = edit_tag_environments(fake, "myproject", "app", "v2", change(remove=["test"]), KEY)
    assert result["after"] == [] and result["changed"]
    assert KEY not in fake.stored["spec"]["tags"][1]["annotations"]


# --- listing ---------------------------------------------------------------------------------


class FakeLister:
    def __init__(self, by_namespace):
        self.by_namespace = by_namespace
        self.calls = []

    def list(self, namespace=None):
        self.calls.append(namespace)
        if namespace is None:
            return [stream for streams in self.by_namespace.values() for stream in streams]
        return self.by_namespace.get(namespace, [])


def other_stream():
    stream = imagestream()
    stream["metadata"].update(name="db", namespace="other")
    stream["spec"]["tags"][0]["annotations"][KEY] = "uat prod"  # malformed
    return stream


def test_list_tags_one_call_per_namespace_or_one_cluster_wide():
    lister = FakeLister({"myproject": [imagestream()], "other": [other_stream()]})
    listing = list_tags(lister, ["myproject", "other"], KEY)
    assert lister.calls == ["myproject", "other"] and listing["list_calls"] == 2
    assert len(listing["tags"]) == 6
    lister.calls = []
    listing = list_tags(lister, None, KEY)
    assert lister.calls == [None] and listing["namespaces"] == ["*"]
    assert [(t["namespace"], t["stream"], t["tag"]) for t in listing["tags"]][:2] == [
        ("myproject", "app", "latest"), ("myproject", "app", "v1")]
    assert listing["errors"] == [{"namespace": "other", "stream": "db", "tag": "latest",
                                  "error": listing["tags"][3]["error"]}]


def test_list_tags_filter():
    lister = FakeLister({"myproject": [imagestream()], "other": [other_stream()]})
    by_test = list_tags(lister, None, KEY, "test")
    assert [(t["namespace"], t["tag"]) for t in by_test["tags"]] == [("myproject", "v2"), ("other", "v2")]
    assert len(by_test["errors"]) == 1  # left out of tags, still reported
    by_default = list_tags(lister, None, KEY, "default")
    assert [(t["namespace"], t["tag"]) for t in by_default["tags"]] == [
        ("myproject", "latest"), ("myproject", "v1"), ("other", "v1")]
    assert list_tags(lister, None, KEY, "prod")["tags"] == []


def test_an_exact_list_replaces_an_unreadable_annotation():
    stream = imagestream()
    stream["spec"]["tags"][1]["annotations"][KEY] = "test;uat"
    fake = FakeImageStreamAPI(stream)
    result = edit_tag_environments(fake, "myproject", "app", "v2", change(exact=["uat", "test"]), KEY,
                                   replace_unreadable=True)
    assert result["changed"] and result["before"] is None and "test;uat" in result["unreadable"]
    assert fake.stored["spec"]["tags"][1]["annotations"][KEY] == "test,uat"


# --- how ImageStreamAPI.patch reads the API server's answers ---------------------------------------


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"({int(status)})")
        self.status, self.body = status, json.dumps(body).encode()


def refusing(error):
    """The ImageStreamAPI of a fake registry cluster holding ``imagestream()``, answering the next
    patch with ``error``."""
    cluster = fake_cluster([dict(imagestream(), apiVersion="image.openshift.io/v1", kind="ImageStream")])
    cluster.dynamic.refuse("patch", "/imagestreams/app", error)
    return ImageStreamAPI(cluster)


# the answers of kube-apiserver 1.36 (the lab's), as sent
NOT_APPLIED = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "reason": "Invalid",
               "message": "the server rejected our request due to an error in our request", "details": {}}
INVALID = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "reason": "Invalid",
           "message": 'ImageStream.image.openshift.io "app" is invalid: spec.tags[2]: Duplicate value: {"name":"v1"}',
           "details": {"name": "app", "group": "image.openshift.io", "kind": "ImageStream",
                       "causes": [{"reason": "FieldValueDuplicate", "field": "spec.tags[2]"}]}}


def test_patch_sends_a_json_patch_and_reads_a_failed_test_as_a_conflict():
    api = refusing(ApiError(422, NOT_APPLIED))
    operations = tag_patch(imagestream(), "v2", KEY, "prod")
    with pytest.raises(Conflict) as caught:
        api.patch("myproject", "app", operations)
    assert caught.value.lost_race
    assert api.cluster.dynamic.requests[-1] == ("patch", "/apis/image.openshift.io/v1/namespaces/myproject/imagestreams/app", operations, {
        "content_type": "application/json-patch+json", "field_manager": "segmented.registry"})
    with pytest.raises(Conflict) as caught:
        refusing(ApiError(409, {"code": 409, "reason": "Conflict"})).patch("myproject", "app", [])
    assert not caught.value.lost_race


@pytest.mark.parametrize("status, body, words", [
    (422, INVALID, ["refused to update ImageStream myproject/app (422)", "Duplicate value"]),
    (403, {"code": 403, "message": "forbidden"}, ["no permission to update ImageStream myproject/app",
                                                  "get and patch"]),
    (404, {"code": 404}, ["was deleted while its tag was being edited", "nothing was written"]),
])
def test_patch_reports_other_refusals_as_errors(status, body, words):
    with pytest.raises(SegmentedRegistryError) as info:
        refusing(ApiError(status, body)).patch("myproject", "app", [])
    for word in words:
        assert word in str(info.value)
