# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""ImageStream tags on a consumer cluster for what its environment holds (pure).

Each approved tag ``<namespace>/<stream>:<tag>`` of the environment (its digest as the registry
cluster's ImageStream has it) becomes, in the same namespace of the consumer cluster, a spec tag of
the ImageStream ``<stream>``::

    - name: <tag>
      annotations: {app.kubernetes.io/managed-by: segmented.registry}
      from: {kind: DockerImage, name: <logical registry>/<namespace>/<stream>@<digest>}
      referencePolicy: {type: Local}
      importPolicy: {scheduled: <scheduled>}

The logical registry name is the one the consumer's mirror sets send to its environment's
registry, so a pod, an image-change trigger or OpenShift's image import resolve the same digest
there. Ownership follows the consumer role's convention (``owned``): an ImageStream this
collection creates carries the label ``app.kubernetes.io/managed-by=segmented.registry`` and each
tag it writes the same key as an annotation. Only those are updated or removed; an ImageStream of
the administrator's (no label) is left alone and reported, with the fix.

Comparison looks only at what this collection sets, so what the API server defaults on a spec tag
(``generation``, ``importPolicy.importMode``) never makes a second run write.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Callable, Collection, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.consumer.owned import MANAGED_BY, MANAGED_BY_LABEL, is_ours
from ansible_collections.segmented.registry.plugins.module_utils.errors import ConsumerError
from ansible_collections.segmented.registry.plugins.module_utils.kinds import IMAGE_STREAM_API_VERSION, IMAGE_STREAM_KIND
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label, is_image_stream_name, is_image_tag

_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")

ADD, UPDATE, REMOVE = "add", "update", "remove"


class ImageStreamsError(ConsumerError, ValueError):
    """An argument of the ImageStream tags is wrong; the message names the field and the fix."""


def is_our_tag(tag: Mapping[str, Any]) -> bool:
    """Whether a spec tag carries this collection's annotation (it wrote the tag)."""
    return (tag.get("annotations") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY


def check_name(value: object, field: str, valid: Callable[[object], bool] = is_dns1123_label, what: str = "a namespace name (like myproject)") -> str:
    """``value`` when ``valid``; else an error naming ``field``."""
    if not isinstance(value, str) or not valid(value):
        raise ImageStreamsError(f"{field} {value!r} is not {what}: fix it")
    return value


def check_tags(tags: Iterable[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """The approved tags ``{namespace, stream, tag, digest}`` checked; entries without a digest
    (no image yet) left out. Raises ``ImageStreamsError`` naming the entry and the field."""
    checked = []
    for index, entry in enumerate(tags or []):
        where = f"tags[{index}]"
        if not isinstance(entry, Mapping):
            raise ImageStreamsError(f"{where} must be a mapping with namespace, stream, tag and digest (an entry of tag_environments_info's tags)")
        item = {
            "namespace": check_name(entry.get("namespace"), f"{where}.namespace"),
            "stream": check_name(entry.get("stream"), f"{where}.stream", is_image_stream_name, "an image stream name (like app or my-app)"),
            "tag": check_name(entry.get("tag"), f"{where}.tag", is_image_tag, "an image tag (like v1.2.3)"),
        }
        digest = entry.get("digest")
        if not digest:
            continue
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise ImageStreamsError(f"{where}.digest {digest!r} is not an image digest: give it as algorithm:hex, like sha256:<64 hex digits>")
        item["digest"] = digest
        checked.append(item)
    return checked


def spec_tag(registry: str, item: Mapping[str, str], scheduled: bool) -> dict[str, Any]:
    """The spec tag for one approved tag: the logical registry name by digest, served by the
    consumer's integrated registry (``Local``)."""
    return {
        "name": item["tag"],
        "annotations": {MANAGED_BY_LABEL: MANAGED_BY},
        "from": {"kind": "DockerImage", "name": f"{registry}/{item['namespace']}/{item['stream']}@{item['digest']}"},
        "referencePolicy": {"type": "Local"},
        "importPolicy": {"scheduled": bool(scheduled)},
    }


def desired(tags: Iterable[Mapping[str, str]], namespaces: Collection[str], registry: str, scheduled: bool) -> dict[str, dict[str, dict[str, Any]]]:
    """``{namespace: {stream: {tag: spec tag}}}`` for every namespace of ``namespaces`` (empty
    when nothing of it is approved, so that what was written before is removed)."""
    wanted: dict[str, dict[str, dict[str, Any]]] = {namespace: {} for namespace in namespaces}
    for item in tags:
        if item["namespace"] in wanted:
            wanted[item["namespace"]].setdefault(item["stream"], {})[item["tag"]] = spec_tag(registry, item, scheduled)
    return wanted


def _same(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a spec tag already says what ``wanted`` says (the fields this collection sets)."""
    return (
        is_our_tag(current)
        and (current.get("from") or {}).get("kind") == wanted["from"]["kind"]
        and (current.get("from") or {}).get("name") == wanted["from"]["name"]
        and (current.get("referencePolicy") or {}).get("type") == wanted["referencePolicy"]["type"]
        and bool((current.get("importPolicy") or {}).get("scheduled")) == wanted["importPolicy"]["scheduled"]
    )


def _merged_tag(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> dict[str, Any]:
    """``wanted`` over the tag as stored: what the server defaulted (``importMode``) stays."""
    tag = copy.deepcopy(dict(current or {}))
    tag.update(copy.deepcopy({key: value for key, value in wanted.items() if key != "importPolicy"}))
    tag["importPolicy"] = dict(tag.get("importPolicy") or {}, **wanted["importPolicy"])
    return tag


def plan_namespace(namespace: str, streams: Iterable[dict[str, Any]], wanted: Mapping[str, Mapping[str, dict[str, Any]]]) -> dict[str, Any]:
    """What to write in one namespace: ``streams`` are its ImageStreams as listed, ``wanted``
    ``{stream: {tag: spec tag}}``. Returns ``{"writes": [(object, verb)], "actions": [...],
    "conflicts": [...]}``: verbs ``create``, ``replace`` (at the resourceVersion read) and
    ``delete`` (an ImageStream of this collection left without tags); an action is ``{namespace,
    stream, tag, action (add, update, remove), from}``; a conflict names an ImageStream of the
    administrator that a wanted tag would go into, and the fix."""
    existing: dict[str, dict[str, Any]] = {str(item["metadata"]["name"]): item for item in streams}
    writes: list[tuple[dict[str, Any], str]] = []
    actions: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []

    def act(stream: str, tag: str, kind: str, image: str | None) -> None:
        actions.append({"namespace": namespace, "stream": stream, "tag": tag, "action": kind, "from": image})

    for stream in sorted(set(existing) | set(wanted)):
        current, tags = existing.get(stream), wanted.get(stream) or {}
        if current is not None and not is_ours(current):
            if tags:
                conflicts.append(
                    {
                        "namespace": namespace,
                        "stream": stream,
                        "tags": sorted(tags),
                        "message": f"ImageStream {namespace}/{stream} exists on the consumer cluster and was not made by this collection "
                        f"(no label {MANAGED_BY_LABEL}={MANAGED_BY}), so its tags {', '.join(sorted(tags))} were not written: "
                        "rename or remove it, or leave the namespace out of consumer_cluster_image_stream_namespaces",
                    }
                )
            continue
        if current is None:
            if tags:
                obj: dict[str, Any] = {
                    "apiVersion": IMAGE_STREAM_API_VERSION,
                    "kind": IMAGE_STREAM_KIND,
                    "metadata": {"name": stream, "namespace": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
                    "spec": {"tags": [copy.deepcopy(tags[name]) for name in sorted(tags)]},
                }
                writes.append((obj, "create"))
                for name in sorted(tags):
                    act(stream, name, ADD, tags[name]["from"]["name"])
            continue
        old_tags = list((current.get("spec") or {}).get("tags") or [])
        new_tags = []
        for tag in old_tags:
            name = str(tag.get("name"))
            if name in tags:
                if _same(tag, tags[name]):
                    new_tags.append(tag)
                else:
                    new_tags.append(_merged_tag(tag, tags[name]))
                    act(stream, name, UPDATE, tags[name]["from"]["name"])
            elif is_our_tag(tag):
                act(stream, name, REMOVE, (tag.get("from") or {}).get("name"))
            else:
                new_tags.append(tag)
        present = {tag.get("name") for tag in old_tags}
        for name in sorted(set(tags) - present):
            new_tags.append(copy.deepcopy(tags[name]))
            act(stream, name, ADD, tags[name]["from"]["name"])
        if new_tags == old_tags:
            continue
        if not new_tags:
            writes.append((current, "delete"))
            continue
        obj = copy.deepcopy(current)
        obj["spec"] = dict(obj.get("spec") or {}, tags=new_tags)
        writes.append((obj, "replace"))
    return {"writes": writes, "actions": actions, "conflicts": conflicts}


def summary(streams: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{stream: {tag: from name}}`` of this collection's tags in a namespace (the diff)."""
    result: dict[str, dict[str, Any]] = {}
    for item in streams:
        if not is_ours(item):
            continue
        for tag in (item.get("spec") or {}).get("tags") or []:
            if is_our_tag(tag):
                result.setdefault(item["metadata"]["name"], {})[tag.get("name")] = (tag.get("from") or {}).get("name")
    return result


def after_actions(before: Mapping[str, Mapping[str, Mapping[str, str]]], actions: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, str]]]:
    """``{namespace: {stream: {tag: from}}}`` of this collection's tags once ``actions`` are done."""
    after = {namespace: {stream: dict(tags) for stream, tags in streams.items()} for namespace, streams in before.items()}
    for item in actions:
        tags = after.setdefault(item["namespace"], {}).setdefault(item["stream"], {})
        if item["action"] == REMOVE:
            tags.pop(item["tag"], None)
        else:
            tags[item["tag"]] = item["from"]
        if not tags:
            del after[item["namespace"]][item["stream"]]
    return after
