"""Derived signals: implicit confidence per interaction and sessions from inactivity gaps."""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

#: Confidence of events that carry no value of their own (a skip is a negative signal and
#: gets zero: it never enters the positive interaction matrix).
EVENT_CONFIDENCE: Final = {"like": 1.0, "view": 0.3, "click": 0.2, "skip": 0.0}
#: Confidence of a watch event whose item length is unknown.
UNKNOWN_WATCH_CONFIDENCE: Final = 0.5
MIN_POSITIVE_CONFIDENCE: Final = 0.05
DEFAULT_SESSION_GAP: Final = pd.Timedelta(minutes=30)


def implicit_confidence(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    rating_scale: float = 5.0,
) -> np.ndarray:
    """Confidence in [0, 1] that each interaction expresses interest.

    * ``rating``: value / rating_scale (a 1-star rating is still weak evidence of interest
      in the sense of implicit feedback — the user chose to watch it);
    * ``watch``: the fraction of the item watched (watch_seconds over its duration), or
      :data:`UNKNOWN_WATCH_CONFIDENCE` when the length is unknown;
    * ``like`` / ``view`` / ``click`` / ``skip``: :data:`EVENT_CONFIDENCE`.

    Positive events never fall below :data:`MIN_POSITIVE_CONFIDENCE`; skips are 0.
    """
    n = len(interactions)
    event = interactions["event"].astype(str).to_numpy() if n else np.array([], dtype=str)
    value = interactions["value"].to_numpy(dtype=np.float64, na_value=1.0)
    conf = np.full(n, 0.2, dtype=np.float64)
    for name, weight in EVENT_CONFIDENCE.items():
        conf[event == name] = weight

    is_rating = event == "rating"
    conf[is_rating] = np.clip(value[is_rating] / rating_scale, 0.0, 1.0)

    is_watch = event == "watch"
    if is_watch.any():
        conf[is_watch] = _watch_fraction(interactions.loc[is_watch], items)

    positive = event != "skip"
    conf[positive] = np.maximum(conf[positive], MIN_POSITIVE_CONFIDENCE)
    return conf.astype(np.float32)


def _watch_fraction(watches: pd.DataFrame, items: pd.DataFrame | None) -> np.ndarray:
    seconds = watches["watch_seconds"].to_numpy(dtype=np.float64, na_value=np.nan)
    fraction = np.full(len(watches), UNKNOWN_WATCH_CONFIDENCE)
    if items is None or "duration_min" not in items.columns:
        return fraction
    duration = (
        watches["item_id"]
        .map(items.set_index("item_id")["duration_min"])
        .to_numpy(dtype=np.float64, na_value=np.nan)
    )
    known = np.isfinite(seconds) & np.isfinite(duration) & (duration > 0)
    fraction[known] = np.clip(seconds[known] / (duration[known] * 60.0), 0.0, 1.0)
    return fraction


def derive_sessions(
    interactions: pd.DataFrame, gap: pd.Timedelta = DEFAULT_SESSION_GAP
) -> pd.Series:
    """Session ids per row: a user's new session starts after ``gap`` of inactivity.

    Rows that already carry a ``session_id`` keep it. Ids look like ``"<user>:<n>"`` with n
    counting the user's sessions from 0 in time order. The result is aligned to the input index.
    """
    if interactions.empty:
        return pd.Series([], dtype="string", index=interactions.index)
    ordered = interactions.sort_values(["user_id", "timestamp"], kind="stable")
    new_user = ordered["user_id"].ne(ordered["user_id"].shift())
    new_gap = ordered["timestamp"].diff() > gap
    session_no = (new_user | new_gap).astype(np.int64).groupby(ordered["user_id"]).cumsum() - 1
    derived = ordered["user_id"].astype(str) + ":" + session_no.astype(str)
    derived = derived.reindex(interactions.index)
    if "session_id" in interactions.columns:
        given = interactions["session_id"]
        derived = given.where(given.notna() & (given.astype(str) != ""), derived)
    return derived.astype("string")
