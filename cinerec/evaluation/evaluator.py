"""Score a model (or anyone's recommendation lists) against held-out interactions.

Three entry points share one core, :func:`evaluate_rankings`:

* :func:`evaluate_model` ranks the whole catalog for every test user with a fitted model;
* :func:`evaluate_predictions` scores lists produced elsewhere (a CSV of user, item, score);
* :func:`evaluate_rankings` takes ranked item indices and a truth matrix directly.

Relevance: a test interaction is relevant unless it is a ``skip`` (or, when given, its
event is outside ``relevant_events`` or it is a rating below ``min_rating``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Iterable
from typing import Any, Protocol, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.errors import DataError, ModelError
from cinerec.evaluation.beyond import (
    DiversityMetric,
    average_popularity,
    catalog_coverage,
    intra_list_diversity,
    novelty,
    popular_share,
)
from cinerec.evaluation.metrics import (
    accuracy_from_hits,
    bootstrap_cis,
    canonical_truth,
    check_ks,
    hit_matrix,
)
from cinerec.evaluation.result import EvaluationResult
from cinerec.features.categorical import multi_hot

ItemFeatures: TypeAlias = np.ndarray | sp.spmatrix | sp.sparray


class Recommends(Protocol):
    """What :func:`evaluate_model` ranks with: a fitted ``Model``, or the whole
    pipeline behind the same call (``cinerec.pipeline.offline.PipelineModel``)."""

    @property
    def name(self) -> str: ...

    @property
    def n_users(self) -> int: ...

    @property
    def n_items(self) -> int: ...

    def recommend(
        self, user_idx: np.ndarray, k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (int64 indices, float32 scores) per user, padded with -1 / -inf."""
        ...

#: What a report says when the catalog has no genres to measure diversity on.
NO_GENRES = "diversity@k skipped: no item of the catalog has genres"


def genre_features(
    items: pd.DataFrame, item_index: IdIndex
) -> tuple[sp.csr_matrix | None, str | None]:
    """The item x genre matrix diversity is measured on, or ``None`` and why not.

    A catalog where no item has a genre (interactions imported without an items file)
    leaves nothing to measure: every list would score NaN. ``None`` leaves diversity@k
    out of the results instead, and the note (:data:`NO_GENRES`) is the one line a
    report and the CLI show for it.
    """
    genres, vocabulary = multi_hot(items, "genres", item_index)
    if not vocabulary:
        return None, NO_GENRES
    return genres, None


