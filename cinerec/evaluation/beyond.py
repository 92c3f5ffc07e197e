"""Beyond-accuracy metrics of top-K lists: coverage, diversity, novelty, popularity bias.

``ranked`` is int64 (n_users, K) item indices padded with -1, as in
:mod:`cinerec.evaluation.metrics`; every function looks at the first ``k`` columns only.
Per-user functions return float64 (n_users,) with NaN for users the metric is undefined
for (an empty list; fewer than two comparable items for diversity) — aggregate with
``np.nanmean``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

DiversityMetric = Literal["jaccard", "cosine"]

#: Item-feature matrices with at most this many cells are densified for diversity.
_DENSE_CELLS = 50_000_000


def _top(ranked: np.ndarray, k: int) -> np.ndarray:
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be 2-d (n_users, K), got shape {ranked.shape}")
    return ranked[:, :k]


def recommended_items(ranked: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """Bool (n_items,): recommended to at least one user in a top ``k``.

    OR the masks of several chunks to get coverage over all of them.
    """
    top = _top(ranked, k)
    mask = np.zeros(n_items, dtype=bool)
    mask[top[top >= 0]] = True
    return mask


def catalog_coverage(ranked: np.ndarray, n_items: int, k: int) -> float:
    """Fraction of the ``n_items`` catalog that appears in at least one user's top ``k``."""
    if n_items <= 0:
        return float("nan")
    return float(recommended_items(ranked, n_items, k).mean())


