"""The consumer clusters that ask for ImageStream tags, and the approved tags each gets
(plugins/filter/image_streams.py): its environment's only, without what the run held back or failed
to copy there."""
from ansible_collections.segmented.registry.plugins.filter.image_streams import FilterModule, image_stream_consumers, image_stream_tags

A = "sha256:" + "a" * 64


def entry(tag, environments):
    return {"namespace": "myproject", "stream": "app", "tag": tag, "digest": A, "environments": environments}


TAGS = [entry("v1", ["test", "prod"]), entry("v2", ["test"]), entry("v3", ["default"])]


def test_only_the_environment_s_tags():
    assert [item["tag"] for item in image_stream_tags(TAGS, "prod")] == ["v1"]
    assert [item["tag"] for item in image_stream_tags(TAGS, "test", None)] == ["v1", "v2"]


def test_what_the_run_held_back_or_failed_there_is_left_out_and_elsewhere_kept():
    run = {"gated": [{"action": "gated", "environment": "prod", "repository": "myproject/app", "tag": "v1", "digest": A}],
           "failures": [{"action": "failed", "environment": "test", "repository": "myproject/app", "tag": "v2", "digest": A}]}
    assert image_stream_tags(TAGS, "prod", run) == []
    assert [item["tag"] for item in image_stream_tags(TAGS, "test", run)] == ["v1"]


def test_the_filters_are_registered():
    assert FilterModule().filters() == {"image_stream_consumers": image_stream_consumers, "image_stream_tags": image_stream_tags}


TOPOLOGY = {"promotion_order": ["test", "prod"],
            "environments": {"test": {"consumers": ["test-a", "test-b", "gone"]}, "prod": {"consumers": ["prod-a", "prod-b"]},
                             "retired": {"consumers": ["retired-a"]}}}


def test_the_consumers_that_ask_are_those_of_a_promotion_target_in_the_inventory_with_namespaces():
    hostvars = {"test-a": {"consumer_cluster_image_stream_namespaces": ["payments", "myproject"]},
                "test-b": {"consumer_cluster_image_stream_namespaces": []},  # empty: does not ask
                "prod-a": {},  # undefined: does not ask
                "prod-b": {"consumer_cluster_image_stream_namespaces": ["myproject", "shop"]},
                "retired-a": {"consumer_cluster_image_stream_namespaces": ["old"]}}  # state absent: not in promotion_order
    # "gone" is a consumer of test but not a host of the inventory: skipped
    assert image_stream_consumers(hostvars, TOPOLOGY) == {"consumers": ["test-a", "prod-b"], "namespaces": ["myproject", "payments", "shop"]}


def test_no_consumer_asks():
    assert image_stream_consumers({"test-a": {"consumer_cluster_image_stream_namespaces": None}}, TOPOLOGY) == {"consumers": [], "namespaces": []}


def test_a_rollback_keeps_the_digest_it_rolled_back_to_while_the_source_serves_the_one_it_left():
    B = "sha256:" + "b" * 64
    rolled_back = [dict(TAGS[0], rollbacks={"prod": {"rolled_back_from": A, "rolled_back_to": B}}), dict(TAGS[1], rollbacks={})]
    [prod] = image_stream_tags(rolled_back, "prod")
    assert prod["digest"] == B and rolled_back[0]["digest"] == A  # the input is not changed
    assert [item["digest"] for item in image_stream_tags(rolled_back, "test")] == [A, A]  # rolled back in prod only
    moved_on = [dict(rolled_back[0], digest="sha256:" + "c" * 64)]
    assert image_stream_tags(moved_on, "prod") == moved_on  # the source moved: the pin is over
    assert image_stream_tags(TAGS, "prod") == [TAGS[0]]  # listed without rollbacks: none honoured
