"""Hyperparameter search on a validation split carved from the training part.

Every model declares its search space (``Model.search_space``): per parameter an ordered
list of values, or a numeric range (:mod:`cinerec.models.space`). :func:`tune` fits one
model per visited point on the validation-train part and keeps the point with the best
validation metric.

* List-only spaces: small grids are searched exhaustively; larger ones by greedy
  coordinate ascent over the ordered values, starting from the model's defaults — it moves
  to the best neighbouring point until no neighbour improves, which visits a fraction of
  the grid on the unimodal curves these hyperparameters give (EASE's λ, kNN's neighbours).
* Spaces holding a range: optuna's TPE sampler (seeded), ``n_trials`` trials, the model's
  defaults as the first one, so the search never ends worse than the defaults.

Nothing is ever chosen by hand per dataset: the same call runs for MovieLens, the demo data
and a user's own files. Models are deterministic, grid points are visited in a fixed order
and the sampler is seeded, so a search is reproducible; an optional time budget bounds it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.evaluator import evaluate_model
from cinerec.evaluation.splits import Split
from cinerec.models.base import get_model_class
from cinerec.models.space import (
    FloatRange,
    IntRange,
    SearchSpace,
    as_grid,
    describe,
    has_ranges,
)

if TYPE_CHECKING:
    import optuna

#: Grids with at most this many points are searched exhaustively.
EXHAUSTIVE_LIMIT = 6
#: Trials of an optuna search unless the caller says otherwise.
DEFAULT_N_TRIALS = 20
STRATEGIES = ("grid", "ascent", "optuna")


@dataclass
class SearchResult:
    """Outcome of one model's search: the chosen parameters and every trial's score.

    ``grid_size`` is the number of points planned: the grid's size, or ``n_trials`` for an
    optuna search. ``space`` describes what was searched (JSON-ready), ``seed`` the
    sampler's seed (optuna only).
    """

    model: str
    metric: str
    best_params: dict[str, Any]
    best_value: float
    strategy: str = "grid"
    grid_size: int = 1
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by_budget: bool = False
    space: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grid(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """All combinations of a list-only search space, in a fixed order."""
    if has_ranges(space):
        raise ValueError("a space with IntRange/FloatRange entries has no grid")
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
    n_trials: int = DEFAULT_N_TRIALS,
    seed: int = 0,
) -> SearchResult:
    """Pick ``model_name``'s hyperparameters by ``metric`` on ``validation``.

    ``strategy`` is "grid" (every point), "ascent" (coordinate ascent) or "optuna" (TPE,
    seeded by ``seed``, ``n_trials`` trials). By default a space holding an
    :class:`~cinerec.models.space.IntRange` or :class:`~cinerec.models.space.FloatRange`
    uses optuna, and list-only grids of up to :data:`EXHAUSTIVE_LIMIT` points are searched
    exhaustively, larger ones by ascent. ``time_budget_s`` stops the search once spent (the
    first trial always runs); ``fixed_params`` override searched values (and are left out
    of an optuna space).
    """
    cls = get_model_class(model_name)
    k = int(metric.split("@")[1])
    if item_index is None:
        source = items["item_id"] if items is not None else validation.train["item_id"]
        item_index = IdIndex.from_ids(source)
    fit_matrix = InteractionMatrix.build(validation.train, items=items, item_index=item_index)
    space: SearchSpace = dict(cls.search_space())
    ranged = has_ranges(space)
    if strategy is None:
        strategy = "optuna" if ranged else None
    elif strategy not in STRATEGIES:
        raise ValueError(f"unknown search strategy {strategy!r} (known: {STRATEGIES})")
    elif ranged and strategy != "optuna":
        raise ValueError(f"{model_name}: a space with ranges needs strategy 'optuna'")
    if strategy == "optuna":
        if n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {n_trials}")
        points: list[dict[str, Any]] = []
        planned = n_trials
    else:
        points = grid(as_grid(space))  # no ranges: checked above
        planned = len(points)
        strategy = strategy or ("grid" if planned <= EXHAUSTIVE_LIMIT else "ascent")
    result = SearchResult(
        model=model_name,
        metric=metric,
        best_params={},
        best_value=-1.0,
        strategy=strategy,
        grid_size=planned,
        space=describe(space),
        seed=seed if strategy == "optuna" else None,
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
        if strategy == "optuna":
            searched = {key: v for key, v in space.items() if key not in (fixed_params or {})}
            _optuna_search(
                searched, cls.default_params(), objective, n_trials, seed, time_budget_s, started
            )
            result.stopped_by_budget = len(result.trials) < n_trials
        elif strategy == "grid":
            for point in points:
                objective(point)
        else:
            coordinate_ascent(as_grid(space), cls.default_params(), objective)
    except _BudgetExceededError:
        result.stopped_by_budget = True
    result.seconds = time.perf_counter() - started
    return result


def _optuna_search(
    space: SearchSpace,
    defaults: dict[str, Any],
    objective: Callable[[dict[str, Any]], float],
    n_trials: int,
    seed: int,
    time_budget_s: float | None,
    started: float,
) -> None:
    """Maximise ``objective`` over ``space`` with a seeded TPE sampler.

    The defaults (clipped into the space) are the first trial, so the result is never worse
    than them. The first trial always runs; the rest get what is left of ``time_budget_s``
    as optuna's timeout. optuna's per-trial log lines are silenced for the search.
    """
    import optuna

    def suggest(trial: optuna.Trial) -> float:
        point: dict[str, Any] = {}
        for key in sorted(space):
            entry = space[key]
            if isinstance(entry, IntRange):
                point[key] = trial.suggest_int(key, entry.low, entry.high, log=entry.log)
            elif isinstance(entry, FloatRange):
                point[key] = trial.suggest_float(key, entry.low, entry.high, log=entry.log)
            else:
                point[key] = trial.suggest_categorical(key, list(entry))
        return objective(point)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.enqueue_trial(_start_point(space, defaults))
        study.optimize(suggest, n_trials=1)
        if n_trials > 1:
            remaining = None
            if time_budget_s is not None:
                remaining = max(0.0, time_budget_s - (time.perf_counter() - started))
            study.optimize(suggest, n_trials=n_trials - 1, timeout=remaining)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _start_point(space: SearchSpace, defaults: dict[str, Any]) -> dict[str, Any]:
    """The model's defaults for the searched parameters, moved into the space."""
    point: dict[str, Any] = {}
    for key, entry in space.items():
        wanted = defaults.get(key)
        if isinstance(entry, IntRange | FloatRange):
            number = wanted if isinstance(wanted, int | float) else (entry.low + entry.high) / 2
            point[key] = entry.clip(number)
        else:
            point[key] = entry[_nearest(entry, wanted)]
    return point
