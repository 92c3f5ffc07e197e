"""The result of one evaluation, and JSON helpers for it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class EvaluationResult:
    """The metrics of one model on one test set.

    Attributes:
        model: the name shown in reports.
        metrics: mean over evaluated users, keyed ``"<metric>@<k>"`` — accuracy
            (precision, recall, ndcg, mrr, map, hitrate) and beyond-accuracy (coverage,
            diversity, novelty, arp, pop_share) where their inputs were available.
        intervals: 95% percentile-bootstrap interval of each per-user metric's mean.
        n_users: users evaluated (with at least one relevant test item).
        n_cold_users: test users with relevant items that training never saw; they are not
            part of ``n_users`` in :func:`evaluate_model`.
        seconds: wall time of the evaluation (ranking included for a model).
        per_user: the per-user arrays behind ``metrics`` (same order for every key).
        params: the model's hyperparameters and evaluation settings.
    """

    model: str
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    n_users: int
    n_cold_users: int
    seconds: float
    per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ks(self) -> tuple[int, ...]:
        """The cut-offs present in ``metrics``, ascending."""
        return tuple(sorted({int(key.rsplit("@", 1)[1]) for key in self.metrics if "@" in key}))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN becomes None; per-user arrays are left out)."""
        return {
            "model": self.model,
            "metrics": {k: _json_float(v) for k, v in self.metrics.items()},
            "intervals": {
                k: [_json_float(lo), _json_float(hi)] for k, (lo, hi) in self.intervals.items()
            },
            "n_users": int(self.n_users),
            "n_cold_users": int(self.n_cold_users),
            "seconds": _json_float(self.seconds),
            "params": json_safe(self.params),
        }


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars unwrapped, NaN as None and unknown objects as str."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _json_float(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)
