"""Where one request's time went: wall-clock milliseconds per pipeline stage.

Every answer carries its stage timings (``Recommendations.timings_ms``: recall, features,
rank, rerank, explain, total), so a latency regression shows up per stage in the API's
responses and in ``benchmarks/pipeline_latency.py`` instead of only in the total.
"""

from __future__ import annotations

import time


class StageClock:
    """A lap timer over one request: each :meth:`lap` charges the time since the previous
    lap (or since the clock started) to one stage, so consecutive stages leave no gaps.

    ``timings`` is the dict the laps are written into (a new one when None), so a caller
    that passes its own dict sees the stages as they finish.
    """

    __slots__ = ("_mark", "_started", "timings")

    def __init__(self, timings: dict[str, float] | None = None) -> None:
        self.timings: dict[str, float] = {} if timings is None else timings
        self._started = self._mark = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Record the milliseconds since the last lap as ``stage``'s time."""
        now = time.perf_counter()
        self.timings[stage] = (now - self._mark) * 1e3
        self._mark = now

    def total(self, stage: str = "total") -> None:
        """Record the milliseconds since the clock started as ``stage``."""
        self.timings[stage] = (time.perf_counter() - self._started) * 1e3
