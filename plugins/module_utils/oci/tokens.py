# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The Bearer tokens of one registry, kept by scope: a token serves every request whose scopes it
covers (the same resources, at least those actions) until shortly before it expires, and a scope
set is fetched once however many threads ask for it. Of the tokens that cover a request, the one
with the fewest resources goes with it: each scope in a token makes every request that carries it
larger, and the router and the registry read it on every request (``token_groups``)."""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable, Sequence

from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import access


class TokenCache:
    """The tokens of one registry by scope, shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: list[tuple[dict[str, set[str]], str, float]] = []  # [(resource -> actions, token, expires (monotonic))]
        self._fetching: dict[frozenset[str], threading.Lock] = {}  # scopes -> lock: one fetch per scope set at a time

    def cached(self, scopes: Iterable[str], most: int | None = None) -> str | None:
        """The live token with the fewest resources whose scopes cover ``scopes`` (and, with
        ``most``, that has at most that many resources), or None."""
        wanted = access(scopes)
        now = time.monotonic()
        with self._lock:
            self._tokens = [item for item in self._tokens if item[2] > now]
            covering = [
                (len(granted), token)
                for granted, token, _expires in self._tokens
                if (most is None or len(granted) <= most) and all(resource in granted and actions <= granted[resource] for resource, actions in wanted.items())
            ]
        return min(covering, key=lambda item: item[0])[1] if covering else None

    def get(self, scopes: Sequence[str], fetch: Callable[[], str], most: int | None = None) -> str:
        """A token for ``scopes`` (with at most ``most`` resources): from the cache, else
        ``fetch()`` (which ``add``s it), once."""
        token = self.cached(scopes, most)
        if token is not None:
            return token
        with self._lock:
            lock = self._fetching.setdefault(frozenset(scopes), threading.Lock())
        with lock:
            return self.cached(scopes, most) or fetch()

    def add(self, scopes: Iterable[str], token: str, expires: float) -> None:
        """Keep ``token`` for ``scopes`` until ``expires`` (``time.monotonic``)."""
        with self._lock:
            self._tokens.append((access(scopes), token, expires))


def token_groups(requests: dict[str, int], per_token: int, most: int) -> list[list[str]]:
    """``requests`` = ``{repository: how many requests it will send}``: the repositories in groups
    (sorted), one token each, so that each group's tokens go with at most ``per_token`` requests
    and hold at most ``most`` scopes (a repository with more requests than that has a token of its
    own). Few scopes where many requests carry them, many where few do: the bytes every request
    carries against one more token request."""
    groups: list[list[str]] = []
    group: list[str] = []
    load = 0
    for repository in sorted(requests):
        count = requests[repository]
        if group and (load + count > per_token or len(group) >= most):
            groups.append(group)
            group, load = [], 0
        group.append(repository)
        load += count
    if group:
        groups.append(group)
    return groups
