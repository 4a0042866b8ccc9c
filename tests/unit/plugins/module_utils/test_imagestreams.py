# -*- coding: utf-8 -*-
"""Unit tests of the pure parts of plugins/module_utils/imagestreams.py and of its retry loop
(with an in-memory stand-in for the API server that answers 409 like the real one)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import functools

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.environments import (
    EnvironmentsError,
    apply_change,
)
from ansible_collections.segmented.registry.plugins.module_utils.imagestreams import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    Conflict,
    ImageStreamError,
    backoff_delay,
    digest,
    edit_tag_environments,
    list_tags,
    new_spec_tags,
    require_tag,
    resolve_tag_reference,
    split_name,
    stored_environments,
    tag_entries,
    tag_names,
    with_environments,
)

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
    entries = dict((entry["tag"], entry) for entry in tag_entries(stream, KEY))
    assert entries["latest"]["environments"] is None and '"Prod"' in entries["latest"]["error"]
    assert entries["v1"] == {"namespace": "myproject", "stream": "app", "tag": "v1", "digest": D1,
                             "environments": ["default"]}
    assert entries["v2"]["environments"] == ["test"] and "error" not in entries["v2"]


# --- computing the write ---------------------------------------------------------------------


def test_pushed_only_tag_gets_a_spec_tag_without_from():
    stream = imagestream()
    tags = new_spec_tags(stream, "v1", KEY, "test,uat")
    assert tags[:2] == stream["spec"]["tags"]  # the other tags untouched
    assert tags[2] == {"name": "v1", "annotations": {KEY: "test,uat"}, "referencePolicy": {"type": "Source"}}
    assert "from" not in tags[2]


def test_spec_tag_keeps_other_annotations_and_fields():
    stream = imagestream()
    tags = new_spec_tags(stream, "latest", KEY, "prod")
    expected = copy.deepcopy(stream["spec"]["tags"][0])
    expected["annotations"][KEY] = "prod"
    assert tags[0] == expected
    assert tags[1] == stream["spec"]["tags"][1]
    assert len(tags) == 2


def test_removing_the_annotation_keeps_the_spec_tag_and_other_annotations():
    stream = imagestream()
    stream["spec"]["tags"][0]["annotations"][KEY] = "prod"
    tags = new_spec_tags(stream, "latest", KEY, None)
    assert tags[0]["annotations"] == {"description": "tracks upstream", "openshift.io/display-name": "App"}
    assert tags[0]["from"] == stream["spec"]["tags"][0]["from"]


def test_removing_from_a_pushed_only_tag_adds_nothing():
    stream = imagestream()
    assert new_spec_tags(stream, "v1", KEY, None) == stream["spec"]["tags"]


def test_input_is_not_mutated():
    stream = imagestream()
    before = copy.deepcopy(stream)
    new_spec_tags(stream, "latest", KEY, "prod")
    with_environments(stream, "v1", KEY, ["test"])
    assert stream == before


def test_with_environments_keeps_everything_else_and_the_resource_version():
    stream = imagestream()
    updated = with_environments(stream, "v2", KEY, ["uat", "test"])
    assert updated["metadata"] == stream["metadata"]  # resourceVersion "41": the write is conditional on it
    assert updated["status"] == stream["status"]
    assert updated["spec"]["lookupPolicy"] == {"local": True}
    assert updated["spec"]["tags"][1]["annotations"] == {KEY: "test,uat"}
    assert updated["spec"]["tags"][0] == stream["spec"]["tags"][0]


def test_with_environments_on_a_stream_without_spec():
    stream = {"metadata": {"name": "s", "namespace": "n", "resourceVersion": "1"},
              "status": {"tags": [{"tag": "t", "items": [{"image": D1}]}]}}
    updated = with_environments(stream, "t", KEY, ["test"])
    assert updated["spec"] == {"tags": [{"name": "t", "annotations": {KEY: "test"},
                                         "referencePolicy": {"type": "Source"}}]}


def test_with_environments_other_annotation_key():
    updated = with_environments(imagestream(), "v2", "environment", ["prod"])
    assert updated["spec"]["tags"][1]["annotations"] == {KEY: "test", "environment": "prod"}


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


# --- the retry loop against an in-memory API server ------------------------------------------


class FakeRegistry:
    """Stores one ImageStream; PUT with a stale resourceVersion gets Conflict, like the API
    server. ``before_write`` runs between the module's read and its write (a push, say).

    ``status_subresource`` (as OpenShift and the lab serve ImageStreams): a write of the main
    resource keeps the stored status whatever the body says. False: the body is stored as sent,
    status included, so a write built from a stale read visibly drops the pushes it missed (the
    server would hide that bug; a test that claims pushes are kept must see it)."""

    def __init__(self, stream, before_write=None, status_subresource=True):
        self.status_subresource = status_subresource
        self.stored = copy.deepcopy(stream)
        self.version = int(stream["metadata"]["resourceVersion"])
        self.before_write = before_write
        self.reads = 0
        self.writes = []

    def bump(self, mutate):
        mutate(self.stored)
        self.version += 1
        self.stored["metadata"]["resourceVersion"] = str(self.version)

    def get(self, namespace, stream):
        self.reads += 1
        return copy.deepcopy(self.stored)

    def replace(self, body):
        if self.before_write:
            self.before_write(self)
        if body["metadata"]["resourceVersion"] != str(self.version):
            raise Conflict("the object has been modified")
        self.writes.append(copy.deepcopy(body))
        status = self.stored["status"]
        self.stored = copy.deepcopy(body)
        if self.status_subresource:
            self.stored["status"] = status  # the main resource ignores status
        self.version += 1
        self.stored["metadata"]["resourceVersion"] = str(self.version)
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
    fake = FakeRegistry(imagestream())
    result = edit_tag_environments(fake, "myproject", "app", "v2", change(add=["test"]), KEY)
    assert result["changed"] is False and result["attempts"] == 1 and fake.writes == []


def test_edit_writes_once_conditionally():
    fake = FakeRegistry(imagestream())
    result = edit_tag_environments(fake, "myproject", "app", "v1", change(add=["uat"]), KEY)
    assert result["changed"] and result["before"] == [] and result["after"] == ["uat"]
    assert result["digest"] == D1 and result["attempts"] == 1
    assert fake.writes[0]["metadata"]["resourceVersion"] == "41"


def test_a_push_to_a_sibling_between_read_and_write_is_retried_and_kept():
    pushes = iter([push("v1", D3), push("v2", D2)])

    def sibling_push(fake):
        mutate = next(pushes, None)
        if mutate:
            fake.bump(mutate)

    fake = FakeRegistry(imagestream(), before_write=sibling_push, status_subresource=False)
    sleeps = []
    result = edit_tag_environments(fake, "myproject", "app", "latest", change(add=["prod"]), KEY,
                                   sleep=sleeps.append, rng=lambda: 1.0)
    assert result["changed"] and result["attempts"] == 3 and fake.reads == 3
    assert sleeps == [pytest.approx(BACKOFF_BASE_SECONDS), pytest.approx(2 * BACKOFF_BASE_SECONDS)]
    assert len(fake.writes) == 1
    assert fake.stored["status"]["tags"][1]["items"][0]["image"] == D3  # the pushes are kept
    assert fake.stored["status"]["tags"][2]["items"][0]["image"] == D2
    assert fake.stored["spec"]["tags"][0]["annotations"][KEY] == "prod"


def test_a_racing_promotion_is_recomputed_not_overwritten():
    def racing_promotion(fake):
        if not fake.writes and fake.version == 41:  # someone else adds uat to the same tag first
            fake.bump(lambda stream: stream["spec"]["tags"][1]["annotations"].update({KEY: "test,uat"}))

    fake = FakeRegistry(imagestream(), before_write=racing_promotion)
    result = edit_tag_environments(fake, "myproject", "app", "v2", change(add=["prod"]), KEY, sleep=lambda s: None)
    assert result["attempts"] == 2 and result["before"] == ["test", "uat"]
    assert fake.stored["spec"]["tags"][1]["annotations"][KEY] == "prod,test,uat"  # both landed


def test_bounded_attempts_then_a_clear_error():
    fake = FakeRegistry(imagestream(), before_write=lambda fake: fake.bump(push("v1", D2)))
    sleeps = []
    with pytest.raises(ImageStreamError) as info:
        edit_tag_environments(fake, "myproject", "app", "v1", change(add=["test"]), KEY, max_attempts=4,
                              sleep=sleeps.append, rng=lambda: 0.5)
    assert "4 attempts" in str(info.value) and "nothing was written" in str(info.value)
    assert len(sleeps) == 3 and fake.writes == [] and fake.reads == 4


def test_malformed_annotation_stops_before_any_write():
    stream = imagestream()
    stream["spec"]["tags"][1]["annotations"][KEY] = "test;uat"
    fake = FakeRegistry(stream)
    with pytest.raises(EnvironmentsError, match="test;uat"):
        edit_tag_environments(fake, "myproject", "app", "v2", change(add=["prod"]), KEY)
    assert fake.writes == []


def test_missing_tag_stops_before_any_write():
    fake = FakeRegistry(imagestream())
    with pytest.raises(ImageStreamError, match="no tag"):
        edit_tag_environments(fake, "myproject", "app", "v9", change(add=["prod"]), KEY)
    assert fake.writes == []


def test_removing_the_last_environment_deletes_the_annotation():
    fake = FakeRegistry(imagestream())
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
    fake = FakeRegistry(stream)
    result = edit_tag_environments(fake, "myproject", "app", "v2", change(exact=["uat", "test"]), KEY,
                                   replace_unreadable=True)
    assert result["changed"] and result["before"] is None and "test;uat" in result["unreadable"]
    assert fake.stored["spec"]["tags"][1]["annotations"][KEY] == "test,uat"
