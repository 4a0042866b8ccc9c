"""Unit tests of plugins/module_utils/approval/event_source.py (the watchers' threads and the asyncio
queue) and of the event source's argument checks (extensions/eda/plugins/event_source/approvals.py,
loaded by path as ansible-rulebook loads it)."""

import asyncio
import os
import runpy
import threading

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.approval import event_source
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, SegmentedRegistryError
from tests.unit.plugins.module_utils.fake_cluster import fake_cluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))))
APPROVALS = os.path.join(REPO, "extensions", "eda", "plugins", "event_source", "approvals.py")


class Source:
    """A watcher stand-in: ``events`` yields its events from a thread of the caller's (checked),
    then blocks until stopped, or raises ``error``."""

    def __init__(self, namespace, events, error=None):
        self.namespace = namespace
        self.list = events
        self.error = error
        self.threads = set()
        self.stopped = threading.Event()

    def events(self, stop):
        self.threads.add(threading.current_thread().name)
        yield from self.list
        if self.error is not None:
            raise self.error
        stop.wait()
        self.stopped.set()


def imagestream(value):
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"namespace": "team", "name": "app"},
        "spec": {"tags": [{"name": "v1", "annotations": {"segmented.registry/environments": value}}]},
        "status": {"tags": [{"tag": "v1", "items": [{"image": "sha256:" + "1" * 64}]}]},
    }


def test_the_watchers_run_on_the_real_cluster_gateway_list_watch_bookmark_and_gone():
    """watchers() over cluster.Cluster and the in-memory API server of its tests: the kind looked
    up, the list, a watch event, a bookmark, then 410 Gone and a new list that emits the change."""
    cluster = fake_cluster([imagestream("test")])
    server = cluster.dynamic
    [watcher] = event_source.watchers(cluster, ["team"], "segmented.registry/environments", ["test", "uat", "prod"], timeout_seconds=5)
    events = watcher.events(threading.Event())
    assert next(events) == {"type": "initial", "namespace": "team"}
    server.put(imagestream("test,uat"), event="MODIFIED")
    changed = next(events)
    assert (changed["type"], changed["environments_before"], changed["environments_after"]) == ("changed", ["test"], ["test", "uat"])
    server.oldest = server.version + 10  # compacted: the next watch is answered 410
    server.put(imagestream("prod"), event="MODIFIED")
    changed = next(events)
    assert (changed["type"], changed["environments_before"], changed["environments_after"]) == ("changed", ["test", "uat"], ["prod"])
    lists = [params for method, path, _body, params in server.requests if path.endswith("/namespaces/team/imagestreams") and not params.get("watch")]
    watches = [params for method, path, _body, params in server.requests if params.get("watch")]
    assert len(lists) == 2 and watches[0]["allow_watch_bookmarks"] and watches[0]["timeout_seconds"] == 5


async def collect(queue, count):
    return [await queue.get() for _index in range(count)]


