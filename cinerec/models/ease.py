"""EASE: a closed-form linear item-item autoencoder (Steck, WWW 2019)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.base import Model, register
from cinerec.models.space import SearchSpace

_GRAM_BLOCK = 1024


@register
class EASE(Model):
    """Embarrassingly Shallow Autoencoder: a dense item-item weight matrix in closed form.

    Learns ``B`` minimising ‖X − XB‖² + λ‖B‖² subject to diag(B) = 0, whose solution is
    ``B = I − P·diag(1/diag(P))`` with ``P = (XᵀX + λI)⁻¹`` (``lam`` is λ; computed
    through the users x users system when there are fewer users than items); a user's
    scores are their history row times ``B``. It is a strong, cheap baseline on dense
    interaction data, with one hyperparameter.

    ``X`` is the binarised interaction matrix by default (``binarize=False`` uses the
    implicit confidence). Only items with training interactions take part: the others
    would get an all-zero column of ``B`` anyway, so they are left out of the inverse and
    score exactly 0.

    Memory: ``B`` is dense, n² entries for the n items with interactions; fitting peaks at
    about 12·n² bytes (the float64 inverse plus the float32 result; 40,000 items ≈ 19 GB).
    Fitting raises :class:`~cinerec.errors.ModelError` above ``max_items`` items
    (default 40,000) rather than exhausting memory — use ``itemknn`` for larger catalogs.
    """

    name = "ease"
    relates_items = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        lam, max_items = self.params["lam"], self.params["max_items"]
        if not isinstance(lam, int | float) or not lam > 0:
            raise ModelError(f"ease: lam must be > 0, got {lam!r}")
        if not isinstance(max_items, int) or max_items < 1:
            raise ModelError(f"ease: max_items must be a positive int, got {max_items!r}")
        self.weights: np.ndarray | None = None  # (n_active, n_active) float32
        self.active: np.ndarray | None = None  # (n_active,) int64 item indices
        self._positions: tuple[np.ndarray, np.ndarray] | None = None  # (active, position)

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"lam": 500.0, "binarize": True, "max_items": 40_000}

    @classmethod
    def search_space(cls) -> SearchSpace:
        return {"lam": [10, 50, 100, 250, 500, 1000, 2500, 5000]}

    def _fit(self, data: InteractionMatrix) -> None:
        X = self._weights(data.matrix)
        active = np.flatnonzero(np.bincount(X.indices, minlength=X.shape[1])).astype(np.int64)
        n = len(active)
        if n > self.params["max_items"]:
            raise ModelError(
                f"ease: {n} items with interactions exceed max_items="
                f"{self.params['max_items']}; the dense item x item fit needs about "
                f"{12 * n * n / 1e9:.1f} GB. Raise max_items if memory allows, or use itemknn."
            )
        X = X[:, active].astype(np.float64)
        lam = float(self.params["lam"])
        # The inverse is the whole cost: let BLAS use every core here even where the
        # process keeps it single-threaded (OPENBLAS_NUM_THREADS=1 for implicit).
        with threadpool_limits(limits=os.cpu_count() or 1, user_api="blas"):
            if X.shape[0] < n:  # fewer users than items: invert users x users instead
                P = _inverse_through_users(X, lam)
            else:
                P = _gram(X)
                P[np.diag_indices(n)] += lam
                _invert_spd_inplace(P)
        B = P  # B[i, j] = -P[i, j] / P[j, j], diagonal 0
        B /= -np.diag(B).copy()[None, :]
        np.fill_diagonal(B, 0.0)
        self.weights = B.astype(np.float32)
        self.active = active

    def _weights(self, matrix: sp.spmatrix) -> sp.csr_matrix:
        X = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        X.eliminate_zeros()
        if self.params["binarize"]:
            X.data[:] = 1.0
        return X

    def score(
        self,
        user_idx: np.ndarray,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        history = self._weights(self.history(user_idx, user_items))
        B, active = self._fitted()
        history = self._active_columns(history)
        if items is None:
            if len(active) == self.n_items:
                return np.asarray(history @ B, dtype=np.float32)
            out = np.zeros((history.shape[0], self.n_items), dtype=np.float32)
            out[:, active] = history @ B
            return out
        items = np.asarray(items, dtype=np.int64)
        pos = self._position()[items]
        known = pos >= 0
        out = np.zeros((history.shape[0], len(items)), dtype=np.float32)
        if known.any():
            out[:, known] = history @ B[:, pos[known]]
        return out

    def _position(self) -> np.ndarray:
        """(n_items,) int64: each item's row in the weights, -1 for items never seen."""
        active = self._fitted()[1]
        cached = self._positions
        if cached is None or cached[0] is not active:
            position = np.full(self.n_items, -1, dtype=np.int64)
            position[active] = np.arange(len(active))
            cached = self._positions = (active, position)
        return cached[1]

    def _active_columns(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """``history[:, active]`` by remapping column ids (scipy's column indexing costs
        ~0.3 ms a request; the remap a few microseconds)."""
        position = self._position()
        columns = position[history.indices]
        keep = columns >= 0
        rows = np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))[keep]
        indptr = np.zeros(history.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=history.shape[0]), out=indptr[1:])
        return sp.csr_matrix(
            (history.data[keep], columns[keep], indptr),
            shape=(history.shape[0], len(self._fitted()[1])),
        )

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.weights is None or self.active is None:
            raise ModelError(f"{self.name} is not fitted")
        return self.weights, self.active

    def _item_similarity(self, item_idx: np.ndarray) -> np.ndarray:
        """EASE's item–item weights from each of ``item_idx`` (0 for items never seen)."""
        B, active = self._fitted()
        out = np.zeros((len(item_idx), self.n_items), dtype=np.float32)
        pos = self._position()[item_idx]
        known = pos >= 0
        out[np.ix_(np.flatnonzero(known), active)] = B[pos[known]]
        return out

    def _state(self) -> dict[str, np.ndarray]:
        B, active = self._fitted()
        return {"weights": B, "active": active}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights = arrays["weights"].astype(np.float32, copy=False)
        self.active = arrays["active"].astype(np.int64, copy=False)