def evaluate_rankings(
    ranked: np.ndarray,
    truth: sp.spmatrix | sp.sparray,
    ks: Iterable[int],
    *,
    name: str,
    popularity: np.ndarray | None = None,
    n_users_train: int | None = None,
    item_features: ItemFeatures | None = None,
    n_cold_users: int = 0,
    seconds: float = 0.0,
    params: dict[str, Any] | None = None,
    diversity_metric: DiversityMetric = "jaccard",
    n_boot: int = 1000,
    seed: int = 0,
) -> EvaluationResult:
    """Every metric of ranked lists against a truth matrix: the core all paths use.

    ``ranked`` is int64 (n_users, K) item indices padded with -1, ``truth`` a sparse
    (n_users, n_items) matrix whose nonzeros are the relevant items; rows without any
    relevant item are dropped here. Novelty, ARP and pop_share need ``popularity`` (training
    users per item) and ``n_users_train``; diversity needs ``item_features`` (see
    :func:`~cinerec.evaluation.beyond.intra_list_diversity`). Coverage is over all
    ``n_items`` columns of ``truth``. ``seconds`` is time already spent (ranking); the
    time spent here is added to it. Intervals use ``n_boot`` resamples of the users with
    ``seed`` (0 resamples: no intervals).
    """
    started = time.perf_counter()
    ks = check_ks(ks)
    ranked = np.asarray(ranked, dtype=np.int64)
    truth = canonical_truth(truth)
    n_rel = np.diff(truth.indptr)
    keep = n_rel > 0
    if not keep.all():
        ranked, truth, n_rel = ranked[keep], truth[keep], n_rel[keep]
    n_items = truth.shape[1]
    per_user = accuracy_from_hits(hit_matrix(ranked, truth), n_rel, ks)
    extra: dict[str, float] = {}
    if popularity is not None:
        popularity = np.asarray(popularity, dtype=np.float64)
        if popularity.shape != (n_items,):
            raise ValueError(f"popularity has shape {popularity.shape}, expected ({n_items},)")
        if n_users_train is None:
            raise ValueError("novelty needs n_users_train along with popularity")
    for k in ks:
        extra[f"coverage@{k}"] = catalog_coverage(ranked, n_items, k) if len(ranked) else math.nan
        if item_features is not None and k >= 2:  # a single item has no pairs
            per_user[f"diversity@{k}"] = intra_list_diversity(
                ranked,
                item_features,
                k,
                metric=diversity_metric,
            )
        if popularity is not None:
            per_user[f"novelty@{k}"] = novelty(ranked, popularity, int(n_users_train or 0), k)
            per_user[f"arp@{k}"] = average_popularity(ranked, popularity, k)
            per_user[f"pop_share@{k}"] = popular_share(ranked, popularity, k)
    keys = list(per_user)
    metrics = {key: _nanmean(per_user[key]) for key in keys}
    metrics.update(extra)
    intervals: dict[str, tuple[float, float]] = {}
    if keys and len(ranked) and n_boot > 0:
        low, high = bootstrap_cis(np.column_stack([per_user[k] for k in keys]), n_boot, seed)
        bounds = zip(keys, low, high, strict=True)
        intervals = {key: (float(lo), float(hi)) for key, lo, hi in bounds}
    return EvaluationResult(
        model=name,
        metrics=metrics,
        intervals=intervals,
        n_users=len(ranked),
        n_cold_users=int(n_cold_users),
        seconds=float(seconds) + (time.perf_counter() - started),
        per_user=per_user,
        params=dict(params or {}),
    )


def _nanmean(values: np.ndarray) -> float:
    finite = np.isfinite(values)
    return float(values[finite].mean()) if finite.any() else math.nan


def relevant_interactions(
    interactions: pd.DataFrame,
    relevant_events: Collection[str] | None = None,
    min_rating: float | None = None,
) -> pd.DataFrame:
    """The rows that count as relevant: not skips (or in ``relevant_events``), ratings >= min.

    Frames without an ``event`` column are taken as all relevant.
    """
    if "event" not in interactions.columns:
        return interactions
    event = interactions["event"].astype(str)
    mask = event != "skip" if relevant_events is None else event.isin(list(relevant_events))
    if min_rating is not None and "value" in interactions.columns:
        low = (event == "rating") & (interactions["value"].astype(float) < min_rating)
        mask &= ~low
    return interactions[mask.to_numpy(dtype=bool)]


