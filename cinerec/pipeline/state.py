"""What the pipeline knows about one user at request time.

:class:`HistoryStore` holds every user's training events (item, time, confidence) in time
order — saved in the bundle so that offline evaluation, batch scoring and the online API
start from the same histories. :class:`UserHistory` is one user's view for one request:
the stored events plus whatever happened since (request-time events, skips), which is how
a click seconds ago reaches the sequence model and the "seen" filter without a refit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.errors import IntegrityError


@dataclass
class UserHistory:
    """One user's events for a request, time order (latest last).

    ``user_idx`` is the bundle's index of the user (-1: unknown to the bundle — a new
    visitor); ``items`` int64 (h,), ``times`` float64 (h,) epoch seconds, ``weights``
    float32 (h,) implicit confidence; ``skipped`` int64 items the user turned down.
    """

    user_idx: int
    items: np.ndarray
    times: np.ndarray
    weights: np.ndarray
    skipped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def empty(cls, user_idx: int = -1) -> UserHistory:
        return cls(
            user_idx,
            np.zeros(0, np.int64),
            np.zeros(0, np.float64),
            np.zeros(0, np.float32),
        )

    def __len__(self) -> int:
        return len(self.items)

    def extended(
        self, items: np.ndarray, times: np.ndarray, weights: np.ndarray, skipped: np.ndarray
    ) -> UserHistory:
        """This history plus newer events (appended in the given order) and skips."""
        return UserHistory(
            self.user_idx,
            np.concatenate([self.items, np.asarray(items, np.int64)]),
            np.concatenate([self.times, np.asarray(times, np.float64)]),
            np.concatenate([self.weights, np.asarray(weights, np.float32)]),
            np.union1d(self.skipped, np.asarray(skipped, np.int64)),
        )

    def row(self, n_items: int) -> sp.csr_matrix:
        """(1, n_items) CSR of confidences (max over repeats) — the models' ``user_items``."""
        if not len(self.items):
            return sp.csr_matrix((1, n_items), dtype=np.float32)
        order = np.lexsort((-self.weights, self.items))
        items, first = np.unique(self.items[order], return_index=True)
        data = np.maximum(self.weights[order][first], 1e-3).astype(np.float32)
        return sp.csr_matrix(
            (data, items, np.array([0, len(items)])), shape=(1, n_items), dtype=np.float32
        )

    def sequence(self) -> np.ndarray:
        """Items in time order (repeats kept), the sequence model's input."""
        return self.items


class HistoryStore:
    """Every known user's events in time order, as CSR-like arrays (indptr per user)."""

    def __init__(
        self, indptr: np.ndarray, items: np.ndarray, times: np.ndarray, weights: np.ndarray
    ) -> None:
        self.indptr = np.asarray(indptr, np.int64)
        self.items = np.asarray(items, np.int64)
        self.times = np.asarray(times, np.float64)
        self.weights = np.asarray(weights, np.float32)

    @classmethod
    def from_events(cls, events: pd.DataFrame, n_users: int) -> HistoryStore:
        """From :attr:`InteractionMatrix.events` (user_idx, item_idx, confidence, timestamp)."""
        users = events["user_idx"].to_numpy(np.int64)
        order = np.lexsort((events["timestamp"].to_numpy(np.int64), users))
        counts = np.bincount(users, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return cls(
            indptr,
            events["item_idx"].to_numpy(np.int64)[order],
            events["timestamp"].to_numpy(np.float64)[order],
            events["confidence"].to_numpy(np.float32)[order],
        )

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def get(self, user_idx: int) -> UserHistory:
        """The stored history of ``user_idx`` (empty for -1 or out of range)."""
        if not 0 <= user_idx < self.n_users:
            return UserHistory.empty(-1 if user_idx < 0 else user_idx)
        lo, hi = self.indptr[user_idx], self.indptr[user_idx + 1]
        return UserHistory(user_idx, self.items[lo:hi], self.times[lo:hi], self.weights[lo:hi])

    def save(self, path: str | Path) -> None:
        np.savez(path, indptr=self.indptr, items=self.items, times=self.times, weights=self.weights)

    @classmethod
    def load(cls, path: str | Path) -> HistoryStore:
        try:
            with np.load(path, allow_pickle=False) as npz:
                return cls(npz["indptr"], npz["items"], npz["times"], npz["weights"])
        except (OSError, KeyError, ValueError) as exc:
            raise IntegrityError(f"cannot read user histories from {path}: {exc}") from exc