def _gram(X: sp.csr_matrix) -> np.ndarray:
    """Dense XᵀX (float64), built in row blocks so no sparse n x n product is held."""
    n = X.shape[1]
    XT = X.T.tocsr()
    G = np.empty((n, n), dtype=np.float64)
    for start in range(0, n, _GRAM_BLOCK):
        stop = min(start + _GRAM_BLOCK, n)
        G[start:stop] = (XT[start:stop] @ X).toarray()
    return G


def _inverse_through_users(X: sp.csr_matrix, lam: float) -> np.ndarray:
    """``(XᵀX + λI)⁻¹`` by the Woodbury identity, ``(I − Xᵀ(XXᵀ + λI)⁻¹X) / λ``.

    Why: with fewer users than items (MovieLens latest-small: 610 users, 9,724 items) the
    system solved is users x users and the cost is one items x items product with inner
    dimension users — on the demo data 2.8 CPU seconds instead of 40 for the Cholesky
    inverse of the items x items Gram matrix, equal to 1e-11. Memory stays that of the
    n x n result (the dense X is smaller).
    """
    dense = X.toarray()  # users x items, float64
    K = dense @ dense.T
    K[np.diag_indices_from(K)] += lam
    solved = scipy.linalg.solve(K, dense, assume_a="pos", overwrite_a=True)  # K⁻¹X
    P = dense.T @ solved
    P *= -1.0 / lam
    P[np.diag_indices_from(P)] += 1.0 / lam
    return P


def _invert_spd_inplace(A: np.ndarray) -> None:
    """Overwrite the symmetric positive-definite C-ordered ``A`` with its inverse.

    Cholesky (``potrf`` + ``potri``) costs about half an LU inverse and works in the
    one n x n buffer; LAPACK fills one triangle, mirrored here block by block.
    """
    n = A.shape[0]
    if n == 0:
        return
    F = A.T  # Fortran-ordered view of the same (symmetric) buffer
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (F,))
    factor, info = potrf(F, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ModelError(f"ease: XᵀX + λI is not positive definite (LAPACK info {info})")
    inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelError(f"ease: inverting XᵀX + λI failed (LAPACK info {info})")
    if not np.shares_memory(inverse, A):  # LAPACK wrapper made a copy after all
        A[...] = inverse.T
    # The upper triangle of the Fortran view is the lower triangle of A: mirror it.
    for start in range(0, n, _GRAM_BLOCK):
        stop = min(start + _GRAM_BLOCK, n)
        diag = A[start:stop, start:stop]
        diag[...] = np.tril(diag) + np.tril(diag, -1).T
        A[start:stop, stop:] = A[stop:, start:stop].T
