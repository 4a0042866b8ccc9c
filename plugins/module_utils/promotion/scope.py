# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What one promotion run may look at and change (pure).

A repository of an environment registry is ``<namespace>/<stream>``, the image stream it comes
from; repositories of any other shape (one path segment, three) are never in scope.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.errors import PromotionError
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import artifact_subject


class ScopeError(PromotionError, ValueError):
    """A scope that cannot be run (``namespace``, ``stream``, ``tag``, ``environment``); the message
    names the option and what it needs."""


class Scope:
    """Namespaces (None: all), one stream, one tag, and the environments (None: all of the
    inventory's)."""

    def __init__(
        self, namespaces: Iterable[str] | None = None, stream: str | None = None, tag: str | None = None, environments: Iterable[str] | None = None
    ) -> None:
        if tag is not None and stream is None:
            raise ScopeError("tag needs stream (and namespace): a tag is <namespace>/<stream>:<tag>")
        if stream is not None and not namespaces:
            raise ScopeError("stream needs namespace")
        self.namespaces = sorted(set(namespaces)) if namespaces else None
        self.stream = stream
        self.tag = tag
        self.environments = sorted(set(environments)) if environments else None

    def repository_in_scope(self, repository: str) -> bool:
        parts = repository.split("/")
        if len(parts) != 2:
            return False  # not <namespace>/<stream>: not an image stream, never touched
        namespace, stream = parts
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return self.stream is None or stream == self.stream

    def tag_in_scope(self, tag: str) -> bool:
        if self.tag is None:
            return True
        return tag == self.tag or artifact_subject(tag) is not None

    def entry_in_scope(self, entry: Mapping[str, Any]) -> bool:
        repository = f"{entry['namespace']}/{entry['stream']}"
        return self.repository_in_scope(repository) and (self.tag is None or entry["tag"] == self.tag)

    def environments_of(self, order: Iterable[str]) -> list[str]:
        """The environments of ``order`` (names) that this run covers, in that order."""
        return [name for name in order if self.environments is None or name in self.environments]

    def to_dict(self) -> dict[str, Any]:
        return {"namespaces": self.namespaces, "stream": self.stream, "tag": self.tag, "environments": self.environments}
