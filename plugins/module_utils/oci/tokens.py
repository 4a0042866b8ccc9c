# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The Bearer tokens of one registry, kept by scope: a token serves every request whose scopes it
covers (the same resources, at least those actions) until shortly before it expires, and a scope
set is fetched once however many threads ask for it."""

import threading
import time

from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import access


class TokenCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._tokens = []  # [(resource -> set of actions, token, expires (monotonic))]
        self._fetching = {}  # frozenset(scopes) -> lock: one fetch per scope set at a time

    def cached(self, scopes):
        """A live token whose scopes cover ``scopes``, or None."""
        wanted = access(scopes)
        now = time.monotonic()
        with self._lock:
            self._tokens = [item for item in self._tokens if item[2] > now]
            for granted, token, _expires in self._tokens:
                if all(resource in granted and actions <= granted[resource] for resource, actions in wanted.items()):
                    return token
        return None

    def get(self, scopes, fetch):
        """A token for ``scopes``: from the cache, else ``fetch()`` (which ``add``s it), once."""
        token = self.cached(scopes)
        if token is not None:
            return token
        with self._lock:
            lock = self._fetching.setdefault(frozenset(scopes), threading.Lock())
        with lock:
            return self.cached(scopes) or fetch()

    def add(self, scopes, token, expires):
        with self._lock:
            self._tokens.append((access(scopes), token, expires))
