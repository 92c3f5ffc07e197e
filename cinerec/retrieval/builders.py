"""Builders of the approximate faiss indexes behind :class:`cinerec.retrieval.VectorIndex`."""

from __future__ import annotations

from typing import Any, Final

import faiss
import numpy as np

from cinerec.errors import ModelError

#: Default IVF ``nprobe`` as a fraction of ``nlist`` (recall@100 >= 0.95 at 1M, d=64).
IVF_PROBE_FRACTION: Final = 0.08
#: k-means iterations for the IVF cells: 15 instead of faiss's default 25, to cut the
#: build time; the recall in benchmarks/ann.py is measured with this setting.
KMEANS_ITERATIONS: Final = 15


def build_hnsw(x: np.ndarray, params: dict[str, Any]) -> tuple[faiss.Index, dict[str, Any]]:
    """An HNSW graph; ``mips`` "native" (inner-product graph) or "l2" (MIPS-to-L2 reduction)."""
    d = x.shape[1]
    M = int(params["M"])
    if params["mips"] == "native":
        index = faiss.IndexHNSWFlat(d, M, faiss.METRIC_INNER_PRODUCT)
        data = x
    elif params["mips"] == "l2":
        # ‖q‖² + M² − 2⟨q, x⟩ = ‖(q, 0) − (x, √(M² − ‖x‖²))‖²: L2 order is IP order.
        sq = np.einsum("ij,ij->i", x, x)
        max_sq = float(sq.max())
        extra = np.sqrt(np.maximum(max_sq - sq, 0.0)).astype(np.float32)[:, None]
        data = np.ascontiguousarray(np.hstack([x, extra]))
        index = faiss.IndexHNSWFlat(d + 1, M, faiss.METRIC_L2)
        params = {**params, "max_norm": float(np.sqrt(max_sq)) or 1.0}
    else:
        raise ModelError(f"hnsw mips must be 'native' or 'l2', got {params['mips']!r}")
    index.hnsw.efConstruction = int(params["ef_construction"])
    index.hnsw.efSearch = int(params["ef_search"])
    index.add(data)
    return index, params


def build_ivf(
    x: np.ndarray, params: dict[str, Any], seed: int
) -> tuple[faiss.Index, dict[str, Any]]:
    """An IVF-Flat inner-product index, k-means trained on a sample of ``train_size``."""
    n, d = x.shape
    nlist = int(params["nlist"] or max(1, min(n // 39, round(2 * np.sqrt(n)))))
    nprobe = int(params["nprobe"] or max(1, round(IVF_PROBE_FRACTION * nlist)))
    train_size = int(params["train_size"] or 64 * nlist)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    # The IVF index owns and frees its quantizer.
    quantizer.this.disown()  # type: ignore[attr-defined]  # SWIG's handle, not in faiss's stubs
    index.own_fields = True
    index.cp.seed = seed
    index.cp.niter = KMEANS_ITERATIONS
    index.cp.max_points_per_centroid = max(1, train_size // nlist)
    rng = np.random.default_rng(seed)
    sample = x if n <= train_size else x[np.sort(rng.choice(n, train_size, replace=False))]
    index.train(sample)
    index.add(x)
    index.nprobe = nprobe
    return index, {**params, "nlist": nlist, "nprobe": nprobe, "train_size": train_size}
