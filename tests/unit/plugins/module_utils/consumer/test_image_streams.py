"""ImageStream tags on a consumer cluster (pure, then one run against the fake API server): the
logical name by digest with a Local reference policy, only this collection's tags and ImageStreams
changed, an administrator's left alone, a second run writes nothing, a demotion removes the tag."""
import copy

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.consumer import image_streams as ist
from ansible_collections.segmented.registry.plugins.module_utils.consumer.image_stream_sync import ImageStreamTags
from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ClusterObjects, ObjectsError
from ansible_collections.segmented.registry.plugins.module_utils.errors import ConsumerError
from tests.unit.plugins.module_utils.fake_cluster import fake_cluster

REGISTRY = "registry.apps.example.com"
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
OURS = {"app.kubernetes.io/managed-by": "segmented.registry"}


def tag(namespace="myproject", stream="app", name="v1", digest=A):
    return {"namespace": namespace, "stream": stream, "tag": name, "digest": digest, "environments": ["prod"]}


def namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def stream(name, tags, labels=None, ns="myproject"):
    return {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
            "metadata": {"name": name, "namespace": ns, **({"labels": labels} if labels else {})}, "spec": {"tags": tags}}


def plan(streams, tags, namespaces=("myproject",), scheduled=False):
    wanted = ist.desired(ist.check_tags(tags), namespaces, REGISTRY, scheduled)
    return ist.plan_namespace("myproject", streams, wanted["myproject"])


def test_a_new_stream_gets_the_logical_name_by_digest_with_a_local_reference():
    result = plan([], [tag()], scheduled=True)
    [(obj, verb)] = result["writes"]
    assert verb == "create" and obj["metadata"]["labels"] == OURS
    assert obj["spec"]["tags"] == [{
        "name": "v1",
        "annotations": OURS,
        "from": {"kind": "DockerImage", "name": f"{REGISTRY}/myproject/app@{A}"},
        "referencePolicy": {"type": "Local"},
        "importPolicy": {"scheduled": True},
    }]
    assert result["actions"] == [{"namespace": "myproject", "stream": "app", "tag": "v1", "action": "add",
                                  "from": f"{REGISTRY}/myproject/app@{A}"}]


def test_what_the_server_defaulted_writes_nothing_on_a_second_run():
    [(obj, _verb)] = plan([], [tag()])["writes"]
    stored = copy.deepcopy(obj)
    stored["spec"]["tags"][0]["generation"] = 2
    stored["spec"]["tags"][0]["importPolicy"]["importMode"] = "Legacy"
    assert plan([stored], [tag()]) == {"writes": [], "actions": [], "conflicts": []}


def test_a_new_digest_updates_the_tag_and_keeps_what_the_server_set():
    [(obj, _verb)] = plan([], [tag()])["writes"]
    obj["spec"]["tags"][0]["importPolicy"]["importMode"] = "Legacy"
    [(new, verb)] = plan([obj], [tag(digest=B)])["writes"]
    assert verb == "replace"
    assert new["spec"]["tags"][0]["from"]["name"].endswith("@" + B)
    assert new["spec"]["tags"][0]["importPolicy"] == {"scheduled": False, "importMode": "Legacy"}


def test_a_demotion_removes_only_this_collection_s_tag():
    theirs = {"name": "latest", "from": {"kind": "DockerImage", "name": "quay.io/x/y:latest"}}
    [(obj, _verb)] = plan([], [tag(), tag(name="v2")])["writes"]
    obj["spec"]["tags"].append(theirs)
    [(new, verb)] = plan([obj], [tag(name="v2")])["writes"]
    assert verb == "replace" and [t["name"] for t in new["spec"]["tags"]] == ["v2", "latest"]


def test_a_stream_left_without_tags_is_deleted_and_a_namespace_left_out_is_not_read():
    [(obj, _verb)] = plan([], [tag()])["writes"]
    result = plan([obj], [])
    assert result["writes"] == [(obj, "delete")]
    assert result["actions"][0]["action"] == "remove"
    assert ist.desired(ist.check_tags([tag(namespace="other")]), ["myproject"], REGISTRY, False) == {"myproject": {}}


