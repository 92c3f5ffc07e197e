"""Cold-start protocols: new items nobody has seen, and new users with a few interactions.

* **New items** — every interaction of a random 10% of the interacted items is held out.
  Each model ranks only those items (they are the candidates a "new arrivals" shelf would
  show) for the users who later engaged with them; Recall/NDCG@K say how well it puts
  each new item in front of its future audience. Collaborative models know nothing about
  the items, so popularity and random set the floor content has to beat. (Every held-out
  item has zero popularity, so ``pop`` ranks them by catalog order — on MovieLens, low ids
  are older, much-watched films, which is why it beats random without knowing anything.)
* **New users** — a random 20% of users keep only their first ``max_history`` interactions
  (by time) for training; the rest of their history is the truth. Content and popularity
  are blended per user (z-scored scores, weight ``alpha`` on content) with ``alpha`` chosen
  by the same simulation on a disjoint set of training users — never by hand.

Both run the real models through the same :func:`~cinerec.evaluation.evaluator.evaluate_rankings`
core as every other protocol.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.dataset import Dataset
from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.evaluator import EvaluationResult, evaluate_rankings
from cinerec.evaluation.splits import make_split
from cinerec.features.categorical import multi_hot
from cinerec.models.base import Model, get_model_class
from cinerec.retrieval.topk import top_k
from cinerec.training.hybrid import fit_hybrid

BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class ColdStartRun:
    """Results of one cold-start protocol, with what a report needs to describe it."""

    protocol: str
    results: list[EvaluationResult]
    context: dict[str, Any] = field(default_factory=dict)


def new_item_protocol(
    dataset: Dataset,
    model_names: tuple[str, ...] = ("random", "pop", "content"),
    *,
    fraction: float = 0.1,
    ks: tuple[int, ...] = (10, 20, 50),
    seed: int = 0,
    tune_models: bool = True,
    model_params: dict[str, dict[str, Any]] | None = None,
) -> ColdStartRun:
    """Hold out all interactions of ``fraction`` of the items; rank only those items."""
    started = time.perf_counter()
    inter = dataset.interactions
    interacted = np.sort(inter["item_id"].astype(str).unique())
    rng = np.random.default_rng(seed)
    cold_ids = rng.choice(interacted, size=max(1, round(fraction * len(interacted))), replace=False)
    is_cold = inter["item_id"].astype(str).isin(set(cold_ids))
    train_df, test_df = inter[~is_cold], inter[is_cold]
    item_index = IdIndex.from_ids(dataset.items["item_id"])
    train = InteractionMatrix.build(train_df, items=dataset.items, item_index=item_index)
    cold_idx = np.sort(item_index.lookup(cold_ids))
    truth, users, n_cold_users = _truth(train, test_df)
    score = _Scorer(dataset, item_index, train, truth, ks, n_cold_users)
    results = []
    for name in model_names:
        model = _fitted(name, dataset, train_df, train, seed, tune_models, model_params)
        t0 = time.perf_counter()
        ranked = _rank(model, users, cold_idx, max(ks))
        results.append(score(ranked, name, t0, model.params))
    context = {
        "protocol": "new-item",
        "dataset": dataset.name,
        "cold_items": len(cold_idx),
        "held_out_interactions": len(test_df),
        "users": len(users),
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return ColdStartRun("new-item", results, context)


def new_user_protocol(
    dataset: Dataset,
    *,
    max_history: int = 3,
    user_fraction: float = 0.2,
    ks: tuple[int, ...] = (10, 20),
    seed: int = 0,
    tune_models: bool = True,
    model_params: dict[str, dict[str, Any]] | None = None,
) -> ColdStartRun:
    """Users keeping only ``max_history`` interactions: pop vs content vs their blend."""
    started = time.perf_counter()
    inter = dataset.interactions
    rng = np.random.default_rng(seed)
    all_users = np.sort(inter["user_id"].astype(str).unique())
    shuffled = rng.permutation(all_users)
    n_test = max(1, round(user_fraction * len(all_users)))
    test_users, val_users = set(shuffled[:n_test]), set(shuffled[n_test : 2 * n_test])
    train_df, test_df = _truncate(inter, test_users, max_history)
    item_index = IdIndex.from_ids(dataset.items["item_id"])

    # choose the blend weight on simulated new users drawn from the training users only
    val_train, val_test = _truncate(train_df, val_users, max_history)
    val_matrix = InteractionMatrix.build(val_train, items=dataset.items, item_index=item_index)
    val_models = {
        name: _fitted(name, dataset, val_train, val_matrix, seed, tune_models, model_params)
        for name in ("pop", "content")
    }
    val_truth, val_user_idx, _ = _truth(val_matrix, val_test)
    alpha = max(
        BLEND_WEIGHTS,
        key=lambda a: _blend_ndcg(val_models, val_user_idx, val_truth, a, max(ks)),
    )

    train = InteractionMatrix.build(train_df, items=dataset.items, item_index=item_index)
    models = {
        name: _fitted(name, dataset, train_df, train, seed, tune_models, model_params)
        for name in ("pop", "content")
    }
    truth, users, n_cold_users = _truth(train, test_df)
    score = _Scorer(dataset, item_index, train, truth, ks, n_cold_users)
    results = []
    for label, weight in (("pop", 0.0), ("content", 1.0), ("content+pop", alpha)):
        t0 = time.perf_counter()
        ranked = _blend_rank(models, users, weight, max(ks))
        results.append(score(ranked, label, t0, {"alpha": weight}))
    context = {
        "protocol": "new-user",
        "dataset": dataset.name,
        "max_history": max_history,
        "test_users": len(users),
        "alpha": alpha,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return ColdStartRun("new-user", results, context)


class _Scorer:
    """Scores ranked lists of one protocol run against its truth (shared by both protocols)."""

    def __init__(
        self,
        dataset: Dataset,
        item_index: IdIndex,
        train: InteractionMatrix,
        truth: sp.csr_matrix,
        ks: tuple[int, ...],
        n_cold_users: int,
    ) -> None:
        self.genres, _ = multi_hot(dataset.items, "genres", item_index)
        self.popularity = train.item_popularity()
        self.n_users_train = train.n_users
        self.truth, self.ks, self.n_cold_users = truth, ks, n_cold_users

    def __call__(
        self, ranked: np.ndarray, name: str, started: float, params: dict[str, Any]
    ) -> EvaluationResult:
        return evaluate_rankings(
            ranked,
            self.truth,
            self.ks,
            name=name,
            popularity=self.popularity,
            n_users_train=self.n_users_train,
            n_cold_users=self.n_cold_users,
            item_features=self.genres,
            seconds=time.perf_counter() - started,
            params=params,
        )


def _truncate(inter: pd.DataFrame, users: set[str], keep: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the first ``keep`` interactions (by time) of ``users``; the rest becomes truth."""
    chosen = inter["user_id"].astype(str).isin(users)
    ordered = inter[chosen].sort_values(["user_id", "timestamp"], kind="stable")
    position = ordered.groupby("user_id", sort=False).cumcount()
    kept = ordered[position < keep]
    held = ordered[position >= keep]
    return pd.concat([inter[~chosen], kept]), held


