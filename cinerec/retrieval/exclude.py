"""Per-query exclusion lists for top-k search: parse them, drop excluded ids from results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp

from cinerec.errors import ModelError

#: Per-query ids to leave out: a list of id arrays or a sparse matrix, one row per query.
ExcludeLike: TypeAlias = Sequence[np.ndarray] | sp.spmatrix | sp.sparray | None


def exclude_rows(exclude: ExcludeLike, n_queries: int) -> list[np.ndarray] | None:
    """Per-query int64 arrays of excluded ids (sorted, unique), or None."""
    if exclude is None:
        return None
    if sp.issparse(exclude):
        csr = sp.csr_array(exclude)
        if csr.shape[0] != n_queries:
            raise ModelError(f"exclude has {csr.shape[0]} rows for {n_queries} queries")
        csr.sort_indices()
        return [
            csr.indices[csr.indptr[i] : csr.indptr[i + 1]].astype(np.int64)
            for i in range(n_queries)
        ]
    rows = list(exclude)
    if len(rows) != n_queries:
        raise ModelError(f"exclude has {len(rows)} rows for {n_queries} queries")
    return [np.unique(np.asarray(r, dtype=np.int64).ravel()) for r in rows]


def drop_excluded(
    ids: np.ndarray, scores: np.ndarray, rows: list[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Remove excluded ids row-wise, keep order, cut to k; also says which rows ran short.

    A row is "short" when fewer than ``k`` survive although every fetched slot held a
    real item (so a larger fetch could find more).
    """
    nq = ids.shape[0]
    n_span = int(max(ids.max(initial=0), max((int(r.max()) for r in rows if r.size), default=0)))
    span = n_span + 2
    fetched = np.arange(nq, dtype=np.int64)[:, None] * span + (ids + 1)
    lens = np.array([len(r) for r in rows], dtype=np.int64)
    flat_rows = np.concatenate(rows) if lens.sum() else np.empty(0, dtype=np.int64)
    banned = np.repeat(np.arange(nq, dtype=np.int64), lens) * span + (flat_rows + 1)
    drop = np.isin(fetched, banned) | (ids < 0)
    order = np.argsort(drop, axis=1, kind="stable")[:, :k]
    out_ids = np.take_along_axis(ids, order, axis=1)
    out_scores = np.take_along_axis(scores, order, axis=1)
    gone = np.take_along_axis(drop, order, axis=1)
    out_ids[gone] = -1
    out_scores[gone] = -np.inf
    if out_ids.shape[1] < k:
        pad = k - out_ids.shape[1]
        out_ids = np.hstack([out_ids, np.full((nq, pad), -1, dtype=np.int64)])
        out_scores = np.hstack([out_scores, np.full((nq, pad), -np.inf, dtype=np.float32)])
        gone = np.hstack([gone, np.ones((nq, pad), dtype=bool)])
    short = np.asarray(gone.any(axis=1) & (ids >= 0).all(axis=1))  # bool (nq,)
    return out_ids, out_scores, short
