"""Typed entries of a model's hyperparameter search space.

A search space maps each tuned parameter to either an ordered ``list`` of values (searched
by grid or coordinate ascent, see :mod:`cinerec.training.tuning`) or a numeric range:
:class:`IntRange` / :class:`FloatRange`, optionally on a log scale. Ranges suit parameters
whose good values span orders of magnitude (latent factors, regularisation, confidence
scaling) and that a handful of hand-picked grid points would cover badly; a space holding
any range is searched with optuna's TPE sampler instead of a grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True)
class IntRange:
    """Integers ``low..high`` (both included), sampled uniformly or log-uniformly.

    ``log=True`` spreads the trials evenly over orders of magnitude (16, 32, 64 … are as
    likely as 128, 256), which suits sizes such as latent factors; it needs ``low >= 1``.
    """

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        for bound in (self.low, self.high):
            if not isinstance(bound, int) or isinstance(bound, bool):
                raise ValueError(f"IntRange bounds must be ints, got {bound!r}")
        if self.low > self.high:
            raise ValueError(f"IntRange low {self.low} > high {self.high}")
        if self.log and self.low < 1:
            raise ValueError(f"IntRange(log=True) needs low >= 1, got {self.low}")

    def __contains__(self, value: object) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )

    def clip(self, value: float) -> int:
        """The integer of the range nearest to ``value``."""
        return int(min(max(round(value), self.low), self.high))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class FloatRange:
    """Reals in ``[low, high]``, sampled uniformly or log-uniformly.

    ``log=True`` spreads the trials evenly over orders of magnitude — the usual choice for
    regularisation strengths and learning rates; it needs ``low > 0``.
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        for bound in (self.low, self.high):
            if (
                not isinstance(bound, int | float)
                or isinstance(bound, bool)
                or not math.isfinite(bound)
            ):
                raise ValueError(f"FloatRange bounds must be finite numbers, got {bound!r}")
        if self.low > self.high:
            raise ValueError(f"FloatRange low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"FloatRange(log=True) needs low > 0, got {self.low}")

    def __contains__(self, value: object) -> bool:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )

    def clip(self, value: float) -> float:
        """The number of the range nearest to ``value``."""
        return float(min(max(value, self.low), self.high))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}


#: One parameter's entry: ordered candidate values, or a numeric range.
SpaceEntry: TypeAlias = list[Any] | IntRange | FloatRange
#: A model's search space: parameter name -> entry.
SearchSpace: TypeAlias = dict[str, SpaceEntry]


def is_range(entry: object) -> bool:
    """True for :class:`IntRange` and :class:`FloatRange` entries."""
    return isinstance(entry, IntRange | FloatRange)


def has_ranges(space: Mapping[str, SpaceEntry]) -> bool:
    """True when any entry of ``space`` is a range (the space needs a sampler, not a grid)."""
    return any(is_range(entry) for entry in space.values())


def as_grid(space: Mapping[str, SpaceEntry]) -> dict[str, list[Any]]:
    """``space`` as a list-only space (grid and coordinate ascent search these).

    Raises ``ValueError`` when an entry is a range: only a sampler can search that.
    """
    lists = {key: entry for key, entry in space.items() if isinstance(entry, list)}
    if len(lists) != len(space):
        ranged = sorted(set(space) - set(lists))
        raise ValueError(f"a space with IntRange/FloatRange entries has no grid: {ranged}")
    return lists


def describe(space: Mapping[str, SpaceEntry]) -> dict[str, Any]:
    """A JSON-serialisable description of ``space`` (lists as-is, ranges as dicts)."""
    return {
        key: entry.to_dict() if isinstance(entry, IntRange | FloatRange) else list(entry)
        for key, entry in space.items()
    }
