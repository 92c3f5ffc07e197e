"""Interactions encoded for models: dense integer indices and a sparse confidence matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.signals import implicit_confidence

#: Lookups of at most this many ids use a dict instead of a pandas indexer.
SMALL_LOOKUP = 64


@dataclass(frozen=True)
class IdIndex:
    """A bijection between external string ids and 0..n-1 row/column indices."""

    ids: np.ndarray  # (n,) object array of str

    @classmethod
    def from_ids(cls, ids: Sequence[str] | np.ndarray | pd.Series) -> IdIndex:
        unique = pd.unique(pd.Series(ids, dtype=object).astype(str))
        return cls(np.asarray(unique, dtype=object))

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, ids: Sequence[str] | np.ndarray | pd.Series) -> np.ndarray:
        """Indices of ``ids`` (int64); -1 where an id is unknown.

        A handful of ids (one request's) go through a dict; many through pandas.
        """
        if len(ids) <= SMALL_LOOKUP:
            positions = self._positions
            return np.fromiter(
                (positions.get(str(i), -1) for i in ids), dtype=np.int64, count=len(ids)
            )
        codes = self._index.get_indexer(pd.Index(ids, dtype=object).astype(str))
        return np.asarray(codes, dtype=np.int64)

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.ids)

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {str(i): n for n, i in enumerate(self.ids)}


@dataclass
class InteractionMatrix:
    """The training view of interactions that every model consumes.

    Attributes:
        users, items: id indices; the item index is the whole catalog the model may
            recommend (items without interactions included).
        matrix: (n_users, n_items) CSR float32 of implicit confidence, duplicates reduced
            by max; only positive events (skips are 0 and dropped).
        events: one row per positive interaction with ``user_idx``, ``item_idx``,
            ``confidence``, ``value`` and ``timestamp`` (int64 seconds), in time order, for
            models that need time (trending, sequences).
        skips: (n_users, n_items) CSR float32, 1 where the user skipped the item — the
            negative signal content profiles subtract.
        catalog: the item table in item-index order (row i describes item i; items the
            table lacks are rows with only ``item_id`` set), or None when no table was given.
            Content models read their features from it.
    """

    users: IdIndex
    items: IdIndex
    matrix: sp.csr_matrix
    events: pd.DataFrame
    skips: sp.csr_matrix | None = None
    catalog: pd.DataFrame | None = None

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @classmethod
    def build(
        cls,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: IdIndex | None = None,
        item_index: IdIndex | None = None,
    ) -> InteractionMatrix:
        """Encode ``interactions``.

        ``item_index`` fixes the item universe (default: the catalog ``items`` if given,
        else the items seen in ``interactions``); ``users`` fixes the user universe.
        Interactions naming users or items outside fixed universes are dropped.
        """
        if item_index is None:
            source = items["item_id"] if items is not None else interactions["item_id"]
            item_index = IdIndex.from_ids(source)
        if users is None:
            users = IdIndex.from_ids(interactions["user_id"])
        conf = implicit_confidence(interactions, items)
        user_idx = users.lookup(interactions["user_id"])
        item_idx = item_index.lookup(interactions["item_id"])
        known = (user_idx >= 0) & (item_idx >= 0)
        keep = known & (conf > 0)
        skipped = known & (interactions["event"].astype(str).to_numpy() == "skip")
        ts = interactions["timestamp"]
        seconds = epoch_seconds(ts)
        events = pd.DataFrame(
            {
                "user_idx": user_idx[keep],
                "item_idx": item_idx[keep],
                "confidence": conf[keep],
                "value": interactions["value"].to_numpy(np.float32, na_value=1.0)[keep],
                "timestamp": seconds[keep],
            }
        ).sort_values(["timestamp", "user_idx"], kind="stable", ignore_index=True)
        matrix = _max_csr(events, len(users), len(item_index))
        skips = sp.csr_matrix(
            (np.ones(int(skipped.sum()), np.float32), (user_idx[skipped], item_idx[skipped])),
            shape=(len(users), len(item_index)),
        )
        skips.data[:] = 1.0
        catalog = None
        if items is not None:
            catalog = (
                items.drop_duplicates("item_id")
                .set_index(items["item_id"].drop_duplicates().astype(str).to_numpy())
                .reindex(item_index.ids)
                .assign(item_id=item_index.ids)
                .reset_index(drop=True)
            )
        return cls(
            users=users,
            items=item_index,
            matrix=matrix,
            events=events,
            skips=skips,
            catalog=catalog,
        )

    def encode_like(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None):
        """Encode other interactions (a test part) with this matrix's id indices."""
        return InteractionMatrix.build(
            interactions, items=items, users=self.users, item_index=self.items
        )

    def item_popularity(self) -> np.ndarray:
        """Number of distinct users per item, (n_items,) float64."""
        return np.asarray((self.matrix > 0).sum(axis=0)).ravel().astype(np.float64)


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """UTC timestamps (datetime or integer seconds) as int64 seconds since the epoch."""
    if pd.api.types.is_datetime64_any_dtype(ts):
        ts = ts.dt.tz_convert("UTC") if ts.dt.tz is not None else ts.dt.tz_localize("UTC")
        return ts.astype("datetime64[s, UTC]").astype("int64").to_numpy()
    return ts.to_numpy(dtype=np.int64)


def _max_csr(events: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    if events.empty:
        return sp.csr_matrix((n_users, n_items), dtype=np.float32)
    reduced = events.groupby(["user_idx", "item_idx"], sort=True)["confidence"].max()
    rows = reduced.index.get_level_values(0).to_numpy()
    cols = reduced.index.get_level_values(1).to_numpy()
    matrix = sp.csr_matrix(
        (reduced.to_numpy(np.float32), (rows, cols)), shape=(n_users, n_items), dtype=np.float32
    )
    matrix.sort_indices()
    return matrix
