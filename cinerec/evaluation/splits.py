"""Train/test splits of an interactions table.

Every split is a partition of the input rows: each row lands in exactly one of ``train``
and ``test`` and both parts keep the original index and row order, so a row can always be
traced back. Splits never filter users or items — cold users and items in the test part
are the evaluator's business (it counts them).

Specs understood by :func:`make_split` (the CLI's ``--split``):

* ``temporal:0.2`` — global time cut, the latest ~20% of rows are the test part;
  ``temporal:2024-01-01`` cuts at a date instead;
* ``leave-last:1`` / ``leave-last:10`` — each user's last n rows by time;
* ``random:0.25`` — ~25% of each user's rows, at random (seeded);
* ``random-item:0.25`` — ~25% of each item's rows, at random (seeded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from cinerec.errors import CinerecError, DataError


class SplitError(CinerecError, ValueError):
    """A split was asked for with an unknown spec or out-of-range parameters."""


@dataclass
class Split:
    """A train/test partition of interaction rows.

    Attributes:
        train, test: the two parts, original index and column set kept.
        name: the spec that produced it, e.g. ``"leave-last:1"``.
        params: the parameters used (JSON-serialisable), e.g. ``{"n": 1, "min_train": 1}``.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        """Row and user counts of both parts, and how many test users train never saw."""
        train_users = set(self.train["user_id"].astype(str))
        test_users = set(self.test["user_id"].astype(str))
        return {
            "train_rows": len(self.train),
            "test_rows": len(self.test),
            "train_users": len(train_users),
            "test_users": len(test_users),
            "cold_test_users": len(test_users - train_users),
        }


def _require(df: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"interactions lack column(s) {missing}", field=missing[0])


def _check_fraction(fraction: float) -> float:
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise SplitError(f"test fraction must be in (0, 1), got {fraction}")
    return fraction


def _partition(df: pd.DataFrame, is_test: np.ndarray, name: str, params: dict) -> Split:
    is_test = np.asarray(is_test, dtype=bool)
    return Split(train=df[~is_test], test=df[is_test], name=name, params=params)


def temporal_global(
    df: pd.DataFrame,
    test_fraction: float | None = 0.2,
    cut: pd.Timestamp | str | None = None,
) -> Split:
    """Split at one moment in time: rows at or after the cut are the test part.

    With ``cut`` given it is used as is (a naive timestamp is taken as UTC). Otherwise the
    cut is the timestamp of the row that starts the latest ``test_fraction`` of rows in
    time order; rows tied with it go to test as well, so every test row is at least as
    late as every train row and the test part may be slightly larger than asked.
    """
    _require(df, ("timestamp",))
    ts = df["timestamp"]
    if cut is not None:
        cut_ts = pd.Timestamp(cut)
        if pd.api.types.is_datetime64_any_dtype(ts):
            tz = getattr(ts.dt, "tz", None)
            if tz is not None and cut_ts.tzinfo is None:
                cut_ts = cut_ts.tz_localize("UTC")
            elif tz is None and cut_ts.tzinfo is not None:
                cut_ts = cut_ts.tz_convert("UTC").tz_localize(None)
        is_test = (ts >= cut_ts).to_numpy(dtype=bool)
        return _partition(df, is_test, f"temporal:{cut_ts.isoformat()}", {"cut": str(cut_ts)})
    fraction = _check_fraction(test_fraction if test_fraction is not None else 0.2)
    n = len(df)
    n_test = round(fraction * n)
    if n_test == 0:
        is_test = np.zeros(n, dtype=bool)
        cut_value = None
    else:
        ordered = ts.sort_values(kind="stable")
        cut_value = ordered.iloc[n - n_test]
        is_test = (ts >= cut_value).to_numpy(dtype=bool)
    params = {"test_fraction": fraction, "cut": None if cut_value is None else str(cut_value)}
    return _partition(df, is_test, f"temporal:{fraction:g}", params)


def leave_last_n(df: pd.DataFrame, n: int = 1, min_train: int = 1) -> Split:
    """Each user's last ``n`` rows by time go to test.

    A user keeps at least ``min_train`` rows in train: with fewer than ``n + min_train``
    rows only the excess over ``min_train`` goes to test (none at all when the user has at
    most ``min_train`` rows). Rows with equal timestamps keep their input order, the later
    row counting as later.
    """
    _require(df, ("user_id", "timestamp"))
    if n < 1 or min_train < 0:
        raise SplitError(f"leave-last needs n >= 1 and min_train >= 0, got {n}, {min_train}")
    if df.empty:
        return _partition(df, np.zeros(0, bool), f"leave-last:{n}", {"n": n, "min_train": 0})
    users = pd.factorize(df["user_id"])[0]
    order = np.argsort(_sortable_time(df["timestamp"]), kind="stable")
    by_user = pd.Series(users[order])
    from_end = by_user.groupby(by_user.to_numpy()).cumcount(ascending=False).to_numpy()
    counts = np.bincount(users)[users[order]]
    n_test = np.minimum(n, np.maximum(counts - min_train, 0))
    is_test = np.zeros(len(df), dtype=bool)
    is_test[order] = from_end < n_test
    return _partition(df, is_test, f"leave-last:{n}", {"n": n, "min_train": min_train})


