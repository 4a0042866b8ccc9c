"""Unit tests of plugins/module_utils/approval/watcher.py against a fake cluster: the first list's
initial events, watch events, bookmarks, 410 Gone (a new list emits only the differences) and
errors (a capped back-off, then the watch resumes where it was)."""

import threading

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.approval.watcher import Watcher
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, Gone

KEY = "segmented.registry/environments"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
#: the kind as the fake cluster names it (cluster.Cluster's is a Kind)
IMAGESTREAM = "imagestreams"


def stream(name, tags, version="1", namespace="team"):
    """An ImageStream ``{tag: (annotation value or None, digest)}``."""
    spec = [{"name": tag, "annotations": {KEY: value}} for tag, (value, _image) in tags.items() if value is not None]
    status = [{"tag": tag, "items": [{"image": image}]} for tag, (_value, image) in tags.items()]
    meta = {"namespace": namespace, "name": name, "resourceVersion": version}
    return {"metadata": meta, "spec": {"tags": spec}, "status": {"tags": status}}


class FakeCluster:
    """Answers ``list_from`` with the next of ``lists`` and ``watch`` with the next of ``watches``:
    a list of watch events, or an exception raised when the watch starts (or after its events,
    for a (events, exception) pair). Records every call."""

    def __init__(self, lists, watches):
        self.lists = list(lists)
        self.watches = list(watches)
        self.calls = []

    def list_from(self, kind, namespace):
        self.calls.append(("list", kind, namespace))
        answer = self.lists.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def watch(self, kind, namespace, resource_version, timeout_seconds, allow_bookmarks=True):
        self.calls.append(("watch", kind, namespace, resource_version, timeout_seconds, allow_bookmarks))
        if not self.watches:
            raise EndOfTest()
        answer = self.watches.pop(0)
        events, error = answer if isinstance(answer, tuple) else (answer, None)
        if isinstance(events, Exception):
            raise events
        yield from events
        if error is not None:
            raise error


class EndOfTest(Exception):
    """The fake has nothing more to answer."""


class Stop(threading.Event):
    """A stop event whose waits (the back-off) return at once and are recorded."""

    def __init__(self):
        super().__init__()
        self.waits = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return False


def run(cluster, namespace="team", **options):
    """Every event the watcher emits until the fake runs out; (events, waits)."""
    stop = Stop()
    watcher = Watcher(cluster, IMAGESTREAM, namespace, KEY, **options)
    events = []
    with pytest.raises(EndOfTest):
        for event in watcher.events(stop):
            events.append(event)
    return events, stop.waits


def brief(events):
    return [(e["type"], e.get("tag"), e.get("environments_before"), e.get("environments_after")) for e in events]


def test_the_first_list_emits_one_initial_event_and_the_errors_then_the_watch_starts_from_its_version():
    listed = [stream("app", {"v1": ("test", D1), "v2": ("te st", D1)}), stream("web", {"v1": (None, D2)})]
    cluster = FakeCluster([(listed, "100")], [])
    events, _waits = run(cluster, timeout_seconds=60)
    assert [(e["type"], e["namespace"], e.get("tag")) for e in events] == [("initial", "team", None), ("error", "team", "v2")]
    assert cluster.calls == [("list", IMAGESTREAM, "team"), ("watch", IMAGESTREAM, "team", "100", 60, True)]


def test_every_namespace_gets_its_initial_event_when_all_are_watched():
    listed = [stream("app", {}, namespace="b"), stream("app", {}, namespace="a"), stream("web", {}, namespace="a")]
    events, _waits = run(FakeCluster([(listed, "1")], []), namespace=None)
    assert [(e["type"], e["namespace"]) for e in events] == [("initial", "a"), ("initial", "b")]


def test_watch_events_emit_what_changed_and_bookmarks_move_the_resource_version():
    cluster = FakeCluster(
        [([stream("app", {"v1": ("test", D1)})], "100")],
        [
            [
                {"type": "MODIFIED", "object": stream("app", {"v1": ("test,uat", D1)}, "101")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}},
                {"type": "ADDED", "object": stream("web", {"v9": ("prod", D2)}, "151")},
            ],
            [{"type": "DELETED", "object": stream("app", {"v1": ("test,uat", D1)}, "160")}],
        ],
    )
    events, _waits = run(cluster)
    assert brief(events) == [
        ("initial", None, None, None),
        ("changed", "v1", ["test"], ["test", "uat"]),
        ("changed", "v9", ["default"], ["prod"]),
        ("deleted", "v1", ["test", "uat"], ["default"]),
    ]
    # each watch resumes from the last resourceVersion seen (the bookmark's, then the last object's)
    assert [call[3] for call in cluster.calls if call[0] == "watch"] == ["100", "151", "160"]


def test_gone_lists_again_and_emits_only_what_changed_meanwhile():
    first = [stream("app", {"v1": ("test", D1), "v2": ("uat", D1)}), stream("old", {"x": ("prod", D2)})]
    # while the watch was behind: v1 promoted to uat, v2 untouched, the stream old deleted, new added
    second = [stream("app", {"v1": ("test,uat", D1), "v2": ("uat", D1)}), stream("new", {"y": ("test", D2)})]
    cluster = FakeCluster([(first, "100"), (second, "300")], [Gone("too old resource version"), []])
    events, waits = run(cluster)
    assert brief(events) == [
        ("initial", None, None, None),
        ("changed", "v1", ["test"], ["test", "uat"]),
        ("changed", "y", ["default"], ["test"]),
        ("deleted", "x", ["prod"], ["default"]),
    ]
    assert [call[0] for call in cluster.calls] == ["list", "watch", "list", "watch", "watch"]
    assert waits == []  # a relist is not a failure


