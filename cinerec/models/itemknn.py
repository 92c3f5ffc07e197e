"""Item-based k-nearest-neighbours collaborative filtering with shrunk cosine similarity."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.base import Model, register
from cinerec.models.space import SearchSpace


def spread_rows(
    similarity: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored entries of ``similarity``'s ``rows``, each scaled by its row's weight:
    (columns, values, position in ``rows``) — a few thousand entries for one user's
    history, where a sparse product or a dense (rows x catalog) array costs far more.
    ``np.bincount(columns, values)`` is then ``weights @ similarity[rows]``."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, stops = similarity.indptr[rows], similarity.indptr[rows + 1]
    lengths = stops - starts
    take = np.repeat(stops - np.cumsum(lengths), lengths) + np.arange(lengths.sum())
    which = np.repeat(np.arange(len(rows)), lengths)
    values = similarity.data[take] * np.asarray(weights, dtype=np.float32)[which]
    return similarity.indices[take], values, which


@register
class ItemKNN(Model):
    """Recommend items similar to what the user already engaged with.

    Similarity is cosine on the item columns of the user-item matrix (binarised, or the
    implicit confidence with ``binarize=False``), shrunk towards 0 for items with little
    co-occurrence support::

        sim(i, j) = x_i · x_j / (‖x_i‖ ‖x_j‖ + shrink)

    Each item keeps only its ``neighbors`` most similar items, so the model is a sparse
    item x item matrix ``S`` (row i: the neighbours of i) and a user's scores are their
    history row times ``S``. Everything stays sparse: the similarity is computed in blocks
    of item rows sized so that one block's product holds about :attr:`block_nnz` entries,
    which bounds memory for catalogs of tens of thousands of items.
    """

    name = "itemknn"
    relates_items = True
    #: Upper bound on the stored entries of one block of the item-item product.
    block_nnz: ClassVar[int] = 5_000_000

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        neighbors, shrink = self.params["neighbors"], self.params["shrink"]
        if not isinstance(neighbors, int) or isinstance(neighbors, bool) or neighbors < 1:
            raise ModelError(f"itemknn: neighbors must be a positive int, got {neighbors!r}")
        if not isinstance(shrink, int | float) or shrink < 0:
            raise ModelError(f"itemknn: shrink must be >= 0, got {shrink!r}")
        self.similarity: sp.csr_matrix | None = None
        self._similarity_csc: sp.csc_matrix | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"neighbors": 100, "shrink": 10.0, "binarize": True}

    @classmethod
    def search_space(cls) -> SearchSpace:
        return {"neighbors": [20, 50, 100, 200], "shrink": [0, 10, 50, 100]}

    def _fit(self, data: InteractionMatrix) -> None:
        X = self._weights(data.matrix)
        self._set_similarity(
            item_similarity(
                X,
                neighbors=int(self.params["neighbors"]),
                shrink=float(self.params["shrink"]),
                block_nnz=self.block_nnz,
            )
        )

    def _weights(self, matrix: sp.spmatrix) -> sp.csr_matrix:
        X = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        X.eliminate_zeros()
        if self.params["binarize"]:
            X.data[:] = 1.0
        return X

    def _set_similarity(self, similarity: sp.csr_matrix) -> None:
        self.similarity = similarity
        self._similarity_csc = None

    def score(
        self,
        user_idx: np.ndarray,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        history = self._weights(self.history(user_idx, user_items))
        S = self._fitted()
        if items is None and history.shape[0] == 1:  # one request: spread the few rows
            columns, values, _ = spread_rows(S, history.indices, history.data)
            row = np.bincount(columns, weights=values, minlength=S.shape[1])
            return row.astype(np.float32)[None, :]
        if items is not None:
            if self._similarity_csc is None:  # column slicing is cheap on CSC
                self._similarity_csc = S.tocsc()
            S = self._similarity_csc[:, np.asarray(items, dtype=np.int64)]
        return np.asarray((history @ S).toarray(), dtype=np.float32)

    def _fitted(self) -> sp.csr_matrix:
        if self.similarity is None:
            raise ModelError(f"{self.name} is not fitted")
        return self.similarity

    def _item_similarity(self, item_idx: np.ndarray) -> np.ndarray:
        """The neighbour weights of ``item_idx`` (rows of the item–item similarity)."""
        return self._fitted()[item_idx].toarray()

    def _state(self) -> dict[str, np.ndarray]:
        S = self._fitted()
        return {
            "sim.data": S.data,
            "sim.indices": S.indices,
            "sim.indptr": S.indptr,
            "sim.shape": np.asarray(S.shape, dtype=np.int64),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        shape = tuple(int(x) for x in arrays["sim.shape"])
        self._set_similarity(
            sp.csr_matrix(
                (arrays["sim.data"], arrays["sim.indices"], arrays["sim.indptr"]), shape=shape
            )
        )


def item_similarity(
    X: sp.csr_matrix, neighbors: int, shrink: float, block_nnz: int = 5_000_000
) -> sp.csr_matrix:
    """Top-``neighbors`` shrunk cosine similarity between the columns of ``X``.

    Returns a CSR (n_items, n_items) float32 matrix with sorted indices; row i holds the
    (at most) ``neighbors`` items most similar to i, ties at the cut going to the lower
    item index; the diagonal and zero similarities are dropped. Computed in row blocks
    whose product has at most about ``block_nnz`` stored entries.
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    n_items = X.shape[1]
    XT = X.T.tocsr()  # items x users
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0), dtype=np.float64).ravel())

    # Upper bound on the entries of each row of XT @ X: the sum of its users' degrees.
    degree = np.diff(X.indptr).astype(np.float64)
    cost = np.minimum(XT.astype(bool).astype(np.float64) @ degree, n_items) + 1.0
    bounds = _blocks(cost, float(block_nnz))

    data: list[np.ndarray] = []
    indices: list[np.ndarray] = []
    counts = np.zeros(n_items, dtype=np.int64)
    for start, stop in bounds:
        block = (XT[start:stop] @ X).tocsr()
        block.sum_duplicates()
        rows = np.repeat(np.arange(start, stop), np.diff(block.indptr))
        cols = block.indices
        sims = block.data.astype(np.float64) / (norms[rows] * norms[cols] + shrink)
        keep = (cols != rows) & (sims > 0)
        rows, cols, sims = rows[keep], cols[keep], sims[keep]
        row_counts = np.bincount(rows - start, minlength=stop - start)
        top = _top_per_row(sims, np.concatenate([[0], np.cumsum(row_counts)]), neighbors)
        data.append(sims[top].astype(np.float32))
        indices.append(cols[top])
        counts[start:stop] = np.bincount(rows[top] - start, minlength=stop - start)

    indptr = np.concatenate([[0], np.cumsum(counts)])
    S = sp.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0, np.float32),
            np.concatenate(indices) if indices else np.zeros(0, np.int64),
            indptr,
        ),
        shape=(n_items, n_items),
    )
    S.sort_indices()
    return S


