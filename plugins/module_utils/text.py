# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""How a bad (never secret) value is shown in an error message: JSON, cut to a readable length."""

from __future__ import annotations

import json


def show(value: object, limit: int = 120) -> str:
    """A short, readable rendering of ``value``, like ``"prod,nonexistent"`` or ``{"a": 1}``."""
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):  # circular structures
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
