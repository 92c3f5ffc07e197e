"""Explanations: one :class:`~cinerec.pipeline.types.Reason` per recommended item.

A reason is derived from the evidence that put the item in the list — the recall sources
that produced it, the history item an item-to-item source expanded from, pins and the
viewer's history — never invented after the fact. The first rule that applies wins:

1. pinned, or produced by the "editor" source → ``editors_pick``;
2. offered because the viewer is mid-way through it → ``continue_watching``;
3. "trending" among its first two sources and the region known → ``popular_in_region``;
4. released this year or last and a similar history item exists → ``new_similar_to``;
5. a similar history item exists → ``because_you_watched``;
6. "trending" among its sources → ``trending``;
7. otherwise ``popular``.

The "similar history item" is the one most responsible for the recommendation: the anchor
when it is in the history, else the history item maximising
``similarity × 0.5^(age / recency_half_life)`` (age 0 for the latest item), ties to the
most recent; items with no positive similarity to the history have none. A named item is
therefore always in the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cinerec.pipeline.types import Reason

#: Text used when the named history item has no title.
UNKNOWN_TITLE = "a title in your history"


class ItemSimilarity(Protocol):
    """How similar items are to history items: float (m, h) for ``items`` (m,) and
    ``history`` (h,) catalog indices; larger is more similar, <= 0 is "not similar"."""

    def __call__(self, items: np.ndarray, history: np.ndarray, /) -> np.ndarray: ...


@dataclass
class ExplainContext:
    """What explanations may draw on: the viewer's history and catalog facts.

    ``history``: int64 (h,) catalog indices in time order, latest last (may be empty).
    ``titles``/``is_series``/``years``: per catalog index (title None or year -1/NaN when
    unknown). ``similarity`` is the :class:`ItemSimilarity` the reasons name history items
    by (cosine of content vectors, item-kNN weights, …); None disables the
    similarity-based reasons except through in-history anchors. ``continue_watching``
    holds the items offered because the viewer is mid-way through them.
    """

    history: np.ndarray
    titles: np.ndarray
    is_series: np.ndarray
    years: np.ndarray
    now_year: int
    region: str | None = None
    similarity: ItemSimilarity | None = None
    continue_watching: frozenset[int] = frozenset()
    # Items from the viewer's region (None: every trending item counts as regional).
    regional: frozenset[int] | None = None


def responsible_items(
    items: np.ndarray,
    anchors: np.ndarray,
    history: np.ndarray,
    similarity: ItemSimilarity | None,
    *,
    recency_half_life: float = 20,
) -> np.ndarray:
    """Int64 (m,): the history item most responsible for each item, -1 when none.

    The anchor when it is in ``history``; else the argmax over history of
    ``similarity × 0.5^(age / recency_half_life)`` (age 0 for the latest item, ties to the
    most recent) provided that is positive. ``similarity`` is called once, for the items
    without an in-history anchor. The result is always -1 or an element of ``history``.
    """
    if recency_half_life <= 0:
        raise ValueError(f"recency_half_life must be > 0, got {recency_half_life}")
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    anchors = np.asarray(anchors, dtype=np.int64).reshape(-1)
    history = np.asarray(history, dtype=np.int64).reshape(-1)
    m, h = len(items), len(history)
    if len(anchors) != m:
        raise ValueError(f"anchors has {len(anchors)} entries for {m} items")
    out = np.full(m, -1, dtype=np.int64)
    if h == 0 or m == 0:
        return out
    anchored = (anchors >= 0) & np.isin(anchors, history)
    out[anchored] = anchors[anchored]
    rest = np.flatnonzero(~anchored)
    if similarity is None or rest.size == 0:
        return out
    sims = np.asarray(similarity(items[rest], history), dtype=np.float64)
    if sims.shape != (rest.size, h):
        raise ValueError(f"similarity returned shape {sims.shape}, expected {(rest.size, h)}")
    ages = np.arange(h - 1, -1, -1, dtype=np.float64)
    decay = np.power(0.5, ages / float(recency_half_life))
    weighted = np.nan_to_num(sims, nan=0.0, posinf=0.0, neginf=0.0) * decay
    flipped = weighted[:, ::-1]  # latest first, so argmax's first maximum is the most recent
    best = np.argmax(flipped, axis=1)
    positive = flipped[np.arange(rest.size), best] > 0
    out[rest[positive]] = history[h - 1 - best[positive]]
    return out


def explain(
    items: np.ndarray,
    sources: Sequence[Sequence[str]],
    anchors: np.ndarray,
    pinned: np.ndarray,
    ctx: ExplainContext,
    *,
    recency_half_life: int = 20,
) -> list[Reason]:
    """One :class:`Reason` per item of a final list, by the precedence in the module doc.

    ``sources[i]`` names the recall sources of item i, best rank first; ``anchors[i]`` the
    history item an item-to-item source expanded from (-1 none); ``pinned[i]`` whether an
    editor pin placed it. ``Reason.item_idx`` is the named history item for
    ``because_you_watched`` / ``new_similar_to`` and -1 for every other code.
    """
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    pinned = np.asarray(pinned, dtype=bool).reshape(-1)
    anchors = np.asarray(anchors, dtype=np.int64).reshape(-1)
    m = len(items)
    if not len(sources) == len(anchors) == len(pinned) == m:
        raise ValueError(
            f"sources ({len(sources)}), anchors ({len(anchors)}) and pinned ({len(pinned)})"
            f" must match items ({m})"
        )
    history = np.asarray(ctx.history, dtype=np.int64).reshape(-1)
    has_history = len(history) > 0

    # Items decided before the similarity rules never reach them: skip their similarity.
    early: list[Reason | None] = []
    for i in range(m):
        srcs = sources[i]
        if pinned[i] or "editor" in srcs:
            early.append(Reason("editors_pick", "Editor's pick"))
        elif int(items[i]) in ctx.continue_watching:
            early.append(Reason("continue_watching", "Continue watching"))
        elif (
            ctx.region
            and "trending" in srcs[:2]
            and (ctx.regional is None or int(items[i]) in ctx.regional)
        ):
            early.append(Reason("popular_in_region", f"Popular in {ctx.region} this week"))
        else:
            early.append(None)
    todo = np.array([i for i in range(m) if early[i] is None], dtype=np.int64)
    named = np.full(m, -1, dtype=np.int64)
    if has_history and todo.size:
        named[todo] = responsible_items(
            items[todo],
            anchors[todo],
            history,
            ctx.similarity,
            recency_half_life=recency_half_life,
        )

    reasons: list[Reason] = []
    for i in range(m):
        decided = early[i]
        if decided is not None:
            reasons.append(decided)
            continue
        item, anchor = int(items[i]), int(named[i])
        if anchor >= 0:
            title = _title(ctx.titles, anchor)
            if _is_new(ctx.years, item, ctx.now_year):
                kind = "series" if _flag(ctx.is_series, item) else "film"
                text = f"New {kind} similar to {title}"
                reasons.append(Reason("new_similar_to", text, anchor))
            else:
                reasons.append(
                    Reason("because_you_watched", f"Because you watched {title}", anchor)
                )
        elif "trending" in sources[i]:
            reasons.append(Reason("trending", "Trending now"))
        elif has_history:
            reasons.append(Reason("popular", "Popular with viewers like you"))
        else:
            reasons.append(Reason("popular", "Popular right now"))
    return reasons


def _title(titles: np.ndarray, idx: int) -> str:
    """The title of catalog item ``idx``, or :data:`UNKNOWN_TITLE` when it has none."""
    if not 0 <= idx < len(titles):
        return UNKNOWN_TITLE
    title = titles[idx]
    if title is None or (isinstance(title, float) and np.isnan(title)):
        return UNKNOWN_TITLE
    text = str(title).strip()
    return text or UNKNOWN_TITLE


def _flag(flags: np.ndarray, idx: int) -> bool:
    return bool(flags[idx]) if 0 <= idx < len(flags) else False


def _is_new(years: np.ndarray, idx: int, now_year: int) -> bool:
    """Released this year or last (or later); unknown years (-1, NaN) are not new."""
    if not 0 <= idx < len(years):
        return False
    year = float(years[idx])
    return bool(np.isfinite(year) and year >= 0 and year >= now_year - 1)
