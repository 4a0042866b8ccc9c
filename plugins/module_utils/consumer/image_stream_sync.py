# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""One run of the ``image_streams`` module on one consumer cluster: list the ImageStreams of each
namespace asked for (one list call each), plan every namespace (``image_streams.plan_namespace``),
check that every namespace that gets an ImageStream exists, then write. Nothing is written when a
check fails; a write that meets a 409 makes the whole run read and plan again."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.cluster import NAMESPACE
from ansible_collections.segmented.registry.plugins.module_utils.consumer import image_streams as ist
from ansible_collections.segmented.registry.plugins.module_utils.consumer.image_config import check_scopes
from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ClusterObjects, ObjectsError
from ansible_collections.segmented.registry.plugins.module_utils.kinds import IMAGE_STREAM_API_VERSION, IMAGE_STREAM_KIND


class ImageStreamTags:
    """The ImageStream tags of one consumer cluster: ``tags`` (the approved tags of its environment,
    ``{namespace, stream, tag, digest}``), in ``namespaces``, from ``registry`` (the logical
    registry name), ``scheduled``: scheduled import on each tag."""

    def __init__(self, tags: Iterable[Mapping[str, Any]] | None, namespaces: Iterable[str], registry: str, scheduled: bool) -> None:
        self.namespaces = sorted({ist.check_name(namespace, "namespaces entry") for namespace in namespaces})
        if not registry or "/" in registry or "*" in registry:
            raise ist.ImageStreamsError(f"registry {registry!r} is not a host[:port]: give the logical registry name, like registry.apps.example.com")
        check_scopes([registry], "registry")
        self.tags = ist.check_tags(tags)
        self.registry = registry
        self.scheduled = scheduled

    def apply(self, api: ClusterObjects, present: bool = True) -> dict[str, Any]:
        return api.edit(lambda: self._attempt(api, present))

    def _attempt(self, api: ClusterObjects, present: bool) -> dict[str, Any]:
        wanted = ist.desired(self.tags if present else [], self.namespaces, self.registry, self.scheduled)
        kind = api.cluster.kind(
            IMAGE_STREAM_API_VERSION,
            IMAGE_STREAM_KIND,
            f"the cluster at {api.host} does not serve {IMAGE_STREAM_API_VERSION} {IMAGE_STREAM_KIND}: ImageStreams need OpenShift; check the auth options",
        )
        writes: list[tuple[dict[str, Any], str]] = []
        actions: list[dict[str, Any]] = []
        conflicts: list[dict[str, Any]] = []
        before: dict[str, Any] = {}
        for namespace in self.namespaces:
            streams = api.cluster.list(kind, namespace)
            plan = ist.plan_namespace(namespace, streams, wanted[namespace])
            if any(verb == "create" for _obj, verb in plan["writes"]) and api.cluster.get(NAMESPACE, namespace) is None:
                raise ObjectsError(
                    f"namespace {namespace} does not exist on the cluster at {api.host}, so its ImageStreams cannot be written; nothing was "
                    "changed. Create the namespace there, or leave it out of consumer_cluster_image_stream_namespaces"
                )
            writes += plan["writes"]
            actions += plan["actions"]
            conflicts += plan["conflicts"]
            before[namespace] = ist.summary(streams)
        for obj, verb in writes:
            api.write(obj, verb)
        return {
            "changed": bool(writes),
            "actions": actions,
            "conflicts": conflicts,
            "warnings": [conflict["message"] for conflict in conflicts],
            "namespaces": self.namespaces,
            "changed_objects": [api.describe(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")) for obj, _verb in writes],
            "diff": {"before": before, "after": ist.after_actions(before, actions)},
        }
