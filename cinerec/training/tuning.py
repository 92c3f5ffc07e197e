"""Hyperparameter search on a validation split carved from the training part.

Every model declares a small grid of ordered values (``Model.search_space``). :func:`tune`
fits one model per visited point on the validation-train part and keeps the point with the
best validation metric. Small grids are searched exhaustively; larger ones by greedy
coordinate ascent over the ordered values, starting from the model's defaults — it moves to
the best neighbouring point until no neighbour improves, which visits a fraction of the grid
on the unimodal curves these hyperparameters give (EASE's λ, kNN's neighbours).

Nothing is ever chosen by hand per dataset: the same call runs for MovieLens, the demo data
and a user's own files. Models are deterministic and points are visited in a fixed order,
so a search is reproducible; an optional time budget bounds it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.evaluator import evaluate_model
from cinerec.evaluation.splits import Split
from cinerec.models.base import get_model_class

#: Grids with at most this many points are searched exhaustively.
EXHAUSTIVE_LIMIT = 6


@dataclass
class SearchResult:
    """Outcome of one model's search: the chosen parameters and every trial's score."""

    model: str
    metric: str
    best_params: dict[str, Any]
    best_value: float
    strategy: str = "grid"
    grid_size: int = 1
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by_budget: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grid(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """All combinations of a search space, in a fixed order."""
    if not space:
        return [{}]
    keys = sorted(space)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(space[k] for k in keys))
    ]


def coordinate_ascent(
    space: dict[str, list[Any]],
    start: dict[str, Any],
    objective: Callable[[dict[str, Any]], float],
) -> None:
    """Greedy ascent over ordered grid values: move to the best improving neighbour.

    A neighbour differs from the current point by one step in one parameter's value list.
    ``objective`` is called at most once per point (the caller records the trials).
    """
    keys = sorted(space)
    position = {k: _nearest(space[k], start.get(k)) for k in keys}
    cache: dict[tuple[int, ...], float] = {}

    def value_at(pos: dict[str, int]) -> float:
        key = tuple(pos[k] for k in keys)
        if key not in cache:
            cache[key] = objective({k: space[k][pos[k]] for k in keys})
        return cache[key]

    current = value_at(position)
    while True:
        best_move, best_value = None, current
        for k in keys:
            for step in (-1, 1):
                index = position[k] + step
                if 0 <= index < len(space[k]):
                    moved = {**position, k: index}
                    value = value_at(moved)
                    if value > best_value:
                        best_move, best_value = moved, value
        if best_move is None:
            return
        position, current = best_move, best_value


def _nearest(values: list[Any], wanted: Any) -> int:
    """Index of ``wanted`` in ``values``, or of the closest number, or the middle."""
    if wanted in values:
        return values.index(wanted)
    numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if isinstance(wanted, int | float) and len(numeric) == len(values):
        return min(range(len(values)), key=lambda i: abs(values[i] - wanted))
    return len(values) // 2


class _BudgetExceededError(Exception):
    """The search's time budget ran out (internal control flow)."""


def tune(
    model_name: str,
    validation: Split,
    *,
    items: pd.DataFrame | None = None,
    item_index: IdIndex | None = None,
    metric: str = "ndcg@10",
    time_budget_s: float | None = None,
    fixed_params: dict[str, Any] | None = None,
    strategy: str | None = None,
) -> SearchResult:
    """Pick ``model_name``'s hyperparameters by ``metric`` on ``validation``.

    ``strategy`` is "grid" (every point) or "ascent" (coordinate ascent); by default grids
    of up to :data:`EXHAUSTIVE_LIMIT` points are searched exhaustively.
    """
    cls = get_model_class(model_name)
    k = int(metric.split("@")[1])
    if item_index is None:
        source = items["item_id"] if items is not None else validation.train["item_id"]
        item_index = IdIndex.from_ids(source)
    fit_matrix = InteractionMatrix.build(validation.train, items=items, item_index=item_index)
    space = cls.search_space()
    points = grid(space)
    strategy = strategy or ("grid" if len(points) <= EXHAUSTIVE_LIMIT else "ascent")
    result = SearchResult(
        model=model_name,
        metric=metric,
        best_params={},
        best_value=-1.0,
        strategy=strategy,
        grid_size=len(points),
    )
    started = time.perf_counter()

    def objective(point: dict[str, Any]) -> float:
        elapsed = time.perf_counter() - started
        if time_budget_s is not None and result.trials and elapsed > time_budget_s:
            raise _BudgetExceededError
        params = {**point, **(fixed_params or {})}
        model = cls(**params).fit(fit_matrix)
        evaluation = evaluate_model(
            model, fit_matrix, validation.test, ks=(k,), progress=False, n_boot=0
        )
        value = float(evaluation.metrics[metric])
        result.trials.append({"params": params, metric: value})
        if value > result.best_value:
            result.best_value, result.best_params = value, params
        return value

    try:
        if strategy == "grid":
            for point in points:
                objective(point)
        else:
            coordinate_ascent(space, cls.default_params(), objective)
    except _BudgetExceededError:
        result.stopped_by_budget = True
    result.seconds = time.perf_counter() - started
    return result
