"""Fitting a hybrid: tune every base model, pick the default, train the pipeline, refit.

This is the one place where "tune → default model → ranker and re-rank → fit" is written;
``cinerec train`` (:mod:`cinerec.training.train`), the offline protocol
(:mod:`cinerec.training.protocol`), the ablation and the cold-start protocols all call
:func:`fit_hybrid`, so a figure in a report comes from the same steps as a shipped bundle.

The steps, each on data the test part never touches:

1. every model is tuned on the validation carve (:func:`~cinerec.training.tuning.tune`);
2. the default model is the one with the best validation metric;
3. with ``with_pipeline``, the models are refitted on the carve's training part, the
   pipeline's ranker is chosen and its re-rank policy tuned on the carve's held-out part
   (:func:`~cinerec.training.ranker.train_ranker`);
4. every model is fitted on the whole training matrix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from rich.console import Console

from cinerec.data.matrix import InteractionMatrix
from cinerec.evaluation.splits import Split
from cinerec.models.base import Model, get_model_class
from cinerec.pipeline.config import PipelineConfig, default_config
from cinerec.pipeline.offline import build_recommender
from cinerec.pipeline.rankers import Ranker
from cinerec.pipeline.recommender import Recommender
from cinerec.training.ranker import RankerChoice, train_ranker
from cinerec.training.tuning import SearchResult, tune


@dataclass
class HybridFit:
    """What :func:`fit_hybrid` produced: searches, fitted models, default, pipeline choice."""

    searches: dict[str, SearchResult]
    models: dict[str, Model]
    default_model: str
    config: PipelineConfig
    choice: RankerChoice | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: wall-clock (start, end) epochs of "tuning", "ranker" (when trained) and "fitting"
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def ranker(self) -> Ranker | None:
        """The chosen ranker (None: the default model's order, or no pipeline trained)."""
        return self.choice.chosen if self.choice is not None else None

    def recommender(self, train: InteractionMatrix) -> Recommender:
        """The whole pipeline over the fitted models, ``train``'s events as histories."""
        return build_recommender(
            self.models, train, self.config, self.ranker, default_model=self.default_model
        )

    def pipeline_info(self) -> dict[str, Any]:
        """The pipeline's config and (when trained) what the ranker search chose, JSON-ready."""
        info: dict[str, Any] = {
            "config_hash": self.config.digest(),
            "config": self.config.model_dump(mode="json"),
        }
        if self.choice is not None:
            info.update(self.choice.to_dict())
        return info


def fit_hybrid(
    validation: Split | None,
    train: InteractionMatrix,
    items: pd.DataFrame | None,
    model_names: Sequence[str],
    *,
    pipeline: PipelineConfig | None = None,
    with_pipeline: bool = True,
    metric: str = "ndcg@10",
    seed: int = 0,
    tune_models: bool = True,
    fixed_params: dict[str, dict[str, Any]] | None = None,
    tune_time_budget_s: float | None = None,
    progress: bool = False,
    console: Console | None = None,
    before_tuning: Callable[[str], None] | None = None,
) -> HybridFit:
    """Tune ``model_names`` on ``validation``, train the pipeline, fit them on ``train``.

    ``train`` is the matrix the models are finally fitted on (its item index is used for
    the validation carve too). ``pipeline`` is the starting config (default: one recall
    source per model); ``with_pipeline`` False skips the ranker and re-rank training (the
    config stays as given). ``fixed_params`` pins parameters per model (the rest is
    tuned); ``tune_models`` False fits each model with its defaults plus the pinned ones.
    ``validation`` may be None only when nothing is tuned or trained on it.
    ``before_tuning(name)`` runs before each model is tuned (``cinerec train`` waits there
    for the content model's text embeddings, encoded in the background meanwhile).
    """
    if not model_names:
        raise ValueError("fit_hybrid needs at least one model")
    if validation is None and (tune_models or with_pipeline):
        raise ValueError("tuning and pipeline training need a validation split")
    console = console or Console(stderr=True, quiet=not progress)
    fixed_params = fixed_params or {}
    timings: dict[str, float] = {}
    searches: dict[str, SearchResult] = {}
    phases: dict[str, tuple[float, float]] = {}
    tuning_started = time.time()
    for name in model_names:
        if before_tuning is not None:
            before_tuning(name)
        started = time.perf_counter()
        fixed = fixed_params.get(name, {})
        if validation is not None and tune_models:
            searches[name] = tune(
                name,
                validation,
                items=items,
                item_index=train.items,
                metric=metric,
                time_budget_s=tune_time_budget_s,
                seed=seed,
                fixed_params=fixed,
            )
        else:
            searches[name] = SearchResult(name, metric, dict(fixed), float("nan"))
        timings[f"tune.{name}"] = time.perf_counter() - started
        search = searches[name]
        console.log(
            f"{name}: {metric} {search.best_value:.4f} on validation with "
            f"{search.best_params or 'no parameters'} ({len(search.trials)} points, "
            f"{timings[f'tune.{name}']:.1f}s)"
        )
    phases["tuning"] = (tuning_started, time.time())
    default = max(searches, key=lambda n: _finite(searches[n].best_value))
    config = pipeline or default_config(list(model_names))
    choice: RankerChoice | None = None
    if validation is not None and with_pipeline:
        started = time.perf_counter()
        ranker_started = time.time()
        choice = train_ranker(
            validation,
            items,
            train.items,
            {name: searches[name].best_params for name in model_names},
            config,
            default_model=default,
            seed=seed,
            progress=progress,
        )
        timings["ranker"] = time.perf_counter() - started
        phases["ranker"] = (ranker_started, time.time())
        config = choice.config or config
        console.log(
            f"pipeline ranker: {choice.chosen_kind} ({choice.validation}); "
            f"re-rank: {choice.rerank.get('chosen')}"
        )
    models: dict[str, Model] = {}
    fitting_started = time.time()
    for name in model_names:
        started = time.perf_counter()
        models[name] = get_model_class(name)(**searches[name].best_params).fit(train)
        timings[f"fit.{name}"] = time.perf_counter() - started
    phases["fitting"] = (fitting_started, time.time())
    return HybridFit(searches, models, default, config, choice, timings, phases)


def _finite(value: float) -> float:
    """NaN (an untuned model) sorts below every measured value."""
    return value if value == value else float("-inf")
