"""Ablation of the hybrid pipeline: what each stage and each recall source adds.

On one dataset and split, the base models are tuned and fitted once (as in
:func:`~cinerec.training.protocol.run_protocol`); then pipeline variants are evaluated
with the same full-ranking evaluator:

* ``recall only`` — the candidates in the best single model's order (no ranker, no
  re-ranking): what recall alone gives;
* ``+ ranker`` — the ranker chosen on validation, no re-ranking;
* ``hybrid`` — ranker + re-ranking (MMR diversity etc.): the default pipeline;
* ``− <source>`` — the default pipeline with one recall source switched off, its ranker
  retrained on the validation carve without it.

Each row also carries the candidate recall on the test part (the share of held-out items
that recall put among the candidates: the ceiling for ranking) and, for the hybrid, the
paired bootstrap interval of its NDCG@10 gain over the best single model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console

from cinerec.data.dataset import Dataset
from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.evaluator import EvaluationResult, evaluate_model, genre_features
from cinerec.evaluation.metrics import bootstrap_ci
from cinerec.evaluation.splits import make_split
from cinerec.models.base import get_model_class
from cinerec.pipeline.config import PipelineConfig, RerankConfig, default_config
from cinerec.pipeline.offline import PipelineModel, build_recommender
from cinerec.training.hybrid import fit_hybrid
from cinerec.training.protocol import default_validation
from cinerec.training.ranker import RankerChoice, choose_ranker, held_out_truth, ranking_data
from cinerec.training.rerank_tuning import tune_rerank

DEFAULT_BASE = ("pop", "trending", "itemknn", "ease", "als", "content")
#: Sources never worth removing: they add nothing offline (no editor list, no series
#: mid-way in MovieLens histories).
NOT_ABLATED = ("editor",)


@dataclass
class AblationRun:
    """Rows (single models, then pipeline variants) and what the comparison found."""

    dataset: str
    split: str
    results: list[EvaluationResult]
    candidate_recall: dict[str, float] = field(default_factory=dict)
    gain: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


def paired_gain(
    a: EvaluationResult, b: EvaluationResult, metric: str = "ndcg@10", n_boot: int = 1000
) -> dict[str, float | str]:
    """Relative gain of ``a`` over ``b`` on ``metric`` and the paired 95% interval of a − b.

    Both results must cover the same users in the same order (the evaluator ranks the
    users with held-out items in index order, so two models on one split do).
    """
    x, y = a.per_user[metric], b.per_user[metric]
    if x.shape != y.shape:
        raise ValueError("results cover different users")
    low, high = bootstrap_ci(x - y, n_boot=n_boot)
    return {
        "metric": metric,
        "a": a.model,
        "b": b.model,
        "relative_gain": float(np.nanmean(x) / np.nanmean(y) - 1) if np.nanmean(y) else 0.0,
        "difference": float(np.nanmean(x - y)),
        "difference_low": low,
        "difference_high": high,
    }


def _without(config: PipelineConfig, source: str) -> PipelineConfig:
    data = config.model_dump()
    data["recall"]["sources"] = [s for s in data["recall"]["sources"] if s["name"] != source]
    return PipelineConfig.model_validate(data)


def _plain(config: PipelineConfig) -> PipelineConfig:
    data = config.model_dump()
    data["rerank"] = RerankConfig(mmr_lambda=1.0, rank_weight=1.0).model_dump()
    return PipelineConfig.model_validate(data)


def run_ablation(
    dataset: Dataset,
    split_spec: str,
    base_models: tuple[str, ...] = DEFAULT_BASE,
    *,
    sources: bool = True,
    ks: tuple[int, ...] = (10,),
    seed: int = 0,
    tune_time_budget_s: float | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> AblationRun:
    """Single models, the pipeline's stages and (``sources``) each source removed."""
    console = console or Console(stderr=True, quiet=not progress)
    started = time.perf_counter()
    split = make_split(split_spec, dataset.interactions, seed=seed)
    validation = make_split(default_validation(split_spec), split.train, seed=seed)
    item_index = IdIndex.from_ids(dataset.items["item_id"])
    train = InteractionMatrix.build(split.train, items=dataset.items, item_index=item_index)
    carve = InteractionMatrix.build(validation.train, items=dataset.items, item_index=item_index)
    carve_truth = held_out_truth(carve, validation.test)
    test_truth = held_out_truth(train, split.test)
    genres, skipped = genre_features(dataset.items, item_index)

    def evaluate(model: Any, name: str) -> EvaluationResult:
        return evaluate_model(
            model, train, split.test, ks=ks, name=name, item_features=genres, progress=False
        )

    fit = fit_hybrid(
        validation,
        train,
        dataset.items,
        base_models,
        with_pipeline=False,
        seed=seed,
        tune_time_budget_s=tune_time_budget_s,
        progress=progress,
        console=console,
    )
    fitted, default = fit.models, fit.default_model
    stage1 = {
        name: get_model_class(name)(**fit.searches[name].best_params).fit(carve)
        for name in base_models
    }
    results: list[EvaluationResult] = []
    for name in base_models:
        results.append(evaluate(fitted[name], name))
        console.log(f"{name}: ndcg@10 {results[-1].metrics['ndcg@10']:.4f}")
    best_single = max(results, key=lambda r: r.metrics["ndcg@10"])
    full = default_config(list(base_models))
    recall: dict[str, float] = {}

    def variant(
        label: str,
        config: PipelineConfig,
        kinds: tuple[str, ...],
        plain: bool,
        reuse: RankerChoice | None = None,
    ) -> RankerChoice:
        stage1_rec = build_recommender(stage1, carve, config, default_model=default)
        choice = reuse or choose_ranker(
            stage1_rec, carve_truth, kinds=kinds, seed=seed, progress=progress
        )
        shown = _plain(config)
        if not plain:
            stage1_rec.ranker = choice.chosen
            users = choice.stats.query_users
            shown, choice.rerank = tune_rerank(stage1_rec, carve_truth, users)
        rec = build_recommender(fitted, train, shown, choice.chosen, default_model=default)
        result = evaluate(PipelineModel(rec), label)
        result.params = {"ranker": choice.chosen_kind, **choice.to_dict()}
        _, stats = ranking_data(rec, test_truth)
        recall[label] = stats.recall
        results.append(result)
        console.log(
            f"{label}: ranker {choice.chosen_kind}, ndcg@10 {result.metrics['ndcg@10']:.4f}, "
            f"candidate recall {stats.recall:.3f}"
        )
        return choice

    variant("recall only", full, (), plain=True)
    choice = variant("+ ranker", full, ("lightgbm", "neural", "fusion"), plain=True)
    kind = (choice.chosen_kind,) if choice.chosen is not None else ()
    variant("hybrid", full, kind, plain=False, reuse=choice)
    hybrid = results[-1]
    if sources:
        for source in full.recall.sources:
            if source.name not in NOT_ABLATED:
                variant(f"− {source.name}", _without(full, source.name), kind, plain=False)
    gain = paired_gain(hybrid, best_single)
    context = {
        "dataset": dataset.name,
        "split": split_spec,
        "validation": default_validation(split_spec),
        "base_models": list(base_models),
        "config_hash": full.digest(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if skipped:
        context["skipped"] = skipped
    return AblationRun(dataset.name, split_spec, results, recall, gain, context)
