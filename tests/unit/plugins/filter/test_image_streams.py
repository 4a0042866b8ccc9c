"""The approved tags a consumer cluster gets ImageStream tags for (plugins/filter/image_streams.py):
its environment's only, without what the run held back or failed to copy there."""
from ansible_collections.segmented.registry.plugins.filter.image_streams import FilterModule, image_stream_tags

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


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"image_stream_tags": image_stream_tags}