def _top_per_row(values: np.ndarray, indptr: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` largest ``values`` in each CSR row segment.

    Ties at the cut go to the earlier entries (the lower column, as indices are sorted).
    Only rows longer than ``k`` are visited, each with an O(row length) partition, which
    is far cheaper than sorting all entries of a block.
    """
    keep = np.ones(len(values), dtype=bool)
    lengths = np.diff(indptr)
    for row in np.flatnonzero(lengths > k):
        lo, hi = indptr[row], indptr[row + 1]
        segment = values[lo:hi]
        kth = np.partition(segment, len(segment) - k)[len(segment) - k]
        chosen = segment > kth
        tied = np.flatnonzero(segment == kth)[: k - int(chosen.sum())]
        chosen[tied] = True
        keep[lo:hi] = chosen
    return keep


def _blocks(cost: np.ndarray, budget: float) -> list[tuple[int, int]]:
    """Split 0..len(cost) into consecutive ranges whose summed cost stays under budget."""
    bounds: list[tuple[int, int]] = []
    start, total = 0, 0.0
    for i, c in enumerate(cost):
        if i > start and total + c > budget:
            bounds.append((start, i))
            start, total = i, 0.0
        total += c
    if start < len(cost):
        bounds.append((start, len(cost)))
    return bounds
