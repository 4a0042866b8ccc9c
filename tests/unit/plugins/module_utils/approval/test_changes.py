"""Unit tests of plugins/module_utils/approval/changes.py: the events of the event source, from the
last known state of a stream's tags and the ImageStream now."""

from ansible_collections.segmented.registry.plugins.module_utils.approval.changes import TagState, deleted, diff, field_manager

KEY = "segmented.registry/environments"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def stream(tags, managed=None, namespace="team", name="app"):
    """An ImageStream with spec tags ``{tag: annotation value or None}`` and a pushed image per tag
    (``{tag: (value, digest)}``)."""
    spec, status = [], []
    for tag, (value, image) in tags.items():
        if value is not None:
            spec.append({"name": tag, "annotations": {KEY: value}})
        if image is not None:
            status.append({"tag": tag, "items": [{"image": image}]})
    meta = {"namespace": namespace, "name": name, "managedFields": managed or []}
    return {"metadata": meta, "spec": {"tags": spec}, "status": {"tags": status}}


def entry(manager, fields, time="2026-12-05T10:00:00Z"):
    return {"manager": manager, "operation": "Update", "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields}


def annotated(tag, key=KEY):
    return {"f:spec": {"f:tags": {'k:{"name":"%s"}' % tag: {"f:annotations": {f"f:{key}": {}}}}}}


def test_an_added_environment_is_one_changed_event_with_before_after_digest_and_manager():
    before = {"v1": TagState(("test",), D1)}
    events, after = diff(before, stream({"v1": ("test,uat", D1)}, [entry("oc", annotated("v1"))]), KEY)
    assert events == [
        {
            "type": "changed",
            "namespace": "team",
            "stream": "app",
            "tag": "v1",
            "environments_before": ["test"],
            "environments_after": ["test", "uat"],
            "digest": D1,
            "digest_before": D1,
            "manager": "oc",
        }
    ]
    assert after == {"v1": TagState(("test", "uat"), D1)}


def test_nothing_changed_no_event():
    before = {"v1": TagState(("test",), D1), "v2": TagState(("default",), D2)}
    events, after = diff(before, stream({"v1": ("test", D1), "v2": (None, D2)}), KEY)
    assert events == []
    assert after == before


def test_a_new_source_digest_of_an_approved_tag_is_an_event():
    events, _after = diff({"v1": TagState(("prod",), D1)}, stream({"v1": ("prod", D2)}), KEY)
    assert [(e["type"], e["digest_before"], e["digest"], e["environments_after"]) for e in events] == [("changed", D1, D2, ["prod"])]


def test_a_tag_in_default_only_gives_no_event_pushed_or_removed():
    events, after = diff({}, stream({"v1": (None, D1)}), KEY)
    assert events == [] and after == {"v1": TagState(("default",), D1)}
    events, _after = diff(after, stream({"v1": (None, D2)}), KEY)
    assert events == []
    events, _after = diff(after, stream({}), KEY)
    assert events == []


def test_the_last_environment_removed_is_a_change_to_default():
    events, _after = diff({"v1": TagState(("test",), D1)}, stream({"v1": (None, D1)}), KEY)
    assert [(e["environments_before"], e["environments_after"]) for e in events] == [(["test"], ["default"])]


def test_a_new_tag_with_an_approval_list_is_a_change_from_default():
    events, _after = diff({}, stream({"v1": ("uat", D1)}), KEY)
    assert [(e["tag"], e["environments_before"], e["environments_after"], e["digest_before"]) for e in events] == [("v1", ["default"], ["uat"], None)]


def test_a_removed_tag_with_environments_is_a_deletion():
    before = {"v1": TagState(("test",), D1), "v2": TagState(("prod",), D2)}
    events, after = diff(before, stream({"v1": ("test", D1)}), KEY)
    assert events == [
        {
            "type": "deleted",
            "namespace": "team",
            "stream": "app",
            "tag": "v2",
            "environments_before": ["prod"],
            "environments_after": ["default"],
            "digest_before": D2,
        }
    ]
    assert set(after) == {"v1"}


def test_a_deleted_stream_deletes_its_approved_tags_only():
    before = {"a": TagState(("test",), D1), "b": TagState(("default",), D2)}
    assert [e["tag"] for e in deleted("team", "app", before)] == ["a"]


def test_an_unreadable_list_is_an_error_event_naming_tag_and_field_once():
    before = {"v1": TagState(("test",), D1)}
    events, after = diff(before, stream({"v1": ("test;uat", D1)}, [entry("kubectl-edit", annotated("v1"))]), KEY)
    assert [(e["type"], e["tag"], e["field"]) for e in events] == [("error", "v1", KEY)]
    assert "team/app:v1" in events[0]["message"] and KEY in events[0]["message"]
    # the last good list is kept, so fixing it back is no change; the same problem is not repeated
    assert after["v1"].environments == ("test",) and after["v1"].error
    assert diff(after, stream({"v1": ("test;uat", D1)}), KEY)[0] == []
    events, after = diff(after, stream({"v1": ("test", D1)}), KEY)
    assert events == [] and after == {"v1": TagState(("test",), D1)}


def test_an_unknown_environment_is_an_error_event_when_the_known_ones_are_given():
    events, _after = diff({}, stream({"v1": ("test,staging", D1)}), KEY, known=["test", "uat", "prod"])
    assert [(e["type"], e["tag"]) for e in events] == [("error", "v1")]
    assert "staging" in events[0]["message"] and "not a known environment" in events[0]["message"]
    assert f"annotation {KEY} of team/app:v1" in events[0]["message"]
    assert diff({}, stream({"v1": ("test,staging", D1)}), KEY)[0][0]["type"] == "changed"


def test_the_field_manager_is_the_one_covering_the_annotation_most_closely_then_latest():
    managed = [
        entry("openshift-controller-manager", {"f:status": {"f:tags": {}}}, "2026-12-05T12:00:00Z"),
        entry("builder", {"f:spec": {"f:tags": {}}}, "2026-12-05T11:00:00Z"),
        entry("oc", annotated("v1"), "2026-12-05T09:00:00Z"),
        entry("segmented.registry", annotated("v1"), "2026-12-05T10:00:00Z"),
        entry("other-tag", annotated("v2"), "2026-12-05T13:00:00Z"),
    ]
    assert field_manager(stream({"v1": ("test", D1)}, managed), "v1", KEY) == "segmented.registry"
    # only the tag list as a whole (an atomic list), then nothing
    assert field_manager(stream({"v1": ("test", D1)}, managed[:2]), "v1", KEY) == "builder"
    assert field_manager(stream({"v1": ("test", D1)}, managed[:1]), "v1", KEY) is None
    # another annotation of the tag beats the list as a whole
    other = entry("labeller", {"f:spec": {"f:tags": {'k:{"name":"v1"}': {"f:annotations": {"f:note": {}}}}}})
    assert field_manager(stream({"v1": ("test", D1)}, [managed[1], other]), "v1", KEY) == "labeller"
