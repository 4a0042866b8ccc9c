"""The image_streams module's arguments and result, with its work layer faked: the
``ImageStreamTags`` edit it builds and the ``ClusterObjects`` it applies it to (the consumer module
helper ``run`` between them is real)."""
import pytest

from ansible_collections.segmented.registry.plugins.modules import image_streams
from tests.unit.plugins.modules.harness import Fail, caller, documented, fake_consumer_layer

NOWHERE = {"host": "https://127.0.0.1:9", "api_key": "sha256~unused-token"}
REGISTRY = "registry.apps.example.com"
TAGS = [{"namespace": "myproject", "stream": "app", "tag": "v1", "digest": "sha256:" + "a" * 64}]
CONFLICT = "ImageStream myproject/db exists on the consumer cluster and was not made by this collection"

#: What ImageStreamTags.apply returns (diff and warnings included; the module keeps the diff in diff mode only).
APPLIED = {
    "changed": True,
    "actions": [{"namespace": "myproject", "stream": "app", "tag": "v1", "action": "add", "from": f"{REGISTRY}/myproject/app@sha256:{'a' * 64}"}],
    "conflicts": [{"namespace": "myproject", "stream": "db", "tags": ["v2"], "message": CONFLICT}],
    "warnings": [CONFLICT],
    "namespaces": ["myproject"],
    "changed_objects": ["ImageStream myproject/app"],
    "diff": {"before": {"myproject": {}}, "after": {"myproject": {"app": {"v1": "x"}}}},
}


@pytest.fixture
def calls(monkeypatch):
    seen = []
    fake_consumer_layer(monkeypatch, seen, image_streams, "ImageStreamTags", APPLIED)
    return seen


run = caller(image_streams, NOWHERE)


@pytest.mark.parametrize("args,words", [
    ({"namespaces": ["myproject"]}, ["registry"]),
    ({"registry": REGISTRY}, ["namespaces"]),
    ({"namespaces": ["myproject"], "registry": REGISTRY, "state": "gone"}, ["state", "present, absent"]),
    ({"namespaces": ["myproject"], "registry": REGISTRY, "scheduled_import": "sometimes"}, ["scheduled_import", "bool"]),
    ({"namespaces": ["myproject"], "registry": REGISTRY, "tags": "myproject/app:v1"}, ["tags"]),
])
def test_bad_arguments_fail_naming_the_option_and_reach_nothing(run_module, calls, args, words):
    result = run(run_module, Fail, **args)
    for word in words:
        assert word in result["msg"], result["msg"]
    assert calls == []


def test_the_options_reach_the_edit_in_their_place(run_module, calls):
    run(run_module, namespaces=["myproject"], registry=REGISTRY)
    assert calls[0] == ("build", ([], ["myproject"], REGISTRY, False))
    assert calls[2] == ("apply", "the cluster", True)
    run(run_module, namespaces=["myproject"], registry=REGISTRY, tags=TAGS, scheduled_import=True, state="absent")
    assert calls[3] == ("build", (TAGS, ["myproject"], REGISTRY, True))
    assert calls[5] == ("apply", "the cluster", False)


def test_the_result_has_exactly_the_documented_keys_and_conflicts_warn(run_module, calls, monkeypatch):
    warned = []
    monkeypatch.setattr(image_streams.AnsibleK8SModule, "warn", lambda self, message: warned.append(message), raising=False)
    result = run(run_module, namespaces=["myproject"], registry=REGISTRY, tags=TAGS)
    assert set(result) == set(documented(image_streams)) | {"changed"}
    assert warned == [CONFLICT]
    assert "diff" not in result


def test_check_and_diff_mode(run_module, calls):
    result = run(run_module, namespaces=["myproject"], registry=REGISTRY, _ansible_check_mode=True, _ansible_diff=True)
    assert calls[1] == ("connect", True, True)
    assert result["diff"] == APPLIED["diff"]
