"""Hyperparameter search on a validation split carved from the training part.

Every model declares a small grid (``Model.search_space``); :func:`tune` fits one model per
grid point on the validation-train part and keeps the point with the best validation metric.
Nothing is ever chosen by hand per dataset: the same call runs for MovieLens, the demo data
and a user's own files. The grid is walked in a fixed order and models are deterministic, so
a search is reproducible; a time budget bounds it (points not reached are reported).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.evaluator import evaluate_model
from cinerec.evaluation.splits import Split
from cinerec.models.base import get_model_class


@dataclass
class SearchResult:
    """Outcome of one model's search: the chosen parameters and every trial's score."""

    model: str
    metric: str
    best_params: dict[str, Any]
    best_value: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    skipped: int = 0

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


def validation_matrices(
    validation: Split, items: pd.DataFrame | None, item_index: IdIndex
) -> tuple[InteractionMatrix, pd.DataFrame]:
    """The matrix to fit on and the held-out frame to score, for one validation split."""
    fit_matrix = InteractionMatrix.build(validation.train, items=items, item_index=item_index)
    return fit_matrix, validation.test


def tune(
    model_name: str,
    validation: Split,
    *,
    items: pd.DataFrame | None = None,
    item_index: IdIndex | None = None,
    metric: str = "ndcg@10",
    time_budget_s: float | None = None,
    fixed_params: dict[str, Any] | None = None,
) -> SearchResult:
    """Pick ``model_name``'s hyperparameters by ``metric`` on ``validation``."""
    cls = get_model_class(model_name)
    k = int(metric.split("@")[1])
    if item_index is None:
        source = items["item_id"] if items is not None else validation.train["item_id"]
        item_index = IdIndex.from_ids(source)
    fit_matrix, held_out = validation_matrices(validation, items, item_index)
    started = time.perf_counter()
    points = grid(cls.search_space())
    result = SearchResult(model=model_name, metric=metric, best_params={}, best_value=-1.0)
    for position, point in enumerate(points):
        elapsed = time.perf_counter() - started
        if time_budget_s is not None and position > 0 and elapsed > time_budget_s:
            result.skipped = len(points) - position
            break
        params = {**point, **(fixed_params or {})}
        model = cls(**params).fit(fit_matrix)
        evaluation = evaluate_model(model, fit_matrix, held_out, ks=(k,), progress=False)
        value = float(evaluation.metrics[metric])
        result.trials.append({"params": params, metric: value})
        if value > result.best_value:
            result.best_value, result.best_params = value, params
    result.seconds = time.perf_counter() - started
    return result
