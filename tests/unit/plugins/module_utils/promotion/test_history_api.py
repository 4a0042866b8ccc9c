"""The promotion history's ConfigMaps on the registry cluster, against a fake of ``ClusterObjects``
that keeps resourceVersions and answers a stale write with 409, as the API server does."""

import copy
import json

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.consumer import objects as objects_module
from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import Conflict
from ansible_collections.segmented.registry.plugins.module_utils.promotion import history, history_api
from ansible_collections.segmented.registry.plugins.module_utils.promotion.history import HistoryError

DIGEST = "sha256:" + "4a" * 32


class Objects:
    """ConfigMaps by (namespace, name), with resourceVersions; ``race`` writes in between once."""

    def __init__(self):
        self.store = {}
        self.writes = []
        self.race = None

    def get(self, api_version, kind, name, namespace=None, missing=None):
        found = self.store.get((namespace, name))
        if self.race:
            race, self.race = self.race, None
            race(self)
        return copy.deepcopy(found)

    def write(self, obj, verb):
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        current = self.store.get(key)
        if verb == "create" and current is not None:
            raise Conflict("already exists")
        if verb == "replace" and current["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise Conflict("the object has been modified")
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(len(self.writes) + 1)
        self.store[key] = stored
        self.writes.append((verb, key))
        return stored

    def list_labelled(self, api_version, kind, namespace, label_selector):
        return [item for (ns, _name), item in sorted(self.store.items()) if namespace in (None, ns)
                and all(item["metadata"].get("labels", {}).get(k) == v for k, v in (p.split("=") for p in label_selector.split(",")))]


def entries(tag="v1", env="prod", digest=DIGEST, time="2026-12-05T18:09:48Z"):
    return {("myproject", "app"): [history.entry(time, "promote", env, tag, None, digest, "alice", "ok", "copied")]}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(objects_module.time, "sleep", lambda seconds: None)


def test_the_first_entry_creates_the_labelled_configmap_and_the_next_updates_it():
    objects = Objects()
    written, calls = history_api.record(objects, entries(), 20)
    assert written == ["myproject/segmented-registry-history-app"] and calls == 2
    stored = objects.store[("myproject", "segmented-registry-history-app")]
    assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "segmented.registry", "segmented.registry/history": "true"}
    assert stored["metadata"]["annotations"] == {history.ANNOTATION_STREAM: "app"}
    history_api.record(objects, entries(digest="sha256:" + "5b" * 32, time="2026-12-05T18:10:00Z"), 20)
    assert [verb for verb, _key in objects.writes] == ["create", "replace"]
    stored = objects.store[("myproject", "segmented-registry-history-app")]
    assert [item["digest_after"] for item in json.loads(stored["data"]["v1.prod"])] == ["sha256:" + "5b" * 32, DIGEST]
    rows = history.flatten(history_api.read(objects, ["myproject"]))
    assert [row["stream"] for row in rows] == ["app", "app"]
    assert history_api.read(objects, ["elsewhere"]) == []


def test_a_write_that_lands_in_between_is_kept_the_run_reads_again_and_merges():
    objects = Objects()
    history_api.record(objects, entries(), 20)

    def other_run(store):
        history_api.record(store, entries(env="uat"), 20)

    objects.race = other_run
    written, calls = history_api.record(objects, entries(tag="v2"), 20)
    data = objects.store[("myproject", "segmented-registry-history-app")]["data"]
    assert sorted(data) == ["v1.prod", "v1.uat", "v2.prod"]  # nothing lost: the 409 made it read again
    assert calls == 4  # get, refused replace, get, replace


def test_a_configmap_of_that_name_not_made_by_the_collection_is_left_alone():
    objects = Objects()
    objects.store[("myproject", "segmented-registry-history-app")] = {
        "apiVersion": "v1", "kind": "ConfigMap", "data": {"mine": "x"},
        "metadata": {"name": "segmented-registry-history-app", "namespace": "myproject", "resourceVersion": "1"}}
    with pytest.raises(HistoryError, match="was not made by this collection.*rename or delete"):
        history_api.record(objects, entries(), 20)
    assert objects.writes == []


def test_a_limit_of_zero_creates_nothing():
    objects = Objects()
    assert history_api.record(objects, entries(), 0) == ([], 1)
    assert objects.store == {}