def test_an_administrator_s_stream_is_left_alone_and_reported():
    theirs = stream("app", [{"name": "v1", "from": {"kind": "DockerImage", "name": "quay.io/x/app:v1"}}])
    result = plan([theirs], [tag()])
    assert result["writes"] == [] and result["actions"] == []
    [conflict] = result["conflicts"]
    assert conflict["tags"] == ["v1"] and "consumer_cluster_image_stream_namespaces" in conflict["message"]
    assert plan([theirs], [])["conflicts"] == []


@pytest.mark.parametrize("entry,words", [
    ({"namespace": "My_Project", "stream": "app", "tag": "v1", "digest": A}, ["tags[0].namespace"]),
    ({"namespace": "myproject", "stream": "App", "tag": "v1", "digest": A}, ["tags[0].stream"]),
    ({"namespace": "myproject", "stream": "app", "tag": "v1", "digest": "latest"}, ["tags[0].digest", "sha256:"]),
    ("myproject/app:v1", ["tags[0]", "mapping"]),
])
def test_bad_tags_are_refused_naming_the_field(entry, words):
    with pytest.raises(ist.ImageStreamsError) as error:
        ist.check_tags([entry])
    for word in words:
        assert word in str(error.value)


def test_a_tag_without_an_image_yet_is_skipped():
    assert ist.check_tags([tag(digest=None)]) == []


def objects(**kwargs):
    return ClusterObjects(fake_cluster([namespace("myproject"), namespace("other")], **kwargs))


def test_one_run_writes_then_a_second_changes_nothing_and_absent_removes():
    api = objects()
    edit = ImageStreamTags([tag(), tag(stream="db", name="v9", digest=B)], ["myproject"], REGISTRY, False)
    first = edit.apply(api)
    assert first["changed"] and first["changed_objects"] == ["ImageStream myproject/app", "ImageStream myproject/db"]
    assert first["diff"] == {"before": {"myproject": {}},
                             "after": {"myproject": {"app": {"v1": f"{REGISTRY}/myproject/app@{A}"},
                                                     "db": {"v9": f"{REGISTRY}/myproject/db@{B}"}}}}
    server = api.cluster.dynamic
    written = len(server.writes)
    assert edit.apply(api)["changed"] is False and len(server.writes) == written
    gone = edit.apply(api, present=False)
    assert gone["changed"] and gone["diff"]["after"] == {"myproject": {}}
    assert not [key for key in server.objects if key[0] == "ImageStream"]


def test_check_mode_sends_dry_runs_only():
    api = objects(dry_run=True)
    result = ImageStreamTags([tag()], ["myproject"], REGISTRY, False).apply(api)
    assert result["changed"] and not [key for key in api.cluster.dynamic.objects if key[0] == "ImageStream"]


def test_a_missing_namespace_is_an_error_before_any_write():
    api = objects()
    with pytest.raises(ObjectsError, match="namespace absent does not exist.*consumer_cluster_image_stream_namespaces"):
        ImageStreamTags([tag(), tag(namespace="absent")], ["myproject", "absent"], REGISTRY, False).apply(api)
    assert api.cluster.dynamic.writes == []


def test_an_administrator_s_stream_is_warned_about():
    api = ClusterObjects(fake_cluster([namespace("myproject"), stream("app", [])]))
    result = ImageStreamTags([tag()], ["myproject"], REGISTRY, False).apply(api)
    assert result["changed"] is False and len(result["warnings"]) == 1 and api.cluster.dynamic.writes == []


@pytest.mark.parametrize("registry", ["", "registry.apps.example.com/ns", "*.example.com", "Not A Host"])
def test_a_bad_registry_is_refused(registry):
    with pytest.raises(ConsumerError, match="registry"):
        ImageStreamTags([tag()], ["myproject"], registry, False)


def test_a_tag_without_the_annotation_is_taken_over_so_a_demotion_can_remove_it():
    [(obj, _verb)] = plan([], [tag()])["writes"]
    del obj["spec"]["tags"][0]["annotations"]
    [(new, verb)] = plan([obj], [tag()])["writes"]
    assert verb == "replace" and new["spec"]["tags"][0]["annotations"] == OURS
