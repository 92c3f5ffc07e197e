"""Exact inner-product search with numpy, and the input checks every vector search shares.

:func:`exact_top_k` is the ground truth that approximate indexes are measured against
(recall@k in ``tests/retrieval`` and ``benchmarks/ann.py``); :class:`~cinerec.retrieval.ann.
VectorIndex` uses :func:`as_matrix` and :func:`unit_rows` to accept item and query arrays
the same way whichever index answers. Kept apart from the faiss wrapper so the reference
does not depend on the code it checks.
"""

from __future__ import annotations

import numpy as np

from cinerec.errors import ModelError
from cinerec.retrieval.topk import top_k


def as_matrix(x: np.ndarray, name: str, d: int | None = None) -> np.ndarray:
    """A C-contiguous float32 (rows, d) copy-or-view of ``x``, or a clear error."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ModelError(f"{name} must be a 2-d array (rows, dim), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ModelError(f"{name} must be a float array (float32 preferred), got {arr.dtype}")
    if d is not None and arr.shape[1] != d:
        raise ModelError(f"{name} has dimension {arr.shape[1]}, the index has {d}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ModelError(f"{name} contains NaN or infinite values")
    return arr


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` with every row scaled to unit length (zero rows stay zero), C-contiguous
    float32: cosine similarity as an inner product."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def exact_top_k(
    vectors: np.ndarray, queries: np.ndarray, k: int, *, chunk_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k`` with numpy, in query chunks: the ground truth.

    Returns (ids int64 (q, k), scores float32 (q, k)), best first, ties broken by the
    lower id, padded with -1 / -inf when the catalog holds fewer than ``k`` items.
    """
    items = as_matrix(vectors, "vectors")
    q = as_matrix(queries, "queries", items.shape[1])
    ids = np.empty((len(q), k), dtype=np.int64)
    scores = np.empty((len(q), k), dtype=np.float32)
    for start in range(0, len(q), chunk_size):
        stop = start + chunk_size
        ids[start:stop], scores[start:stop] = top_k(q[start:stop] @ items.T, k)
    return ids, scores
