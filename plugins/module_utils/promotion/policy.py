# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Promotion policies of an environment (pure): may this digest enter its registry now?

- ``after: <env>``: the digest must already be in ``<env>``'s registry under the same
  repository, or be copied there earlier in the same run (the executor runs such copies in a
  later wave and holds them back if that copy fails).
- ``scan_gate: {annotation, value}``: a scanner on the registry cluster records its verdict per
  digest on the ImageStream, in the metadata annotation ``annotation`` whose value is a JSON
  object mapping digests to results, e.g.
  ``security.example.com/scan: '{"sha256:4a5f...": "passed", "sha256:9c1e...": "failed"}'``.
  A digest enters the environment only when its result equals ``value``. The verdict is bound to
  the digest (a tag moved to another image is not covered by the old verdict), survives
  ``oc tag`` (which replaces a tag's annotations) and costs no extra API call (the ImageStream
  list already carries it).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Environment


def scan_verdict(annotations: Mapping[str, str] | None, annotation: str, digest: str) -> tuple[str | None, str | None]:
    """``(result or None, problem or None)`` of ``digest`` in the scan annotation's JSON map."""
    raw = (annotations or {}).get(annotation)
    if raw is None:
        return None, None
    try:
        verdicts = json.loads(raw)
    except ValueError:
        verdicts = None
    if not isinstance(verdicts, dict):
        return None, (f'annotation {annotation} is not a JSON object mapping digests to scan results, like {{"sha256:...": "passed"}}')
    result = verdicts.get(digest)
    return (None if result is None else str(result)), None


def hold_back(
    environment: Environment, repository: str, digest: str, state: Any, stream_annotations: Mapping[str, Mapping[str, str]]
) -> tuple[str | None, dict[str, Any] | None]:
    """Whether a policy of ``environment`` (an inventory ``Environment``) holds ``digest`` back
    from ``repository`` in its registry.

    ``state`` answers ``present(env, repo)`` ({tag: digest} read from that registry),
    ``read_error(env, repo)`` and ``planned(env, repo, digest)`` (copied, or already there, by
    this plan). Returns ``(reason, requires)``: ``reason`` is why the digest is held back (None:
    it may go); ``requires`` is the copy of this run it must wait for (``after``), or None.
    """
    requires = None
    after = environment.after
    if after:
        if digest in set(state.present(after, repository).values()):
            pass
        elif state.planned(after, repository, digest):
            requires = {"environment": after, "repository": repository, "digest": digest}
        elif state.read_error(after, repository):
            return f"policy after {after}: {after} could not be read ({state.read_error(after, repository)})", None
        else:
            return (f"policy after {after}: this digest is not in {after}'s registry ({repository}) yet; approve it for {after} first"), None
    gate = environment.scan_gate
    if gate:
        result, problem = scan_verdict(stream_annotations.get(repository), gate.annotation, digest)
        if problem:
            return f"scan gate: {problem}", None
        if result != gate.value:
            found = "has no result" if result is None else f"says {result!r}"
            return (f"scan gate: annotation {gate.annotation} of ImageStream {repository} {found} for this digest (needs {gate.value!r})"), None
    return None, requires
