# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Reading environment registries (I/O): what each one holds, and the source's cosign artifacts.

One tag listing per repository and one manifest HEAD per tag, in parallel; what cannot be read is
reported per repository (never taken as empty).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from typing import TYPE_CHECKING, Any, Collection, Iterable, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.oci.auth import REQUESTS_PER_TOKEN, SCOPES_PER_TOKEN
from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError
from ansible_collections.segmented.registry.plugins.module_utils.oci.pipeline import PIPELINE_DEPTH
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import artifact_subject
from ansible_collections.segmented.registry.plugins.module_utils.oci.tokens import token_groups
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope

if TYPE_CHECKING:  # only for annotations: the client module is not imported here at run time
    from ansible_collections.segmented.registry.plugins.module_utils.oci.client import RegistryClient


def read_state(
    client: RegistryClient, repositories: Iterable[str], scope: Scope | None = None, use_catalog: bool = False, workers: int = 8
) -> tuple[dict[str, dict[str, str]], dict[str | None, str]]:
    """What one registry holds: ``({repository: {tag: digest}}, {repository or None: error})``.

    ``repositories``: the ones to read; with ``use_catalog`` the registry's catalog adds every
    repository in scope (so tags of streams that no longer exist are seen). Tags outside the
    scope are left out. One tag listing per repository, one manifest HEAD per tag, in parallel
    batches that each connection sends back to back (``oci.pipeline.head_manifests``), under
    tokens of a few repositories each (``oci.tokens.token_groups``).
    """
    scope = scope or Scope()
    errors: dict[str | None, str] = {}
    repos = set(repositories)
    if use_catalog:
        try:
            repos.update(repo for repo in client.catalog() if scope.repository_in_scope(repo))
        except RegistryError as exc:
            errors[None] = f"cannot list the registry's repositories (catalog), so tags of deleted image streams are not seen: {exc}"
    if repos:
        client.prefetch_tokens(repos, "pull")
    state: dict[str, dict[str, str]] = {}

    def listing(repo: str) -> tuple[str, list[str], str | None]:
        try:
            return repo, [t for t in client.list_tags(repo) if scope.tag_in_scope(t)], None
        except RegistryError as exc:
            return repo, [], str(exc)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        listed = list(pool.map(listing, sorted(repos)))
        tags_of = {}
        for repo, tags, error in listed:
            if error:
                errors[repo] = error
            else:
                state[repo] = {}
                tags_of[repo] = tags
        # the HEADs' tokens cover a few repositories each (oci.tokens.token_groups); the batches
        # (the HEADs one connection sends back to back, oci.pipeline.head_manifests) take turns
        # between the groups, so that the first ones fetch the groups' tokens side by side
        groups = token_groups({repo: len(tags) for repo, tags in tags_of.items()}, REQUESTS_PER_TOKEN, SCOPES_PER_TOKEN)
        group_of = {repo: group for group in groups for repo in group}
        per_group = [
            [(repo, tags_of[repo][start : start + PIPELINE_DEPTH]) for repo in group for start in range(0, len(tags_of[repo]), PIPELINE_DEPTH)]
            for group in groups
        ]
        batches = [batch for turn in zip_longest(*per_group) for batch in turn if batch]

        def heads(batch: tuple[str, list[str]]) -> tuple[str, list[Any], str | None]:
            repo, tags = batch
            try:
                client.narrow_token(group_of[repo], "pull")
                return repo, client.head_manifests(repo, tags), None
            except RegistryError as exc:
                return repo, [], str(exc)

        for repo, found, error in pool.map(heads, batches):
            if error:
                errors[repo] = error
            for tag, head in found:
                if head:
                    state[repo][tag] = head["digest"]
    for repo in list(state):
        if repo in errors:
            del state[repo]
    return state, errors


def read_artifacts(client: RegistryClient, wanted: Mapping[str, Collection[str]], workers: int = 8) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Cosign artifact tags in the source: ``({repository: {tag: digest}}, warnings)`` for
    ``wanted`` = ``{repository: set(digests)}``. One tag listing per repository, one HEAD per
    artifact found."""
    found: dict[str, dict[str, str]] = {}
    warnings: list[str] = []
    if not wanted:
        return found, warnings
    client.prefetch_tokens(wanted, "pull")

    def one(repo: str) -> tuple[str, dict[str, str], str | None]:
        try:
            tags = client.list_tags(repo)
        except RegistryError as exc:
            return repo, {}, f"cosign artifacts of {repo} not looked for: {exc}"
        result = {}
        for tag in tags:
            subject = artifact_subject(tag)
            if subject and subject in wanted[repo]:
                try:
                    head = client.head_manifest(repo, tag)
                except RegistryError as exc:
                    return repo, {}, f"cosign artifact {repo}:{tag} not read: {exc}"
                if head:
                    result[tag] = head["digest"]
        return repo, result, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for repo, result, warning in pool.map(one, sorted(wanted)):
            if result:
                found[repo] = result
            if warning:
                warnings.append(warning)
    return found, warnings
