"""The values that flow through the recommendation pipeline.

A request (:class:`Context`, :class:`Constraints`) goes in; :class:`Candidates` move from
recall through filtering and ranking; :class:`Reason` and :class:`RankedItem` come out.
Item references inside the pipeline are catalog indices (int64, the bundle's item order);
ids appear only at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

DEVICES = ("web", "mobile", "tablet", "tv")


@dataclass(frozen=True)
class Context:
    """Where and when the request is made: device, request time, the viewer's country."""

    device: str | None = None  # one of DEVICES, or None when unknown
    timestamp: datetime | None = None  # request time (UTC); hour and weekday come from it
    country: str | None = None  # as in the catalog's ``country`` lists, e.g. "India"


@dataclass(frozen=True)
class Constraints:
    """Knowledge-based constraints: what may be shown at all (from request and profile).

    Empty tuples and ``None`` mean "no constraint". ``max_min_age`` is parental control:
    only items whose minimum viewer age is known and at most this value pass.
    ``languages`` / ``countries`` / ``genres`` pass an item sharing at least one value;
    ``types`` holds "movie" and/or "series"; the ranges are inclusive.
    """

    max_min_age: int | None = None
    languages: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    max_seasons: int | None = None
    max_episodes: int | None = None
    max_duration_min: float | None = None
    # Set by :meth:`merge` when two value lists share nothing: then no item is allowed
    # (an empty tuple would mean "no constraint" and let everything through).
    impossible: bool = False

    def is_empty(self) -> bool:
        return not self.impossible and all(
            getattr(self, f.name) in (None, ()) for f in fields(self) if f.name != "impossible"
        )

    def merge(self, other: Constraints) -> Constraints:
        """The stricter of two constraint sets (e.g. the request's and the profile's).

        Upper bounds take the minimum, lower bounds the maximum; value lists intersect
        when both are set (which may leave nothing allowed — that is the honest answer).
        """
        # Field by field through dataclasses.fields: each value has its own field's type.
        updates: dict[str, Any] = {"impossible": self.impossible or other.impossible}
        for f in fields(self):
            if f.name == "impossible":
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine in (None, ()):
                updates[f.name] = theirs
            elif theirs in (None, ()):
                updates[f.name] = mine
            elif isinstance(mine, tuple):
                keys = {str(v).strip().casefold() for v in theirs}
                common = tuple(v for v in mine if str(v).strip().casefold() in keys)
                updates[f.name] = common
                if not common:
                    updates["impossible"] = True
            elif f.name == "year_min":
                updates[f.name] = max(mine, theirs)
            else:
                updates[f.name] = min(mine, theirs)
        return replace(self, **updates)


@dataclass
class Candidates:
    """Candidate items with the evidence of the recall sources that produced them.

    ``items``: int64 (n,) catalog indices, unique. ``source_ranks``: float32 (n, S), the
    1-based rank each source gave the item, 0 where the source did not produce it;
    ``source_scores``: float32 (n, S), that source's raw score (NaN where absent).
    ``anchors``: int64 (n,), for item-to-item sources, the history item that led to the
    candidate (-1 when none) — evidence for explanations.
    """

    items: np.ndarray
    source_names: tuple[str, ...]
    source_ranks: np.ndarray
    source_scores: np.ndarray
    anchors: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if len(self.anchors) != len(self.items):
            self.anchors = np.full(len(self.items), -1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, rows: np.ndarray) -> Candidates:
        """The candidates at ``rows`` (a boolean mask or integer positions), same sources."""
        return Candidates(
            self.items[rows],
            self.source_names,
            self.source_ranks[rows],
            self.source_scores[rows],
            self.anchors[rows],
        )

    def sources_of(self, row: int) -> list[str]:
        """Names of the sources that produced the candidate at ``row``, best rank first."""
        ranks = self.source_ranks[row]
        hits = np.flatnonzero(ranks > 0)
        return [self.source_names[s] for s in hits[np.argsort(ranks[hits], kind="stable")]]


@dataclass(frozen=True)
class Reason:
    """Why an item is recommended: a machine code, a sentence, and the evidence item."""

    code: str  # e.g. "because_you_watched", "popular_in_region", "editors_pick"
    text: str
    item_idx: int = -1  # the history item (or anchor) the reason names; -1 when none


@dataclass(frozen=True)
class RankedItem:
    """One entry of a recommendation list (item as a catalog index)."""

    item_idx: int
    score: float
    rank: int  # 1-based
    reason: Reason
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Preferences:
    """Stated tastes (soft): boost matching items; hard limits belong in Constraints."""

    genres: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecentEvent:
    """An event newer than the bundle (from the online state): item, time, confidence, skip."""

    item_id: str
    timestamp: float  # epoch seconds
    weight: float = 1.0  # implicit confidence (cinerec.data.signals)
    skip: bool = False


@dataclass(frozen=True)
class Request:
    """A recommendation request; ids, not indices. ``recent_items``: oldest first."""

    user_id: str | None = None
    k: int = 10
    context: Context = field(default_factory=Context)
    constraints: Constraints = field(default_factory=Constraints)
    preferences: Preferences = field(default_factory=Preferences)
    recent_items: tuple[str, ...] = ()
    skipped_items: tuple[str, ...] = ()
    exclude_items: tuple[str, ...] = ()
    recent_events: tuple[RecentEvent, ...] = ()  # timed events (the online state's)
    live_trending: tuple[tuple[str, float], ...] = ()  # (item_id, count) of the last 24 h
    # The operator's editor picks (the API's, stored beside its event log); None: the
    # bundle config's own picks.
    editor_picks: tuple[str, ...] | None = None


@dataclass
class Recommendations:
    """The answer: ranked items with scores and reasons, and what produced them."""

    user_id: str | None
    items: list[RankedItem]
    item_ids: list[str]
    model_version: str
    config_hash: str
    n_candidates: int
    per_source: dict[str, int]
    timings_ms: dict[str, float]

    def to_frame(self, titles: pd.Series | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "rank": [r.rank for r in self.items],
                "item_id": self.item_ids,
                "score": [r.score for r in self.items],
                "reason": [r.reason.text for r in self.items],
                "sources": [",".join(r.sources) for r in self.items],
            }
        )
        if titles is not None:
            frame.insert(2, "title", frame["item_id"].map(titles))
        return frame