def test_gone_in_the_middle_of_a_watch_keeps_what_came_before_it():
    cluster = FakeCluster(
        [([stream("app", {"v1": ("test", D1)})], "100"), ([stream("app", {"v1": ("prod", D1)})], "200")],
        [([{"type": "MODIFIED", "object": stream("app", {"v1": ("uat", D1)}, "150")}], Gone("410"))],
    )
    events, _waits = run(cluster)
    assert brief(events) == [("initial", None, None, None), ("changed", "v1", ["test"], ["uat"]), ("changed", "v1", ["uat"], ["prod"])]


def test_errors_back_off_capped_then_the_watch_resumes_where_it_was():
    failure = ClusterError("cannot reach the API server")
    cluster = FakeCluster(
        [failure, failure, ([stream("app", {"v1": ("test", D1)})], "100")],
        [
            failure,
            failure,
            failure,
            ([{"type": "MODIFIED", "object": stream("app", {"v1": ("uat", D1)}, "120")}], failure),
            failure,
            [{"type": "MODIFIED", "object": stream("app", {"v1": ("prod", D1)}, "130")}],
        ],
    )
    events, waits = run(cluster, backoff_base=1.0, backoff_cap=3.0)
    # the initial event comes once, when the first list succeeds; no change is repeated
    assert brief(events) == [("initial", None, None, None), ("changed", "v1", ["test"], ["uat"]), ("changed", "v1", ["uat"], ["prod"])]
    # equal jitter: each wait within [half, all] of min(cap, base * 2 ** (failures - 1)); a list or
    # a watch event that comes through starts the count again
    ceilings = [1.0, 2.0, 1.0, 2.0, 3.0, 1.0, 2.0]
    assert len(waits) == len(ceilings)
    assert all(ceiling / 2 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings)), waits
    # no relist: each watch resumes from the last resourceVersion seen
    assert [call[0] for call in cluster.calls].count("list") == 3
    assert [call[3] for call in cluster.calls if call[0] == "watch"] == ["100", "100", "100", "100", "120", "120", "130"]


def test_stop_ends_the_events_between_two_watch_events():
    cluster = FakeCluster(
        [([stream("app", {"v1": ("test", D1)})], "100")],
        [
            [
                {"type": "MODIFIED", "object": stream("app", {"v1": ("uat", D1)}, "101")},
                {"type": "MODIFIED", "object": stream("app", {"v1": ("prod", D1)}, "102")},
            ]
        ],
    )
    stop = threading.Event()
    events = []
    for event in Watcher(cluster, IMAGESTREAM, "team", KEY).events(stop):
        events.append(event)
        if event["type"] == "changed":
            stop.set()
    assert brief(events) == [("initial", None, None, None), ("changed", "v1", ["test"], ["uat"])]


def test_unknown_environments_are_errors_with_the_known_list():
    cluster = FakeCluster([([stream("app", {"v1": ("test", D1)})], "100")], [[{"type": "MODIFIED", "object": stream("app", {"v1": ("qa", D1)}, "101")}]])
    events, _waits = run(cluster, known=["test", "uat", "prod"])
    assert [e["type"] for e in events] == ["initial", "error"]
    assert "qa" in events[1]["message"]


def test_an_imagestream_of_a_shape_it_cannot_read_is_logged_and_skipped_and_the_watch_goes_on(caplog):
    """A spec that is no object, tags that are no objects, a status item that is no object: each is
    logged, the stream keeps its last known state (no deleted event, no change event), and the
    events of the other streams and of the next good version of that stream still come."""
    def bad(shape, version):
        item = stream("app", {"v1": ("test", D1)}, version)
        item.update(shape)
        return item

    cluster = FakeCluster(
        [([bad({"spec": "oops"}, "1"), stream("web", {"v1": ("test", D2)})], "100")],
        [[
            {"type": "MODIFIED", "object": stream("app", {"v1": ("test", D1)}, "101")},
            {"type": "MODIFIED", "object": bad({"spec": {"tags": ["v1"]}}, "102")},
            {"type": "MODIFIED", "object": bad({"status": {"tags": [{"tag": "v1", "items": ["sha"]}]}}, "103")},
            {"type": "MODIFIED", "object": stream("web", {"v1": ("test,uat", D2)}, "104")},
            {"type": "MODIFIED", "object": stream("app", {"v1": ("test,prod", D1)}, "105")},
        ]],
    )
    with caplog.at_level("ERROR", logger="segmented.registry.approvals"):
        events, _waits = run(cluster)
    assert [(e["type"], e.get("stream"), e.get("environments_after")) for e in events] == [
        ("initial", None, None),
        ("changed", "app", ["test"]),  # first readable at 101
        ("changed", "web", ["test", "uat"]),
        ("changed", "app", ["prod", "test"]),  # against 101's state: 102 and 103 were skipped
    ]
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 3 and all(line.startswith("ImageStream team/app cannot be read (AttributeError: ") for line in logged)
    assert all(line.endswith("its events are skipped until it changes") for line in logged)


def test_an_error_the_api_server_answered_lists_again_instead_of_resuming():
    # kube-apiserver ends every watch resumed from "100" with a 500 (PrevKv=nil after a compaction at
    # the next change's revision): resuming from there again would fail forever
    refused = ClusterError("the API server ended the watch: etcd event received with PrevKv=nil", status=500)
    cluster = FakeCluster(
        [([stream("app", {"v1": ("test", D1)})], "100"), ([stream("app", {"v1": ("uat", D1)}, "120")], "125")],
        [refused, []],
    )
    events, _waits = run(cluster)
    assert brief(events) == [("initial", None, None, None), ("changed", "v1", ["test"], ["uat"])]
    assert [call[0] if call[0] == "list" else call[3] for call in cluster.calls] == ["list", "100", "list", "125", "125"]