def evaluate_model(
    model: Recommends,
    train: InteractionMatrix,
    test: pd.DataFrame,
    ks: Iterable[int] = (5, 10, 20),
    *,
    name: str | None = None,
    item_features: ItemFeatures | None = None,
    chunk_size: int = 4096,
    progress: bool = True,
    relevant_events: Collection[str] | None = None,
    min_rating: float | None = None,
    diversity_metric: DiversityMetric = "jaccard",
    n_boot: int = 1000,
) -> EvaluationResult:
    """Rank the catalog for every test user with ``model`` and score the lists.

    Test rows are encoded with ``train``'s indices (``train.encode_like``): rows naming an
    item outside the catalog are dropped, users training never saw are counted in
    ``n_cold_users`` and left out. Since the model is asked to exclude what a user saw in
    training, such (user, item) pairs are dropped from the truth too. Lists come from
    ``model.recommend(users, max(ks), exclude_seen=True)`` ``chunk_size`` users at a time.
    ``item_features`` / ``diversity_metric`` and ``n_boot`` are as in
    :func:`evaluate_rankings`.
    """
    started = time.perf_counter()
    ks = check_ks(ks)
    if model.n_items != train.n_items or model.n_users != train.n_users:
        raise ModelError(
            f"{model.name} was fitted on {model.n_users} users x {model.n_items} items, "
            f"the training matrix is {train.n_users} x {train.n_items}"
        )
    relevant = relevant_interactions(test, relevant_events, min_rating)
    if relevant.empty:
        raise DataError("the test part holds no relevant interactions")
    known = train.users.lookup(relevant["user_id"]) >= 0
    n_cold = int(relevant.loc[~known, "user_id"].astype(str).nunique())
    truth = (train.encode_like(relevant).matrix > 0).astype(np.float32)
    truth = truth - truth.multiply(train.matrix > 0)
    truth = canonical_truth(truth)
    users = np.flatnonzero(np.diff(truth.indptr) > 0).astype(np.int64)
    truth = truth[users]
    ranked = np.full((len(users), ks[-1]), -1, dtype=np.int64)
    with _progress(len(users), f"ranking {name or model.name}", progress) as bar:
        for start in range(0, len(users), chunk_size):
            batch = users[start : start + chunk_size]
            top, _ = model.recommend(batch, ks[-1], exclude_seen=True)
            width = min(top.shape[1], ks[-1])
            ranked[start : start + len(batch), :width] = top[:, :width]
            bar.update(len(batch))
    params = {
        **getattr(model, "params", {}),
        "chunk_size": chunk_size,
        "relevant_events": sorted(relevant_events) if relevant_events else None,
        "min_rating": min_rating,
    }
    return evaluate_rankings(
        ranked,
        truth,
        ks,
        name=name or model.name,
        popularity=train.item_popularity(),
        n_users_train=train.n_users,
        item_features=item_features,
        n_cold_users=n_cold,
        seconds=time.perf_counter() - started,
        params=params,
        diversity_metric=diversity_metric,
        n_boot=n_boot,
    )


