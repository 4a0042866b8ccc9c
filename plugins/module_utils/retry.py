# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The one back-off of this collection: how long to wait before trying again."""

from __future__ import annotations

from typing import Callable


def backoff(attempt: int, base: float, cap: float, jitter: Callable[[], float] | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): ``base * 2 ** (attempt -
    1)``, capped at ``cap``. With ``jitter`` (a function returning a number in [0, 1), like
    ``random.random``) it is "equal jitter": half of it fixed, half random, so that clients that
    collided spread out and one that keeps failing waits longer each time."""
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    if jitter is None:
        return ceiling
    return ceiling / 2 + jitter() * ceiling / 2