def _masked_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    count = valid.sum(axis=1)
    total = np.where(valid, values, 0.0).sum(axis=1)
    out = np.full(len(count), np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def novelty(ranked: np.ndarray, popularity: np.ndarray, n_users: int, k: int) -> np.ndarray:
    """Per-user mean self-information ``-log2(pop_i / n_users)`` of the top ``k``.

    ``popularity`` is training users per item; items never seen in training are counted
    as seen by one user, so they score the maximum ``log2(n_users)`` instead of infinity.
    """
    top = _top(ranked, k)
    pop = np.maximum(np.asarray(popularity, dtype=np.float64), 1.0)
    info = -np.log2(pop / max(float(n_users), 1.0))
    valid = top >= 0
    return _masked_mean(info[np.maximum(top, 0)], valid)


def average_popularity(ranked: np.ndarray, popularity: np.ndarray, k: int) -> np.ndarray:
    """Per-user average recommendation popularity (ARP): mean training popularity of the top k."""
    top = _top(ranked, k)
    pop = np.asarray(popularity, dtype=np.float64)
    return _masked_mean(pop[np.maximum(top, 0)], top >= 0)


def head_items(popularity: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """Bool (n_items,): the ``ceil(fraction * n_items)`` most popular items (ties by index)."""
    pop = np.asarray(popularity, dtype=np.float64)
    n_head = int(np.ceil(fraction * len(pop)))
    order = np.lexsort((np.arange(len(pop)), -pop))
    mask = np.zeros(len(pop), dtype=bool)
    mask[order[:n_head]] = True
    return mask


def popular_share(
    ranked: np.ndarray, popularity: np.ndarray, k: int, head_fraction: float = 0.2
) -> np.ndarray:
    """Per-user fraction of the top ``k`` drawn from the ``head_fraction`` most popular items."""
    top = _top(ranked, k)
    head = head_items(popularity, head_fraction).astype(np.float64)
    return _masked_mean(head[np.maximum(top, 0)], top >= 0)


def intra_list_diversity(
    ranked: np.ndarray,
    item_features: np.ndarray | sp.spmatrix | sp.sparray,
    k: int,
    metric: DiversityMetric = "jaccard",
    chunk_size: int = 2048,
) -> np.ndarray:
    """Per-user mean pairwise distance between the items of each top ``k``.

    ``item_features`` is (n_items, f), dense or sparse: a binary item x genre matrix for
    ``metric="jaccard"`` (1 - |A ∩ B| / |A ∪ B| over nonzero features) or an embedding for
    ``metric="cosine"`` (1 - cosine similarity). Pairs with an item that has no features
    (an empty genre set, a zero vector) are unknown and left out; a user with no pair left
    gets NaN.
    """
    if metric not in ("jaccard", "cosine"):
        raise ValueError(f"diversity metric is 'jaccard' or 'cosine', got {metric!r}")
    top = _top(ranked, k)
    n_users = top.shape[0]
    out = np.full(n_users, np.nan)
    if top.shape[1] < 2 or n_users == 0:
        return out
    feats = item_features
    n_items, n_feats = feats.shape
    if top.max() >= n_items:
        raise ValueError(f"ranked holds item {top.max()} but item_features has {n_items} rows")
    sparse = sp.issparse(feats)
    if sparse and n_items * n_feats <= _DENSE_CELLS:
        feats, sparse = sp.csr_matrix(feats).toarray(), False
    if sparse:
        feats = sp.csr_matrix(feats, dtype=np.float64)
        if metric == "jaccard":
            feats.data = (feats.data != 0).astype(np.float64)
            size = np.asarray(feats.sum(axis=1)).ravel()
        else:
            size = np.sqrt(np.asarray(feats.multiply(feats).sum(axis=1)).ravel())
            feats = sp.diags(np.divide(1.0, size, out=np.zeros_like(size), where=size > 0)) @ feats
            feats = sp.csr_matrix(feats)
        step = max(1, chunk_size // 8)
    else:
        feats = np.asarray(feats, dtype=np.float32)
        if metric == "jaccard":
            feats = (feats != 0).astype(np.float32)
            size = feats.sum(axis=1).astype(np.float64)
        else:
            size = np.linalg.norm(feats.astype(np.float64), axis=1)
            scale = np.divide(1.0, size, out=np.zeros_like(size), where=size > 0)
            feats = (feats * scale[:, None]).astype(np.float32)
        step = max(1, min(chunk_size, (1 << 24) // max(1, top.shape[1] * n_feats)))
    has_features = size > 0
    for start in range(0, n_users, step):
        chunk = top[start : start + step]
        valid = (chunk >= 0) & has_features[np.maximum(chunk, 0)]
        if sparse:
            out[start : start + step] = _sparse_chunk(chunk, valid, feats, size, metric)
        else:
            out[start : start + step] = _dense_chunk(chunk, valid, feats, size, metric)
    return out


def _dense_chunk(
    chunk: np.ndarray, valid: np.ndarray, feats: np.ndarray, size: np.ndarray, metric: str
) -> np.ndarray:
    idx = np.maximum(chunk, 0)
    x = feats[idx] * valid[:, :, None]
    gram = np.matmul(x, x.transpose(0, 2, 1)).astype(np.float64)
    if metric == "jaccard":
        s = size[idx]
        union = s[:, :, None] + s[:, None, :] - gram
        sim = np.divide(gram, union, out=np.zeros_like(gram), where=union > 0)
    else:
        sim = np.clip(gram, -1.0, 1.0)
    width = chunk.shape[1]
    pairs = valid[:, :, None] & valid[:, None, :] & np.triu(np.ones((width, width), bool), 1)
    count = pairs.sum(axis=(1, 2))
    total = np.where(pairs, 1.0 - sim, 0.0).sum(axis=(1, 2))
    out = np.full(len(chunk), np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def _sparse_chunk(
    chunk: np.ndarray, valid: np.ndarray, feats: sp.csr_matrix, size: np.ndarray, metric: str
) -> np.ndarray:
    first, second = np.triu_indices(chunk.shape[1], 1)
    keep = valid[:, first] & valid[:, second]
    user = np.nonzero(keep)[0]
    a = chunk[:, first][keep]
    b = chunk[:, second][keep]
    dot = np.asarray(feats[a].multiply(feats[b]).sum(axis=1)).ravel()
    if metric == "jaccard":
        union = size[a] + size[b] - dot
        sim = np.divide(dot, union, out=np.zeros_like(dot), where=union > 0)
    else:
        sim = np.clip(dot, -1.0, 1.0)
    count = np.bincount(user, minlength=len(chunk))
    total = np.bincount(user, weights=1.0 - sim, minlength=len(chunk))
    out = np.full(len(chunk), np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out