def random_split(
    df: pd.DataFrame,
    test_fraction: float = 0.25,
    by: Literal["user", "item"] = "user",
    seed: int = 0,
    min_train: int = 1,
) -> Split:
    """Stratified random split: each user (or item) puts ~``test_fraction`` of its rows in test.

    A group of c rows sends ``floor(test_fraction * c + 0.5)`` of them to test, at most
    ``c - min_train`` so that it keeps ``min_train`` rows in train. Which rows is decided by
    a seeded random permutation, so the same frame and seed always give the same split.
    """
    if by not in ("user", "item"):
        raise SplitError(f"random split is by 'user' or 'item', got {by!r}")
    column = f"{by}_id"
    _require(df, (column,))
    fraction = _check_fraction(test_fraction)
    params = {"test_fraction": fraction, "by": by, "seed": seed, "min_train": min_train}
    name = f"random:{fraction:g}" if by == "user" else f"random-item:{fraction:g}"
    if df.empty:
        return _partition(df, np.zeros(0, bool), name, params)
    groups = pd.factorize(df[column])[0]
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(df)), groups))
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    position = np.arange(len(order)) - np.repeat(starts, sizes)
    n_test = np.floor(fraction * sizes + 0.5).astype(np.int64)
    n_test = np.minimum(n_test, np.maximum(sizes - min_train, 0))
    is_test = np.zeros(len(df), dtype=bool)
    is_test[order] = position < np.repeat(n_test, sizes)
    return _partition(df, is_test, name, params)


_METHODS = {
    "leave_last_n": "leave_last_n",
    "leave-last": "leave_last_n",
    "temporal": "temporal",
    "random": "random",
}


def validation_carve(
    train_df: pd.DataFrame,
    method: Literal["leave_last_n", "temporal", "random"] = "leave_last_n",
    **kw: Any,
) -> Split:
    """Split a training part again, for hyperparameter search.

    ``method`` picks :func:`leave_last_n`, :func:`temporal_global` or :func:`random_split`
    and ``kw`` goes to it. The result's ``train`` is what candidates fit on and its
    ``test`` the validation rows; its name is prefixed with ``"validation/"``.
    """
    chosen = _METHODS.get(method)
    if chosen is None:
        raise SplitError(f"unknown validation method {method!r} (known: {sorted(_METHODS)})")
    if chosen == "leave_last_n":
        split = leave_last_n(train_df, **kw)
    elif chosen == "temporal":
        split = temporal_global(train_df, **kw)
    else:
        split = random_split(train_df, **kw)
    split.name = f"validation/{split.name}"
    return split


def make_split(spec: str, df: pd.DataFrame, seed: int = 0) -> Split:
    """Build a split from a spec such as ``"temporal:0.2"`` or ``"leave-last:10"``.

    See the module docstring for the forms understood. The argument after the colon may be
    omitted to take the default (0.2, 1, 0.25). Raises :class:`SplitError` on a bad spec,
    and on a split of some rows with an empty part: nothing could be trained or measured
    on it, and saying so here names the cause (too few interactions a user, a cut outside
    the data) where a later step could only report its effect.
    """
    split = _make_split(spec, df, seed)
    if len(df) and (split.test.empty or split.train.empty):
        part = "test" if split.test.empty else "training"
        hint = _EMPTY_HINTS.get(spec.strip().partition(":")[0].strip().lower(), "")
        raise SplitError(
            f"split {spec!r} leaves the {part} part of {len(df):,} interactions empty{hint}"
        )
    return split


#: Why a split may leave a part empty, by spec kind.
_EMPTY_HINTS = {
    "leave-last": " (no user has more than one interaction)",
    "temporal": " (the cut is outside the interactions' time range)",
    "random": " (too few interactions per user for the fraction)",
    "random-item": " (too few interactions per item for the fraction)",
}


def _make_split(spec: str, df: pd.DataFrame, seed: int) -> Split:
    kind, _, arg = spec.strip().partition(":")
    kind = kind.strip().lower()
    arg = arg.strip()
    try:
        if kind == "temporal":
            if not arg:
                return temporal_global(df, 0.2)
            try:
                fraction = float(arg)
            except ValueError:
                return temporal_global(df, cut=pd.Timestamp(arg))
            return temporal_global(df, fraction)
        if kind in ("leave-last", "leave_last", "leave-last-n"):
            n = int(arg) if arg else 1
            return leave_last_n(df, n=n)
        if kind in ("random", "random-user", "random-item"):
            fraction = float(arg) if arg else 0.25
            by: Literal["user", "item"] = "item" if kind == "random-item" else "user"
            return random_split(df, fraction, by=by, seed=seed)
    except ValueError as exc:
        if isinstance(exc, SplitError):
            raise
        raise SplitError(f"bad split spec {spec!r}: {exc}") from exc
    raise SplitError(
        f"unknown split spec {spec!r} (use temporal:F, leave-last:N, random:F, random-item:F)"
    )


def _sortable_time(ts: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(ts):
        ts = ts.dt.tz_convert("UTC") if ts.dt.tz is not None else ts
        return ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return ts.to_numpy()
