"""A real 410 Gone on the lab: the event source's watcher resumes from a resourceVersion that etcd
has compacted away (the registry cluster's API server reads ImageStream watches from etcd, see
lab/README.md), lists again, and emits exactly the change it had not seen: nothing lost, nothing
repeated. Then etcd compacted at exactly the revision of the next change: kube-apiserver ends every
watch resumed just before it with "etcd event received with PrevKv=nil" (a 500, not a 410), and
the watcher lists again rather than resuming for ever. The watcher is the one the event source
segmented.registry.approvals runs, driven here step by step so that each change lands while no
watch is open, as after a dropped connection."""
import concurrent.futures
import logging
import threading

import pytest
from kubernetes import client as kclient
from kubernetes.dynamic import DynamicClient

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import DEFAULT_ANNOTATION_KEY
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import tag_patch
from ansible_collections.segmented.registry.plugins.module_utils.approval.watcher import INITIAL, Watcher
from ansible_collections.segmented.registry.plugins.module_utils.cluster import Cluster
from ansible_collections.segmented.registry.plugins.module_utils.kinds import IMAGE_STREAM_API_VERSION, IMAGE_STREAM_KIND

SMALL = 64 * 1024


@pytest.fixture
def namespace(lab, unique):
    """A namespace of its own on the registry cluster, deleted at the end."""
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
    name = "gone-" + unique
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def approve(lab, namespace, stream, tag, value):
    """Set the tag's approval list; the resourceVersion (etcd's revision) of the write."""
    streams = DynamicClient(lab.api_client(lab.layout.registry_cluster)).resources.get(api_version=IMAGE_STREAM_API_VERSION, kind=IMAGE_STREAM_KIND)
    current = streams.get(name=stream, namespace=namespace).to_dict()
    return int(streams.patch(body=tag_patch(current, tag, DEFAULT_ANNOTATION_KEY, value), name=stream, namespace=namespace,
                             content_type="application/json-patch+json").metadata.resourceVersion)


def test_a_watch_resumed_after_compaction_lists_again_and_emits_only_what_it_missed(lab, namespace, caplog):
    lab.push(namespace, "app", "v1", 1, SMALL)
    lab.push(namespace, "app", "v2", 1, SMALL)
    cluster = Cluster.of_auth({"kubeconfig": lab.kubeconfig, "context": lab.layout.registry_cluster}, "the registry cluster")
    watcher = Watcher(cluster, cluster.kind(IMAGE_STREAM_API_VERSION, IMAGE_STREAM_KIND), namespace, DEFAULT_ANNOTATION_KEY, timeout_seconds=20)
    stop = threading.Event()
    events = watcher.events(stop)
    pool = concurrent.futures.ThreadPoolExecutor(1)

    def following(timeout=60):
        """The next event (a watch that yields nothing ends after 20 s and is resumed: bounded)."""
        return pool.submit(next, events).result(timeout=timeout)

    try:
        assert following() == {"type": INITIAL, "namespace": namespace}
        listed = watcher.resource_version

        # while no watch is open: an approval and a later write, then etcd compacted past both
        approved = approve(lab, namespace, "app", "v1", "test")
        kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespaced_config_map(
            namespace, {"metadata": {"name": "later"}})
        assert lab.compact() > approved > int(listed)

        with caplog.at_level(logging.INFO, logger="segmented.registry.approvals"):
            missed = following()
        assert "too far behind" in caplog.text, "the watch did not end with 410 Gone"
        assert (missed["type"], missed["stream"], missed["tag"]) == ("changed", "app", "v1")
        assert (missed["environments_before"], missed["environments_after"]) == (["default"], ["test"])
        assert int(watcher.resource_version) > int(listed)

        # etcd compacted at exactly the next change (while no watch is open): however the API server
        # ends the resumed watch, the change comes, and v1 is not repeated
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="segmented.registry.approvals"):
            lab.compact(approve(lab, namespace, "app", "v2", "uat"))
            after = following()
        assert (after["type"], after["tag"], after["environments_after"]) == ("changed", "v2", ["uat"])
        print("how the API server ended the resumed watch:", caplog.text)
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