def _truth(
    train: InteractionMatrix, test_df: pd.DataFrame
) -> tuple[sp.csr_matrix, np.ndarray, int]:
    """Truth rows (one per evaluated user), their user indices, and the skipped cold users."""
    test = train.encode_like(test_df)
    known = set(test_df["user_id"].astype(str).unique())
    has_truth = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    n_cold = len(known) - len(has_truth)
    return test.matrix[has_truth].tocsr(), has_truth, n_cold


def _fitted(
    name: str,
    dataset: Dataset,
    train_df: pd.DataFrame,
    train: InteractionMatrix,
    seed: int,
    tune_models: bool,
    model_params: dict[str, dict[str, Any]] | None,
) -> Model:
    """A fitted model: ``model_params`` fixed, the rest tuned on a leave-last:5 carve."""
    tuned = tune_models and bool(get_model_class(name).search_space())
    fit = fit_hybrid(
        make_split("leave-last:5", train_df, seed=seed) if tuned else None,
        train,
        dataset.items,
        (name,),
        with_pipeline=False,
        seed=seed,
        tune_models=tuned,
        fixed_params={name: (model_params or {}).get(name, {})},
    )
    return fit.models[name]


def _rank(model: Model, users: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    ranked, _ = model.recommend(users, k=k, exclude_seen=True, items=candidates)
    return ranked


def _zscore(scores: np.ndarray) -> np.ndarray:
    finite = np.where(np.isfinite(scores), scores, np.nan)
    mean = np.nanmean(finite, axis=1, keepdims=True)
    std = np.nanstd(finite, axis=1, keepdims=True)
    return np.nan_to_num((finite - mean) / np.where(std > 0, std, 1.0), nan=-np.inf)


def _blend_rank(models: dict[str, Model], users: np.ndarray, alpha: float, k: int) -> np.ndarray:
    content = models["content"].score(users)
    pop = models["pop"].score(users)
    blended = alpha * _zscore(content) + (1.0 - alpha) * _zscore(pop)
    seen = models["pop"].history(users, None)
    rows, cols = seen.nonzero()
    blended[rows, cols] = -np.inf
    ranked, _ = top_k(blended.astype(np.float32), k)
    return ranked


def _blend_ndcg(
    models: dict[str, Model], users: np.ndarray, truth: sp.csr_matrix, alpha: float, k: int
) -> float:
    ranked = _blend_rank(models, users, alpha, k)
    result = evaluate_rankings(ranked, truth, (k,), name="validation", n_boot=0)
    return float(result.metrics[f"ndcg@{k}"])
