"""The offline protocol: split, tune on validation, fit, evaluate — for several models.

``cinerec evaluate`` and ``benchmarks/offline_accuracy.py`` both run this, so the figures
the README quotes come from the same code a user runs. Hyperparameters are chosen on a
validation split carved from the training part with the same kind of split as the outer
one (a temporal outer split gets a temporal carve, and so on): the test part is never seen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from rich.console import Console

from cinerec.data.dataset import Dataset
from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.errors import ModelError
from cinerec.evaluation.evaluator import EvaluationResult, evaluate_model, genre_features
from cinerec.evaluation.splits import make_split
from cinerec.features.metadata import describes_items
from cinerec.pipeline.config import PipelineConfig
from cinerec.pipeline.offline import PipelineModel
from cinerec.training.hybrid import fit_hybrid
from cinerec.training.tuning import SearchResult

DEFAULT_MODELS = ("pop", "trending", "itemknn", "ease", "als", "bpr", "content", "hybrid")
#: The whole pipeline (:mod:`cinerec.pipeline`) over the other listed models.
HYBRID = "hybrid"
#: Models that compare items by their description: nothing to learn from ids alone.
CONTENT_MODELS = ("content",)
#: Fewest held-out interactions per user in a leave-last validation carve: with one item
#: per user, 610 MovieLens users move NDCG@10 by ±13% relative, too noisy to tune on.
MIN_VALIDATION_HOLDOUT = 5


def default_validation(split_spec: str) -> str:
    """The validation carve for an outer split: same kind, never fewer than 5 items a user."""
    kind, _, value = split_spec.partition(":")
    if kind == "leave-last" and int(value or 1) < MIN_VALIDATION_HOLDOUT:
        return f"leave-last:{MIN_VALIDATION_HOLDOUT}"
    return split_spec


def default_models_for(
    items: pd.DataFrame, defaults: tuple[str, ...] | list[str]
) -> tuple[tuple[str, ...], str | None]:
    """``defaults`` less the models ``items`` cannot feed, and a line saying what was left out.

    Interactions imported without an items file give a catalog of ids: a default run
    then trains and evaluates the collaborative models rather than stopping at the
    content model, which would refuse it. Only defaults are adapted; a model the user
    names explicitly is fitted as asked and refuses with its own message.
    """
    if describes_items(items):
        return tuple(defaults), None
    left_out = [name for name in defaults if name in CONTENT_MODELS]
    if not left_out:
        return tuple(defaults), None
    kept = tuple(name for name in defaults if name not in CONTENT_MODELS)
    note = f"left out {', '.join(left_out)}: the catalog has item ids only (no titles, genres)"
    return kept, note


@dataclass
class ProtocolRun:
    """Everything one protocol run produced, ready for a report."""

    dataset: str
    split: str
    results: list[EvaluationResult]
    searches: dict[str, SearchResult]
    context: dict[str, Any] = field(default_factory=dict)


def run_protocol(
    dataset: Dataset,
    split_spec: str,
    model_names: list[str] | tuple[str, ...] = DEFAULT_MODELS,
    *,
    ks: tuple[int, ...] = (1, 5, 10, 20),
    seed: int = 0,
    validation_spec: str | None = None,
    tune_time_budget_s: float | None = None,
    progress: bool = True,
    console: Console | None = None,
    pipeline: PipelineConfig | None = None,
) -> ProtocolRun:
    """Split ``dataset`` by ``split_spec``, tune each model on a validation carve, evaluate.

    ``"hybrid"`` among the models evaluates the whole pipeline over the other listed
    models (as tuned and fitted here), its ranker trained on the validation carve.
    Metrics the data cannot support (diversity on a catalog without genres) are left
    out, and ``context["skipped"]`` says which in one line.
    """
    console = console or Console(stderr=True, quiet=not progress)
    started = time.perf_counter()
    split = make_split(split_spec, dataset.interactions, seed=seed)
    validation_spec = validation_spec or default_validation(split_spec)
    validation = make_split(validation_spec, split.train, seed=seed)
    item_index = IdIndex.from_ids(dataset.items["item_id"])
    train = InteractionMatrix.build(split.train, items=dataset.items, item_index=item_index)
    genres, skipped = genre_features(dataset.items, item_index)
    console.log(
        f"{dataset.name} · split {split_spec}: {len(split.train):,} train / "
        f"{len(split.test):,} test rows; validation {validation_spec}"
    )
    singles = [name for name in model_names if name != HYBRID]
    if not singles:
        raise ModelError(
            "the hybrid needs at least one other model to build on"
            if HYBRID in model_names
            else "no models to evaluate"
        )
    fit = fit_hybrid(
        validation,
        train,
        dataset.items,
        singles,
        pipeline=pipeline,
        with_pipeline=HYBRID in model_names,
        seed=seed,
        tune_time_budget_s=tune_time_budget_s,
        progress=progress,
        console=console,
    )
    results: list[EvaluationResult] = []
    for name in singles:
        result = evaluate_model(
            fit.models[name],
            train,
            split.test,
            ks=ks,
            name=name,
            item_features=genres,
            progress=progress,
        )
        result.params = {
            **fit.searches[name].best_params,
            "fit_seconds": round(fit.timings[f"fit.{name}"], 3),
        }
        results.append(result)
        console.log(f"{name}: ndcg@10 {result.metrics.get('ndcg@10', 0.0):.4f}")
    if HYBRID in model_names:
        result = evaluate_model(
            PipelineModel(fit.recommender(train)),
            train,
            split.test,
            ks=ks,
            name=HYBRID,
            item_features=genres,
            progress=progress,
        )
        chosen = fit.choice.to_dict() if fit.choice is not None else {}
        result.params = {"config": fit.config.digest(), **chosen}
        results.append(result)
        ranker = fit.choice.chosen_kind if fit.choice else "none"
        console.log(f"hybrid: ranker {ranker}, ndcg@10 {result.metrics.get('ndcg@10', 0.0):.4f}")
    context = {
        "dataset": dataset.name,
        "split": split_spec,
        "validation": validation_spec,
        "seed": seed,
        "train_rows": len(split.train),
        "test_rows": len(split.test),
        "n_items": len(item_index),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if skipped:
        context["skipped"] = skipped
    return ProtocolRun(dataset.name, split_spec, results, fit.searches, context)