def test_every_watchers_events_reach_the_queue_from_threads_of_their_own_and_cancel_stops_them():
    first = Source("a", [{"type": "initial", "namespace": "a"}, {"type": "changed", "namespace": "a", "tag": "v1"}])
    second = Source("b", [{"type": "initial", "namespace": "b"}])

    async def scenario():
        queue = asyncio.Queue(maxsize=1)  # the threads wait for the queue: nothing is lost
        task = asyncio.ensure_future(event_source.run(queue, [first, second]))
        events = await asyncio.wait_for(collect(queue, 3), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return events

    events = asyncio.run(scenario())
    assert sorted((e["namespace"], e["type"]) for e in events) == [("a", "changed"), ("a", "initial"), ("b", "initial")]
    assert [e["type"] for e in events if e["namespace"] == "a"] == ["initial", "changed"]  # in order per watcher
    assert first.stopped.wait(5) and second.stopped.wait(5)
    assert first.threads == {"approvals a"} and second.threads == {"approvals b"}


def test_a_watcher_that_breaks_ends_the_source_with_its_error():
    broken = Source("a", [{"type": "initial", "namespace": "a"}], error=KeyError("a bug"))
    healthy = Source("b", [])

    async def scenario():
        queue = asyncio.Queue()
        with pytest.raises(KeyError):
            await asyncio.wait_for(event_source.run(queue, [broken, healthy]), 5)
        return queue.qsize()

    assert asyncio.run(scenario()) == 1
    assert healthy.stopped.wait(5)


def test_serve_waits_for_an_api_server_that_does_not_answer_yet(monkeypatch):
    """The watchers' set-up (the ImageStream kind's discovery) failing without an answer, then
    working: the source waits (back-off) and then runs; the auth options build a cluster without
    any request."""
    source = Source("team", [{"type": "initial", "namespace": "team"}])
    answers = [ClusterError("cannot reach the API server"), ClusterError("503", status=503), [source]]
    calls = []

    def watchers(cluster, namespaces, annotation_key, known, timeout_seconds, backoff_cap, backoff_base):
        calls.append((cluster.where, namespaces, annotation_key, known, timeout_seconds, backoff_cap, backoff_base))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(event_source, "watchers", watchers)

    async def scenario():
        queue = asyncio.Queue()
        auth = {"host": "https://127.0.0.1:1", "api_key": "not-a-token"}
        task = asyncio.ensure_future(event_source.serve(queue, auth, ["team"], "k/e", ["test"], 60, 2.0, backoff_base=0.01))
        event = await asyncio.wait_for(queue.get(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return event

    assert asyncio.run(scenario()) == {"type": "initial", "namespace": "team"}
    assert calls == [("the registry cluster", ["team"], "k/e", ["test"], 60, 2.0, 0.01)] * 3


@pytest.mark.parametrize("status", [401, 403, 404])
def test_serve_ends_at_once_when_the_api_server_refuses(monkeypatch, status):
    def watchers(*_args):
        raise ClusterError(f"refused ({status})", status=status)

    monkeypatch.setattr(event_source, "watchers", watchers)
    with pytest.raises(ClusterError, match=str(status)):
        auth = {"host": "https://127.0.0.1:1", "api_key": "not-a-token"}
        asyncio.run(asyncio.wait_for(event_source.serve(asyncio.Queue(), auth, [], "k/e", backoff_base=0.01), 5))


@pytest.fixture(scope="module")
def approvals():
    return runpy.run_path(APPROVALS)


def test_the_arguments_split_into_auth_and_the_sources_own_with_defaults(approvals):
    checked = approvals["options"]({"host": "https://api.example.com:6443", "verify_ssl": True, "namespaces": ["team-a"], "environments": ["uat", "test"]})
    assert checked == {
        "auth": {"host": "https://api.example.com:6443", "verify_ssl": True},
        "namespaces": ["team-a"],
        "annotation_key": "segmented.registry/environments",
        "environments": ["test", "uat"],
        "watch_timeout": 300,
        "backoff_cap": 30.0,
    }


@pytest.mark.parametrize(
    "args, names",
    [
        ({"namespace": ["a"]}, ["namespace", "namespaces"]),
        ({"namespaces": "team-a"}, ["namespaces", "[myproject]"]),
        ({"namespaces": ["Team_A"]}, ["namespaces", "Team_A", "DNS-1123"]),
        ({"annotation_key": "bad key"}, ["annotation_key", "bad key"]),
        ({"environments": ["test", "U A T"]}, ["environments", "U A T"]),
        ({"watch_timeout": 0}, ["watch_timeout", "positive"]),
        ({"backoff_cap": "soon"}, ["backoff_cap", "soon"]),
    ],
)
def test_a_bad_argument_is_an_error_naming_it_and_the_fix(approvals, args, names):
    with pytest.raises(SegmentedRegistryError) as error:
        approvals["options"](args)
    for name in names:
        assert name in str(error.value)
