"""Vectorised top-K ranking metrics, per user, and a bootstrap for their means.

Inputs everywhere:

* ``ranked`` — int64 (n_users, K) item indices, best first, padded with -1;
* ``truth`` — scipy sparse (n_users, n_items); a nonzero entry means "relevant".

:func:`hit_matrix` marks which recommended slots are relevant; every accuracy metric for
every k then comes from cumulative sums of that one matrix (:func:`accuracy_from_hits`).
Nothing holds state across calls, so a caller may feed users in chunks and concatenate.
Users without any relevant item are the caller's to exclude (their recall, NDCG and MAP
come out as 0 here rather than as a division by zero).

Definitions, with hits h_1..h_k (1 where the item at rank i is relevant) and R relevant:

* precision@k = sum(h) / k;  recall@k = sum(h) / R;  hitrate@k = 1 if any hit;
* ndcg@k = sum(h_i / log2(i + 1)) / sum_{i <= min(R, k)} 1 / log2(i + 1);
* mrr@k = 1 / (rank of the first hit), 0 without a hit in the top k;
* map@k = sum_i h_i * precision@i / min(R, k).

A duplicated item in one list counts once (its later copies are misses).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

#: Accuracy metric names, in the order reports show them.
ACCURACY_METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "mrr", "map", "hitrate")


def check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    """The cut-offs ``ks`` as a sorted tuple of distinct positive ints."""
    out = sorted({int(k) for k in ks})
    if not out or out[0] < 1:
        raise ValueError(f"cut-offs must be positive integers, got {list(ks)}")
    return tuple(out)


def canonical_truth(truth: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """A copy of ``truth`` as CSR with sorted indices, no duplicates, no explicit zeros."""
    out = sp.csr_matrix(truth, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    out.sort_indices()
    return out


def relevant_counts(truth: sp.spmatrix | sp.sparray) -> np.ndarray:
    """Number of relevant items per user (nonzero entries per row), int64."""
    return np.diff(canonical_truth(truth).indptr).astype(np.int64)


def duplicate_mask(ranked: np.ndarray) -> np.ndarray:
    """True at every repeat of an item already listed earlier in the same row."""
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.shape[1] < 2:
        return np.zeros(ranked.shape, dtype=bool)
    order = np.argsort(ranked, axis=1, kind="stable")
    ordered = np.take_along_axis(ranked, order, axis=1)
    repeat = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    mask = np.zeros(ranked.shape, dtype=bool)
    np.put_along_axis(mask, order[:, 1:], repeat, axis=1)
    return mask


def hit_matrix(ranked: np.ndarray, truth: sp.spmatrix | sp.sparray) -> np.ndarray:
    """Bool (n_users, K): whether ``ranked[u, r]`` is relevant to user ``u``.

    Padding (-1) and repeated items are never hits. Raises ``ValueError`` when shapes
    disagree or an index is past the catalog.
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be 2-d (n_users, K), got shape {ranked.shape}")
    t = canonical_truth(truth)
    n_users, n_items = t.shape
    if ranked.shape[0] != n_users:
        raise ValueError(f"ranked has {ranked.shape[0]} rows but truth has {n_users}")
    if ranked.size and ranked.max() >= n_items:
        raise ValueError(f"ranked holds item index {ranked.max()} >= n_items={n_items}")
    valid = ranked >= 0
    if t.nnz == 0 or ranked.size == 0:
        return np.zeros(ranked.shape, dtype=bool)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(t.indptr))
    keys = rows * n_items + t.indices.astype(np.int64)  # sorted: CSR rows, sorted indices
    query = np.arange(n_users, dtype=np.int64)[:, None] * n_items + np.where(valid, ranked, 0)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    hits = valid & (keys[pos] == query)
    hits &= ~duplicate_mask(ranked)
    return hits


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast_shapes(num.shape, den.shape), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def accuracy_from_hits(
    hits: np.ndarray, n_relevant: np.ndarray, ks: Iterable[int]
) -> dict[str, np.ndarray]:
    """Per-user accuracy metrics for every k, from one hit matrix.

    Returns float64 (n_users,) arrays keyed ``"<metric>@<k>"`` for each name in
    :data:`ACCURACY_METRICS`. Lists shorter than k count their missing slots as misses.
    """
    ks = check_ks(ks)
    k_max = ks[-1]
    hits = np.asarray(hits, dtype=bool)
    n_users, width = hits.shape
    if width < k_max:
        hits = np.hstack([hits, np.zeros((n_users, k_max - width), dtype=bool)])
    h = hits[:, :k_max].astype(np.float64)
    rank = np.arange(1, k_max + 1, dtype=np.float64)
    cum_hits = np.cumsum(h, axis=1)
    discount = 1.0 / np.log2(rank + 1.0)
    dcg = np.cumsum(h * discount, axis=1)
    ideal = np.r_[0.0, np.cumsum(discount)]
    ap_sum = np.cumsum(h * cum_hits / rank, axis=1)
    first = np.where(hits[:, :k_max].any(axis=1), hits[:, :k_max].argmax(axis=1), k_max)
    n_rel = np.asarray(n_relevant, dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        found = cum_hits[:, k - 1]
        capped = np.minimum(n_rel, k)
        out[f"precision@{k}"] = found / k
        out[f"recall@{k}"] = _div(found, n_rel.astype(np.float64))
        out[f"ndcg@{k}"] = _div(dcg[:, k - 1], ideal[capped])
        out[f"mrr@{k}"] = np.where(first < k, 1.0 / (first + 1.0), 0.0)
        out[f"map@{k}"] = _div(ap_sum[:, k - 1], capped.astype(np.float64))
        out[f"hitrate@{k}"] = (found > 0).astype(np.float64)
    return out


def ranking_metrics(
    ranked: np.ndarray, truth: sp.spmatrix | sp.sparray, ks: Iterable[int]
) -> dict[str, np.ndarray]:
    """Per-user accuracy metrics of ``ranked`` against ``truth`` for every k in ``ks``."""
    return accuracy_from_hits(hit_matrix(ranked, truth), relevant_counts(truth), ks)


def _one(metric: str, ranked: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int) -> np.ndarray:
    return ranking_metrics(ranked, truth, (k,))[f"{metric}@{k}"]


def precision_at_k(ranked: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int) -> np.ndarray:
    """Per-user precision@k: relevant items in the top k, over k."""
    return _one("precision", ranked, truth, k)


def recall_at_k(ranked: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int) -> np.ndarray:
    """Per-user recall@k: relevant items in the top k, over all relevant items."""
    return _one("recall", ranked, truth, k)


def ndcg_at_k(ranked: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int) -> np.ndarray:
    """Per-user NDCG@k with binary gains and a log2(rank + 1) discount."""
    return _one("ndcg", ranked, truth, k)


def mrr_at_k(ranked: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int) -> np.ndarray:
    """Per-user reciprocal rank of the first relevant item within the top k (0 if none)."""
    return _one("mrr", ranked, truth, k)


def map_at_k(ranked: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int) -> np.ndarray:
    """Per-user average precision@k, normalised by min(|relevant|, k)."""
    return _one("map", ranked, truth, k)


def hitrate_at_k(ranked: np.ndarray, truth: sp.spmatrix | sp.sparray, k: int) -> np.ndarray:
    """Per-user 1.0 when the top k holds at least one relevant item, else 0.0."""
    return _one("hitrate", ranked, truth, k)


def bootstrap_cis(
    values: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    block_elements: int = 1 << 22,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap intervals of column means of ``values`` (n_users, m).

    All columns share the same user resamples (a paired bootstrap). NaN entries (users a
    metric is undefined for) are left out of that column's mean. Resamples are drawn as
    multiplicity counts, ``block_elements`` at a time, and the means come from one matrix
    product per block — no loop over users. Returns (low, high), each (m,).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n, m = x.shape
    if n == 0 or n_boot < 1:
        return np.full(m, np.nan), np.full(m, np.nan)
    finite = np.isfinite(x)
    x0 = np.where(finite, x, 0.0)
    weights = finite.astype(np.float64)
    has_nan = not finite.all()
    rng = np.random.default_rng(seed)
    means = np.empty((n_boot, m), dtype=np.float64)
    block = max(1, block_elements // n)
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b, dtype=np.int64) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        sums = counts @ x0
        used = counts @ weights if has_nan else np.full((b, m), float(n))
        with np.errstate(invalid="ignore", divide="ignore"):
            means[start : start + b] = np.where(used > 0, sums / used, np.nan)
    with warnings.catch_warnings():  # all-NaN columns give NaN bounds, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanquantile(means, alpha / 2.0, axis=0)
        high = np.nanquantile(means, 1.0 - alpha / 2.0, axis=0)
    return low, high


def bootstrap_ci(
    per_user: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile-bootstrap (1 - alpha) interval of the mean of a per-user metric."""
    low, high = bootstrap_cis(np.asarray(per_user).reshape(-1), n_boot, seed, alpha)
    return float(low[0]), float(high[0])
