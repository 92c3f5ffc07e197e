"""What the pipeline knows about one user at request time.

:class:`HistoryStore` holds every user's training events (item, time, confidence) in time
order — saved in the bundle so that offline evaluation, batch scoring and the online API
start from the same histories. :class:`UserHistory` is one user's view for one request:
the stored events plus whatever happened since (request-time events, skips), which is how
a click seconds ago reaches the sequence model and the "seen" filter without a refit.
:class:`UserLimits` holds each user's stored hard limits (the parental limit), which every
request for that user obeys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from cinerec.data.matrix import IdIndex
from cinerec.errors import DataError, IntegrityError
from cinerec.pipeline.types import Constraints


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


class UserLimits:
    """Each user's stored hard limits — today the parental limit, the users table's
    ``max_age_rating`` (an age) — applied to every request for that user.

    Keyed by user id, not by the bundle's user index: a child profile that has no events
    yet (absent from the models) is limited too. Saved in the bundle beside the histories,
    so the API, its worker processes and batch scoring all read the same limits.
    """

    def __init__(self, user_ids: np.ndarray, max_min_age: np.ndarray) -> None:
        self.users = IdIndex(np.asarray(user_ids, dtype=object))
        self.max_min_age = np.asarray(max_min_age, np.int16)
        if len(self.users) != len(self.max_min_age):
            raise IntegrityError("user limits: ids and ages differ in length")

    @classmethod
    def from_users(cls, users: pd.DataFrame) -> UserLimits:
        """From a users table (:data:`~cinerec.data.schemas.USERS_SCHEMA`); users without a
        ``max_age_rating`` have no limit and are not kept."""
        if "max_age_rating" not in users.columns or users.empty:
            return cls(np.zeros(0, dtype=object), np.zeros(0, np.int16))
        column = pd.to_numeric(users["max_age_rating"], errors="coerce")
        keep = column.notna().to_numpy()
        ages = column[keep].to_numpy(np.float64)
        bad = (ages < 0) | (ages > 100) | (ages != np.round(ages))
        if bad.any():
            raise DataError(
                f"max_age_rating must be a whole age from 0 to 100, got {ages[bad][0]:g}",
                file="users",
            )
        ids = users["user_id"].astype(str).to_numpy(dtype=object)[keep]
        if len(set(ids)) != len(ids):
            raise DataError("users table: duplicate user_id with a max_age_rating", file="users")
        return cls(ids, ages.astype(np.int16))

    def __len__(self) -> int:
        return len(self.users)

    def constraints(self, user_id: str | None) -> Constraints:
        """The user's stored limits as constraints (empty for an unknown or unlimited user)."""
        if user_id is None or not len(self.users):
            return Constraints()
        row = int(self.users.lookup([user_id])[0])
        if row < 0:
            return Constraints()
        return Constraints(max_min_age=int(self.max_min_age[row]))

    def save(self, path: str | Path) -> None:
        table = pa.table(
            {
                "user_id": pa.array(self.users.ids, pa.string()),
                "max_min_age": pa.array(self.max_min_age, pa.int16()),
            }
        )
        pq.write_table(table, path)

    @classmethod
    def load(cls, path: str | Path) -> UserLimits:
        try:
            table = pq.read_table(path)
            ids = table["user_id"].to_numpy(zero_copy_only=False).astype(object)
            return cls(ids, np.asarray(table["max_min_age"].to_numpy()))
        except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
            raise IntegrityError(f"cannot read user limits from {path}: {exc}") from exc
