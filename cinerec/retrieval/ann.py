"""Inner-product top-k search over item vectors with faiss: exact or approximate, one API.

Used for ALS item factors (scored by a user factor) and content vectors (scored by a
query embedding). Small catalogs use exact search; large ones an HNSW graph or an
inverted file (IVF), picked by :meth:`VectorIndex.build` from the catalog size and
vector width. Results
follow :func:`cinerec.retrieval.topk.top_k`: int64 ids and float32 scores, best first,
padded with -1 / -inf where fewer than ``k`` items are eligible. The exact numpy search
these are measured against is :func:`cinerec.retrieval.exact.exact_top_k`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import faiss
import numpy as np

from cinerec.errors import ModelError
from cinerec.retrieval.builders import build_hnsw, build_ivf
from cinerec.retrieval.exact import as_matrix, exact_top_k, unit_rows
from cinerec.retrieval.exclude import ExcludeLike, drop_excluded, exclude_rows
from cinerec.retrieval.topk import top_k

# exact_top_k lives in retrieval/exact.py; still importable from here, where it used to be.
__all__ = ["VectorIndex", "exact_top_k", "faiss_threads"]

KINDS: Final = ("auto", "flat", "hnsw", "ivf")
METRICS: Final = ("ip", "cosine")
#: ``kind="auto"`` builds an exact index up to this many items, IVF above. IVF, not
#: HNSW: on the 2-core reference machine (benchmarks/ann.py, d=64, 1M items) IVF reaches
#: recall@100 0.96 at ~1 ms p50 after a ~40 s build, while an HNSW graph good enough for
#: inner product (M=64, efConstruction=200) takes well over ten minutes to build.
AUTO_FLAT_MAX: Final = 50_000
#: ...and only while one exact query scans at most this many floats (50k items at d=64,
#: 12.8 MB). Exact search is memory-bound: 30k sentence embeddings (d=384) take 2.6 ms
#: per query on the 2-core machine, an IVF probe over the same vectors 0.3 ms.
AUTO_FLAT_MAX_VALUES: Final = AUTO_FLAT_MAX * 64
#: Defaults per kind; any of them can be overridden in :meth:`VectorIndex.build`.
#: ivf: ``nlist`` None = 2·√n cells; ``nprobe`` None = 8% of the cells;
#: ``train_size`` None = 64 points per cell for k-means (15 iterations).
DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "flat": {},
    "hnsw": {"M": 64, "ef_construction": 200, "ef_search": 256, "mips": "native"},
    "ivf": {"nlist": None, "nprobe": None, "train_size": None},
}
_SIDECAR_VERSION: Final = 1
#: An ``eligible`` mask is searched through a bitmap selector when the index is exact or
#: at least this fraction is true; a sparser mask on an approximate index goes the
#: ``allowed`` way (exact search within a small subset), since probing a few cells could
#: come back with fewer than ``k`` eligible items.
ELIGIBLE_BITMAP_MIN: Final = 0.75
#: Rows whose exclusion list is longer than this over-fetch get a second, larger search.
_OVERFETCH_MIN: Final = 128


@contextmanager
def faiss_threads(n: int | None) -> Iterator[None]:
    """Run faiss with ``n`` OpenMP threads inside the block, restoring the old setting."""
    if n is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class VectorIndex:
    """Top-k inner-product search over a fixed set of item vectors (ids 0..n-1).

    Wraps a faiss index behind one batch-first API so callers need not care whether the
    search is exact or approximate: ``kind="flat"`` is exact brute force (best below
    ~50k items, where it is already sub-millisecond); ``"hnsw"`` is a navigable
    small-world graph (fast single queries, high recall, slow-ish build); ``"ivf"`` is an
    inverted file over k-means cells (fast build, lower memory, needs more probing for
    the same recall). ``search`` can drop already-seen items per query while still
    returning ``k`` results, and restrict a call to an allowed subset of items (e.g. a
    rule-filtered candidate set). ``save``/``load`` use faiss's own format plus a JSON
    sidecar, never pickle. ``metric="cosine"`` normalises items and queries.
    """

    def __init__(
        self, index: faiss.Index, *, kind: str, metric: str, params: dict[str, Any], n: int, d: int
    ) -> None:
        self.index = index
        self.kind = kind
        self.metric = metric
        self.params = params
        self.n = n
        self.d = d
        self._max_norm = float(params.get("max_norm", 0.0))
        self._stored: np.ndarray | None = None
        self._source: np.ndarray | None = None  # the indexed vectors, when the caller holds them

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        kind: str = "auto",
        metric: str = "ip",
        seed: int = 0,
        threads: int | None = None,
        **params: Any,
    ) -> VectorIndex:
        """Index ``vectors`` (n, d); ``params`` override :data:`DEFAULTS` of the kind.

        hnsw: ``M``, ``ef_construction``, ``ef_search``, ``mips`` ("native": inner
        product graph; "l2": the MIPS-to-L2 reduction with one extra dimension).
        ivf: ``nlist`` (default 2·√n), ``nprobe`` (default 8% of nlist), ``train_size``
        (k-means sample, default 64·nlist).
        """
        if kind not in KINDS:
            raise ModelError(f"unknown index kind {kind!r}; choose one of {KINDS}")
        if metric not in METRICS:
            raise ModelError(f"unknown metric {metric!r}; choose one of {METRICS}")
        x = as_matrix(vectors, "vectors")
        n, d = x.shape
        if n == 0 or d == 0:
            raise ModelError(f"cannot index an empty array of shape {x.shape}")
        if kind == "auto":
            kind = "flat" if n <= AUTO_FLAT_MAX and n * d <= AUTO_FLAT_MAX_VALUES else "ivf"
        unknown = set(params) - set(DEFAULTS[kind])
        if unknown:
            raise ModelError(f"unknown {kind} parameters {sorted(unknown)}")
        full = {**DEFAULTS[kind], **params}
        if metric == "cosine":
            x = unit_rows(x)
        with faiss_threads(threads):
            if kind == "flat":
                index: faiss.Index = faiss.IndexFlatIP(d)
                index.add(x)
            elif kind == "hnsw":
                index, full = build_hnsw(x, full)
            else:
                index, full = build_ivf(x, full, seed)
        built = cls(index, kind=kind, metric=metric, params=full, n=n, d=d)
        if kind == "ivf" and x is vectors:
            # The caller's own array (no copy was made): exact searches within a subset
            # gather from it instead of reconstructing vectors from the inverted lists.
            built._source = x
        return built

    # ------------------------------------------------------------------ searching
    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude: ExcludeLike = None,
        allowed: np.ndarray | None = None,
        eligible: np.ndarray | None = None,
        threads: int | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids int64 (q, k), scores float32 (q, k)) per query, best first.

        ``exclude``: per-query ids never to return (list of arrays or a sparse matrix
        with one row per query, e.g. the seen-items rows); the search over-fetches and,
        for rows that ran short, searches again with room for the whole exclusion list.
        ``allowed``: ids the whole call is restricted to (a faiss ID selector).
        ``eligible``: the same restriction as a bool (n,) mask — what a request's filter
        stage has at hand; a mostly-true mask becomes a bitmap selector directly, with no
        id list, over-fetch or exclusion pass.
        ``threads``: faiss threads (default: 1 for a single query, else all cores).
        ``ef_search`` / ``nprobe`` override the built defaults for this call.
        Missing results are padded with -1 / -inf.
        """
        q = as_matrix(queries, "queries", self.d)
        k = int(k)
        if k <= 0:
            raise ModelError(f"k must be positive, got {k}")
        if self.metric == "cosine":
            q = unit_rows(q)
        rows = exclude_rows(exclude, len(q))
        mask: np.ndarray | None  # the eligible items as a bitmap, or None
        if eligible is not None:
            if allowed is not None:
                raise ModelError("give allowed ids or an eligible mask, not both")
            mask = np.asarray(eligible, dtype=bool)
            if mask.shape != (self.n,):
                raise ModelError(f"eligible must be a bool mask of shape ({self.n},)")
            if self.kind != "flat" and np.count_nonzero(mask) < self.n * ELIGIBLE_BITMAP_MIN:
                allowed, mask = np.flatnonzero(mask), None
        else:
            mask = None
        subset = self._allowed_ids(allowed)
        if subset is not None and subset.size <= AUTO_FLAT_MAX:
            return self._subset_search(q, k, subset, rows)
        if subset is not None:
            mask = np.zeros(self.n, dtype=bool)
            mask[subset] = True
        selector = None if mask is None else self._selector(mask)
        if threads is None:
            threads = 1 if len(q) == 1 else (os.cpu_count() or 1)
        with faiss_threads(threads):
            if rows is None:
                return self._raw_search(q, k, selector, ef_search, nprobe)
            sizes = np.array([len(r) for r in rows], dtype=np.int64)
            extra = int(min(sizes.max(initial=0), max(_OVERFETCH_MIN, k)))
            ids, scores = self._raw_search(q, k + extra, selector, ef_search, nprobe)
            ids, scores, short = drop_excluded(ids, scores, rows, k)
            # Rows with fewer than k left although the index had more to give.
            short &= sizes > extra
            todo = np.flatnonzero(short)
            if todo.size:
                fetch = k + int(sizes[todo].max())
                more_ids, more_scores = self._raw_search(
                    q[todo], fetch, selector, ef_search, nprobe
                )
                sub = [rows[i] for i in todo]
                ids[todo], scores[todo], _ = drop_excluded(more_ids, more_scores, sub, k)
        return ids, scores

    def _allowed_ids(self, allowed: np.ndarray | None) -> np.ndarray | None:
        if allowed is None:
            return None
        ids = np.unique(np.asarray(allowed, dtype=np.int64).ravel())
        if ids.size and (ids[0] < 0 or ids[-1] >= self.n):
            raise ModelError(f"allowed ids must lie in [0, {self.n})")
        return ids

    def _subset_search(
        self, q: np.ndarray, k: int, subset: np.ndarray, rows: list[np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact search within a small allowed set: faster and complete, unlike a filtered
        graph or IVF probe, which can miss or run out of the few eligible items."""
        ids = np.full((len(q), k), -1, dtype=np.int64)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        if subset.size == 0:
            return ids, scores
        vectors = self._vectors(subset)
        for start in range(0, len(q), 256):
            block = q[start : start + 256] @ vectors.T
            for offset, banned in enumerate((rows or [])[start : start + 256]):
                pos = np.searchsorted(subset, banned).clip(0, subset.size - 1)
                block[offset, pos[subset[pos] == banned]] = -np.inf
            top, top_scores = top_k(block, k)
            ids[start : start + 256] = np.where(top >= 0, subset[np.maximum(top, 0)], -1)
            scores[start : start + 256] = top_scores
        return ids, scores

    def _vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored (possibly normalised) vectors of ``ids``, (len(ids), d) float32."""
        if self.kind == "ivf":
            if self._source is not None:
                return self._source[ids]
            if self.index.direct_map.type == faiss.DirectMap.NoMap:  # type: ignore[attr-defined]  # an IndexIVF here, typed as the base Index; faiss's stubs lack DirectMap
                self.index.make_direct_map()  # type: ignore[attr-defined]  # an IndexIVF here, typed as the base Index
            return self.index.reconstruct_batch(ids)
        index = self.index if self.kind == "flat" else self.index.storage  # type: ignore[attr-defined]  # an IndexHNSW here, typed as the base Index
        return self._stored_vectors(index)[ids, : self.d]

    def _selector(self, mask: np.ndarray) -> faiss.IDSelector:
        bits = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(self.n, faiss.swig_ptr(bits))
        selector.referenced_bits = bits  # type: ignore[attr-defined]  # keeps the buffer alive as long as the selector
        return selector

    def _search_params(
        self, selector: faiss.IDSelector | None, ef_search: int | None, nprobe: int | None
    ) -> faiss.SearchParameters | None:
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
            params.efSearch = int(ef_search or self.params["ef_search"])
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = int(nprobe or self.params["nprobe"])
        elif selector is None:
            return None
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params

    def _raw_search(
        self,
        q: np.ndarray,
        k: int,
        selector: faiss.IDSelector | None,
        ef_search: int | None,
        nprobe: int | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        fetch = min(k, self.n)
        params = self._search_params(selector, ef_search, nprobe)
        if self.kind == "hnsw" and params is not None:
            params.efSearch = max(params.efSearch, fetch)  # type: ignore[attr-defined]  # a SearchParametersHNSW for hnsw
        xq = q
        if self._max_norm:  # MIPS-to-L2: queries get a zero extra coordinate
            xq = np.hstack([q, np.zeros((len(q), 1), dtype=np.float32)])
        dist, ids = self.index.search(xq, fetch, params=params)
        ids = ids.astype(np.int64, copy=False)
        valid = ids >= 0
        if self._max_norm:  # distances are L2: rescore exactly from the stored vectors
            stored = self._stored_vectors(self.index.storage)  # type: ignore[attr-defined]  # an IndexHNSW here, typed as the base Index
            scores = np.einsum("qd,qkd->qk", q, stored[np.where(valid, ids, 0), : self.d])
        else:
            scores = dist
        scores = np.where(valid, scores, -np.inf).astype(np.float32)
        if fetch < k:
            pad = k - fetch
            ids = np.hstack([ids, np.full((len(q), pad), -1, dtype=np.int64)])
            scores = np.hstack([scores, np.full((len(q), pad), -np.inf, dtype=np.float32)])
        return ids, scores

    def _stored_vectors(self, flat_index: faiss.Index) -> np.ndarray:
        """A zero-copy (n, d_stored) view of the raw vectors of a flat (storage) index."""
        if self._stored is not None:
            return self._stored
        has_xb = hasattr(flat_index, "get_xb")
        storage = flat_index if has_xb else faiss.downcast_index(flat_index)
        flat = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * storage.d)  # type: ignore[attr-defined]  # an IndexFlat, typed as the base Index
        self._stored = flat.reshape(storage.ntotal, storage.d)
        return self._stored

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write ``path`` (faiss format) and ``path.json`` (kind, metric, params, n, d)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(path))
        meta = {
            "version": _SIDECAR_VERSION,
            "kind": self.kind,
            "metric": self.metric,
            "params": self.params,
            "n": self.n,
            "d": self.d,
        }
        _sidecar(path).write_text(json.dumps(meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> VectorIndex:
        """Read an index written by :meth:`save`; checks the sidecar against the index."""
        path = Path(path)
        try:
            meta = json.loads(_sidecar(path).read_text())
            index = faiss.read_index(str(path))
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load vector index from {path}: {exc}") from exc
        if meta.get("version") != _SIDECAR_VERSION or meta.get("kind") not in KINDS[1:]:
            raise ModelError(f"{_sidecar(path)}: unsupported sidecar {meta!r}")
        n, d = int(meta["n"]), int(meta["d"])
        expect_d = d + 1 if meta["params"].get("max_norm") else d
        if index.ntotal != n or index.d != expect_d:
            raise ModelError(
                f"{path}: index holds {index.ntotal} x {index.d}, sidecar says {n} x {d}"
            )
        return cls(index, kind=meta["kind"], metric=meta["metric"], params=meta["params"], n=n, d=d)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"VectorIndex(kind={self.kind!r}, metric={self.metric!r}, n={self.n}, d={self.d})"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")
