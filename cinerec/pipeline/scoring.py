"""One request's state through the filter, recall, feature and rank stages.

Everything here reads the bundle's :class:`~cinerec.pipeline.parts.PipelineParts` and
writes only request state: the user's history for this request (the stored one, or the
stored one extended with request-time events, so feedback changes the next answer
without a refit), the eligible items, the score board, the candidates and their feature
rows — collected in :class:`Scored`, which is also what the ranker is trained on
(:func:`cinerec.training.ranker.ranking_data`), so training and serving build the same
rows. The last two stages, re-rank and explain, are in :mod:`cinerec.pipeline.finish`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from cinerec.pipeline.parts import CONTINUE_SOURCE, PipelineParts
from cinerec.pipeline.recall import (
    RecallRequest,
    ScoreBoard,
    SourceResult,
    TrendingSource,
    recent_unique,
    union,
)
from cinerec.pipeline.state import UserHistory
from cinerec.pipeline.timing import StageClock
from cinerec.pipeline.types import Candidates, Context, Preferences, Request


class CandidateScorer(Protocol):
    """What the rank stage needs of a ranker: float32 (n,) scores of one query's
    (n, f) feature rows, higher = better (every :class:`~cinerec.pipeline.rankers.Ranker`)."""

    def predict(self, features: np.ndarray) -> np.ndarray: ...


@dataclass
class Scored:
    """One request's candidates with their feature rows (what rankers train on), and the
    request state the later stages read."""

    candidates: Candidates
    features: np.ndarray
    history: UserHistory
    board: ScoreBoard
    preference: np.ndarray
    eligible: np.ndarray  # bool (n_items,): what the filter stage let through


def request_time(context: Context, history: UserHistory) -> datetime:
    """The request's time: the context's, else just after the latest event, else now."""
    if context.timestamp is not None:
        return context.timestamp
    if len(history):
        return datetime.fromtimestamp(float(history.times.max()) + 1.0, tz=UTC)
    return datetime.now(UTC)


def history_for(parts: PipelineParts, request: Request) -> tuple[UserHistory, bool]:
    """The user's history for ``request`` and whether it is exactly the stored one.

    Unknown or missing user ids get an empty history (the cold-start path); request-time
    events (``recent_events``, ``recent_items``, ``skipped_items``) extend it, items the
    catalog does not know are dropped.
    """
    user_idx = -1
    if request.user_id is not None:
        user_idx = int(parts.users.lookup(np.array([request.user_id], dtype=object))[0])
    history = parts.histories.get(user_idx)
    if not (request.recent_items or request.skipped_items or request.recent_events):
        return history, user_idx >= 0
    now = request_time(request.context, history).timestamp()
    events = sorted(request.recent_events, key=lambda e: e.timestamp)
    positive = [e for e in events if not e.skip]
    ids = [e.item_id for e in positive] + list(request.recent_items)
    times = [e.timestamp for e in positive] + [now] * len(request.recent_items)
    weights = [e.weight for e in positive] + [1.0] * len(request.recent_items)
    known = parts.items.lookup(np.asarray(ids, dtype=object)) if ids else np.zeros(0, int)
    keep = known >= 0
    skipped = parts.indices([e.item_id for e in events if e.skip] + list(request.skipped_items))
    return (
        history.extended(
            known[keep].astype(np.int64),
            np.asarray(times, np.float64)[keep],
            np.asarray(weights, np.float32)[keep],
            skipped,
        ),
        False,
    )


def eligible_items(
    parts: PipelineParts, history: UserHistory, request: Request
) -> tuple[np.ndarray, np.ndarray]:
    """Filter stage: (eligible bool (n_items,), continue-watching items).

    Eligible: allowed by the request's constraints, not seen (when the config excludes
    seen items), not excluded by the request and not skipped. Continue watching: the
    latest series the user watched recently, if still allowed and not excluded.
    """
    constraints = parts.constraints_for(request)
    allowed = parts.facts.allowed(constraints) if not constraints.is_empty() else None
    eligible = np.ones(len(parts.items), dtype=bool) if allowed is None else allowed.copy()
    resume = np.zeros(0, dtype=np.int64)
    filters = parts.config.filters
    if filters.exclude_seen and len(history):
        eligible[history.items] = False
        if filters.continue_watching:
            now = request_time(request.context, history).timestamp()
            recent = history.times >= now - filters.continue_watching_days * 86400
            series = history.items[recent & parts.facts.is_series[history.items]]
            resume = recent_unique(series, filters.continue_watching_max)
            if allowed is not None:
                resume = resume[allowed[resume]]
    blocked = parts.indices(request.exclude_items)
    if filters.exclude_skipped and len(history.skipped):
        blocked = np.concatenate([blocked, history.skipped])
    eligible[blocked] = False
    return eligible, np.setdiff1d(resume, blocked)


def score_candidates(
    parts: PipelineParts,
    history: UserHistory,
    request: Request,
    *,
    stored: bool,
    editor_picks: list[str],
    clock: StageClock,
) -> Scored:
    """Filter, recall and feature stages: candidates with their feature rows.

    ``stored``: ``history`` is the trained one, so models may use their trained user
    state; ``editor_picks``: item ids the editor source proposes. ``clock`` gets the
    "recall" (filter included) and "features" laps.
    """
    eligible, resume = eligible_items(parts, history, request)
    user_items = None if stored and history.user_idx >= 0 else history.row(len(parts.items))
    if not len(history) and request.preferences != Preferences():
        user_items = parts.stated_taste(request.preferences)
    board = ScoreBoard(parts.models, history, user_items)
    if request.live_trending:
        ids, counts = zip(*request.live_trending, strict=True)
        index = parts.items.lookup(np.asarray(ids, dtype=object))
        known = index >= 0
        for source in parts.sources:
            if isinstance(source, TrendingSource) and source.config.model:
                board.blend_live(
                    source.config.model,
                    index[known],
                    np.asarray(counts, dtype=np.float32)[known],
                )
    recall = RecallRequest(history, board, eligible, request.context, parts.indices(editor_picks))
    results = [(s.name, s.config.quota, s.retrieve(recall)) for s in parts.sources]
    clock.lap("recall")
    resumed = SourceResult(resume, np.ones(len(resume), np.float32))
    results.append((CONTINUE_SOURCE, len(resume), resumed))
    cands = union(results, parts.config.recall.max_candidates + len(resume))
    prefs = request.preferences
    preference = parts.facts.preference_match(
        cands.items, prefs.genres, prefs.languages, prefs.countries
    )
    context = request.context
    if context.timestamp is None:
        context = Context(context.device, request_time(context, history), context.country)
    features = parts.features.build(cands, board, history, context, preference=preference)
    clock.lap("features")
    return Scored(cands, features, history, board, preference, eligible)


def rank(
    parts: PipelineParts, scored: Scored, ranker: CandidateScorer | None
) -> tuple[np.ndarray, np.ndarray]:
    """Rank stage: (rows of the top ``top_n`` candidates, their scores), best first.

    Scores come from ``ranker``; without one, from the default model's z-scored column
    (the model order), ties kept in candidate order.
    """
    if ranker is not None and len(scored.candidates):
        rank_scores = ranker.predict(scored.features)
    else:
        column = parts.features.names.index(f"z.{parts.default_model}")
        rank_scores = scored.features[:, column]
    top = np.argsort(-rank_scores, kind="stable")[: parts.config.rank.top_n]
    return top, rank_scores[top]
