# -*- coding: utf-8 -*-
"""The one back-off (plugins/module_utils/retry.py)."""

from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff


def test_exponential_and_capped():
    assert [backoff(n, 0.5, 3) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3]


def test_equal_jitter_keeps_half_fixed():
    assert backoff(3, 0.25, 8, jitter=lambda: 0.0) == 0.5
    assert backoff(3, 0.25, 8, jitter=lambda: 1.0) == 1.0
    assert backoff(20, 0.25, 8, jitter=lambda: 0.5) == 6.0
