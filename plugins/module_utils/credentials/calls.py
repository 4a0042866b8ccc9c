# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The writes of one credential run, on either cluster (``distribute.Credential`` and its
``consumer.ConsumerSide`` share them): recorded in the run's ``changes`` and, in check mode, only
recorded. A failed call is the ``ClusterError`` its ``Cluster`` raised (what was done, where)."""

from __future__ import annotations

from typing import Any, Callable


class Writes:
    """The writes of one run: each is recorded in ``changes`` before it is made; in check mode it
    is only recorded."""

    def __init__(self, check_mode: bool) -> None:
        self.check_mode = check_mode
        self.changes: list[str] = []

    def write(self, where: str, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)`` recorded as ``"<where>: <what>"``; its answer (None in check mode)."""
        self.changes.append(f"{where}: {what}")
        if self.check_mode:
            return None
        return call(*args, **kwargs)
