"""Row-wise top-k over dense score matrices: the one selection every model and index uses.

Kept at the bottom of the retrieval layer (numpy only) so that models, indexes and the
pipeline share one deterministic tie-break without importing each other.
"""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense score matrix: (indices, scores), best first.

    Entries equal to -inf (or NaN) are never returned; their slots are padded with -1 /
    -inf. Ties are broken by lower index — also at the k-th place, where a plain
    ``argpartition`` would pick an arbitrary one of the tied items — so results are
    deterministic.
    """
    scores = np.asarray(scores)
    n, m = scores.shape
    k_eff = min(k, m)
    if k_eff <= 0:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32)
    scores = np.where(np.isnan(scores), -np.inf, scores)
    if k_eff < m:
        # The k-th largest value per row; take everything above it, then the tied items
        # with the lowest indices until each row holds exactly k_eff.
        kth = -np.partition(-scores, k_eff - 1, axis=1)[:, k_eff - 1 : k_eff]
        above = scores > kth
        tied = scores == kth
        need = k_eff - above.sum(axis=1, keepdims=True)
        chosen = above | tied
        excess = np.flatnonzero(tied.sum(axis=1) > need[:, 0])
        if excess.size:  # only rows with surplus ties pay for the running count
            rank = np.cumsum(tied[excess], axis=1, dtype=np.int32)
            chosen[excess] = above[excess] | (tied[excess] & (rank <= need[excess]))
        part = np.nonzero(chosen)[1].reshape(n, k_eff)
    else:
        part = np.broadcast_to(np.arange(m), (n, m)).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    val = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    idx[np.isneginf(val)] = -1
    if k_eff < k:
        pad = k - k_eff
        idx = np.hstack([idx, np.full((n, pad), -1, dtype=np.int64)])
        val = np.hstack([val, np.full((n, pad), -np.inf, dtype=np.float32)])
    return idx, val