def _progress(total: int, description: str, enabled: bool) -> Any:
    """A tqdm progress bar over users (a no-op when ``enabled`` is false)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="user", disable=not enabled, leave=False)


def evaluate_predictions(
    predictions: pd.DataFrame,
    truth: pd.DataFrame,
    k: int = 10,
    ks: Iterable[int] | None = None,
    *,
    name: str = "predictions",
    train: InteractionMatrix | pd.DataFrame | None = None,
    item_features: ItemFeatures | None = None,
    relevant_events: Collection[str] | None = None,
    min_rating: float | None = None,
    diversity_metric: DiversityMetric = "jaccard",
    n_boot: int = 1000,
) -> EvaluationResult:
    """Score recommendation lists produced by any system.

    ``predictions`` has ``user_id``, ``item_id`` and ``score`` (higher is better; ties keep
    input order) or ``rank`` (1 = best; wins over ``score``); ``truth`` has ``user_id``,
    ``item_id`` and optionally ``event`` / ``value`` (skips are not relevant). Every user
    with relevant truth is evaluated: **a user with truth but no predictions counts with zero
    hits**; users with predictions but no truth are ignored. A (user, item) predicted twice
    keeps its best position. Cut-offs are ``ks`` or else ``(k,)``. The truth is used as
    given: unlike :func:`evaluate_model`, pairs seen in training are not removed from it,
    since how the other system excluded seen items is unknown.

    ``train`` (an :class:`InteractionMatrix` or an interactions frame) gives popularity for
    novelty/ARP, and then ``n_cold_users`` counts truth users it never saw. Coverage is
    over the union of train's items, truth items and predicted items. ``item_features``
    needs ``train`` as an InteractionMatrix, rows aligned to ``train.items``.
    """
    started = time.perf_counter()
    ks = check_ks(ks if ks is not None else (k,))
    k_max = ks[-1]
    for frame, what in ((predictions, "predictions"), (truth, "truth")):
        missing = {"user_id", "item_id"} - set(frame.columns)
        if missing:
            raise DataError(f"{what} lack column(s) {sorted(missing)}", field=min(missing))
    order_by = "rank" if "rank" in predictions.columns else "score"
    if order_by not in predictions.columns:
        raise DataError("predictions need a 'score' or a 'rank' column", field="score")
    truth = relevant_interactions(truth, relevant_events, min_rating)
    base = train.items.ids if isinstance(train, InteractionMatrix) else np.array([], object)
    items = IdIndex.from_ids(
        np.concatenate(
            [
                base,
                truth["item_id"].astype(str).to_numpy(object),
                predictions["item_id"].astype(str).to_numpy(object),
            ]
        )
    )
    users = IdIndex.from_ids(truth["user_id"])
    t_users, t_items = users.lookup(truth["user_id"]), items.lookup(truth["item_id"])
    truth_matrix = sp.csr_matrix(
        (np.ones(len(t_users), np.float32), (t_users, t_items)), shape=(len(users), len(items))
    )
    truth_matrix.data[:] = 1.0  # after duplicates were summed

    p_users = users.lookup(predictions["user_id"])
    key = predictions[order_by].to_numpy(dtype=np.float64, na_value=np.nan)
    if order_by == "score":
        key = -key
    p_items = items.lookup(predictions["item_id"])
    keep = p_users >= 0
    p_users, p_items, key = p_users[keep], p_items[keep], key[keep]
    order = np.lexsort((np.arange(len(key)), key, p_users))  # NaN scores sort last
    p_users, p_items = p_users[order], p_items[order]
    first = ~pd.DataFrame({"u": p_users, "i": p_items}).duplicated().to_numpy()
    p_users, p_items = p_users[first], p_items[first]
    position = pd.Series(p_users).groupby(p_users).cumcount().to_numpy()
    top = position < k_max
    ranked = np.full((len(users), k_max), -1, dtype=np.int64)
    ranked[p_users[top], position[top]] = p_items[top]

    popularity, n_train, n_cold = _train_popularity(train, items, users)
    if item_features is not None:
        if not isinstance(train, InteractionMatrix):
            raise ValueError("item_features need train as an InteractionMatrix (row alignment)")
        item_features = _pad_rows(item_features, len(items))
    return evaluate_rankings(
        ranked,
        truth_matrix,
        ks,
        name=name,
        popularity=popularity,
        n_users_train=n_train,
        item_features=item_features,
        n_cold_users=n_cold,
        seconds=time.perf_counter() - started,
        params={"source": "predictions", "ordered_by": order_by},
        diversity_metric=diversity_metric,
        n_boot=n_boot,
    )


def _train_popularity(
    train: InteractionMatrix | pd.DataFrame | None, items: IdIndex, users: IdIndex
) -> tuple[np.ndarray | None, int | None, int]:
    if train is None:
        return None, None, 0
    if isinstance(train, InteractionMatrix):
        popularity = np.zeros(len(items))
        popularity[: train.n_items] = train.item_popularity()
        cold = int((train.users.lookup(users.ids) < 0).sum())
        return popularity, train.n_users, cold
    rows = relevant_interactions(train)
    pairs = pd.DataFrame(
        {"u": rows["user_id"].astype(str).to_numpy(), "i": items.lookup(rows["item_id"])}
    ).drop_duplicates()
    pairs = pairs[pairs["i"] >= 0]
    popularity = np.bincount(pairs["i"].to_numpy(), minlength=len(items)).astype(np.float64)
    seen = IdIndex.from_ids(rows["user_id"])
    return popularity, len(seen), int((seen.lookup(users.ids) < 0).sum())


def _pad_rows(features: ItemFeatures, n_rows: int) -> ItemFeatures:
    extra = n_rows - features.shape[0]
    if extra < 0:
        raise ValueError(f"item_features has {features.shape[0]} rows, catalog has {n_rows}")
    if extra == 0:
        return features
    if sp.issparse(features):
        pad = sp.csr_matrix((extra, features.shape[1]), dtype=features.dtype)
        return sp.vstack([sp.csr_matrix(features), pad], format="csr")
    dense = np.asarray(features)
    return np.vstack([dense, np.zeros((extra, dense.shape[1]), dtype=dense.dtype)])
