# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""One edit of one tag's approval list, as the ``tag_environments`` and ``promote`` modules make it:
the request checked before any call to the cluster, the conditional write, and the result fields."""

from __future__ import annotations

from typing import Any

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import (
    EnvironmentsError,
    apply_change,
    check_annotation_key,
    check_known,
    effective,
    format_value,
)
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import ImageStreamError, check_namespace, resolve_tag_reference
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import ImageStreamAPI, edit_tag_environments


def tag_argument_spec() -> dict[str, Any]:
    """The options that name one tag: ``namespace`` + ``name`` (``<stream>:<tag>``) or ``stream``
    and ``tag``."""
    return {
        "namespace": {"type": "str", "required": True},
        "name": {"type": "str"},
        "stream": {"type": "str"},
        "tag": {"type": "str"},
    }


def edit_argument_spec() -> dict[str, Any]:
    """The option that bounds a module's write of the tag's approval list: ``max_attempts``."""
    return {"max_attempts": {"type": "int", "default": 10}}


#: Their constraints, as ``AnsibleModule`` keyword arguments.
TAG_MUTUALLY_EXCLUSIVE = [("name", "stream"), ("name", "tag")]
TAG_REQUIRED_TOGETHER = [("stream", "tag")]


class TagEdit:
    """Add, remove or set (``exact``, the module option ``approved``) environments on ``namespace``/``stream:tag``.

    Every check runs in the constructor, before any call to the cluster: a bad or unknown name
    never reaches it (names to remove count as stored here: removing a retired environment that
    the tag still carries is allowed, and only the ImageStream tells). ``known``: the environments
    images can be promoted to; ``absent``: the inventory's environments with ``state: absent``,
    which cannot be added or set (an error that says so). Raises
    ``EnvironmentsError`` or ``ImageStreamError``."""

    def __init__(
        self,
        namespace: str,
        name: str | None = None,
        stream: str | None = None,
        tag: str | None = None,
        add: list[str] | None = None,
        remove: list[str] | None = None,
        exact: list[str] | None = None,
        known: list[str] | None = None,
        annotation_key: str | None = None,
        max_attempts: int = 10,
        absent: list[str] | None = None,
    ) -> None:
        self.namespace = check_namespace(namespace)
        self.stream, self.tag = resolve_tag_reference(name, stream, tag)
        self.annotation_key = check_annotation_key(annotation_key)
        self.known = check_known(known)
        self.absent = check_known(absent, "absent_environments")
        if max_attempts < 1:
            raise ImageStreamError(f"max_attempts must be at least 1, not {max_attempts}")
        if add is None and remove is None and exact is None:
            raise EnvironmentsError("nothing to do: give add (promote), remove (demote) or approved (the exact list)")
        self.add, self.remove, self.exact = add, remove, exact
        self.max_attempts = max_attempts
        self.change(remove or [])

    def change(self, current: list[str]) -> list[str]:
        return apply_change(current, self.add, self.remove, self.exact, self.known, self.absent)

    def apply(self, api: ImageStreamAPI) -> dict[str, Any]:
        """Write the edit (a server-side dry run in check mode); returns the outcome of
        ``imagestreams.edit_tag_environments``."""
        return edit_tag_environments(
            api,
            self.namespace,
            self.stream,
            self.tag,
            self.change,
            self.annotation_key,
            max_attempts=self.max_attempts,
            replace_unreadable=self.exact is not None,
        )

    def result(self, outcome: dict[str, Any], diff: bool = False) -> dict[str, Any]:
        """The module result fields of an applied edit (and ``warnings`` to show)."""
        before = None if outcome["before"] is None else effective(outcome["before"])
        after = effective(outcome["after"])
        result = {
            "changed": outcome["changed"],
            "namespace": self.namespace,
            "stream": self.stream,
            "tag": self.tag,
            "annotation_key": self.annotation_key,
            "annotation_value": format_value(outcome["after"]),
            "environments_before": before,
            "environments_after": after,
            "digest": outcome["digest"],
            "attempts": outcome["attempts"],
        }
        if diff:
            header = f"{self.namespace}/{self.stream}:{self.tag} {self.annotation_key}"
            result["diff"] = {"before": {"environments": before}, "after": {"environments": after}, "before_header": header, "after_header": header}
        return result

    def warnings(self, outcome: dict[str, Any]) -> list[str]:
        if outcome["unreadable"]:
            return [f"replaced an unreadable value ({outcome['unreadable']})"]
        return []
