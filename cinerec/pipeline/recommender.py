"""The Recommender: recall → filter → rank → re-rank → explain, for one user at a time.

One object serves offline evaluation (:mod:`cinerec.pipeline.offline`), batch scoring
and the online API, so what is measured is exactly what users get. It is built from a
bundle's models plus the pipeline parts saved beside them (config, ranker, histories);
:meth:`Recommender.run` takes a :class:`UserHistory` — the stored one, or the stored one
extended with request-time events — so feedback changes the next answer without a refit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.matrix import IdIndex
from cinerec.errors import ModelError
from cinerec.models.base import Model
from cinerec.pipeline.config import PipelineConfig, RerankConfig
from cinerec.pipeline.explain import ExplainContext, explain
from cinerec.pipeline.features import FeatureBuilder
from cinerec.pipeline.rankers import Ranker
from cinerec.pipeline.recall import (
    SOURCE_KINDS,
    ItemToItemSource,
    RecallRequest,
    RecallSource,
    ScoreBoard,
    SourceResult,
    TrendingSource,
    recent_unique,
    union,
)
from cinerec.pipeline.rerank import RerankResult, rerank
from cinerec.pipeline.rules import CatalogFacts
from cinerec.pipeline.state import HistoryStore, UserHistory, UserLimits
from cinerec.pipeline.types import (
    Candidates,
    Constraints,
    Context,
    Preferences,
    RankedItem,
    Recommendations,
    Request,
)

__all__ = ["Preferences", "Recommendations", "Recommender", "Request"]

CONTINUE_SOURCE = "continue_watching"
#: A new visitor's stated preferences stand in for a history of this many items.
STATED_TASTE_ITEMS = 50


@dataclass
class Scored:
    """Candidates with their feature rows (what rankers train on)."""

    candidates: Candidates
    features: np.ndarray
    history: UserHistory
    board: ScoreBoard
    preference: np.ndarray
    eligible: np.ndarray  # bool (n_items,): what the filter stage let through


class Recommender:
    """The hybrid pipeline over a set of fitted models (see the module docstring)."""

    def __init__(
        self,
        models: dict[str, Model],
        users: IdIndex,
        items: IdIndex,
        catalog: pd.DataFrame,
        histories: HistoryStore,
        config: PipelineConfig,
        ranker: Ranker | None = None,
        *,
        default_model: str | None = None,
        model_version: str = "unversioned",
        limits: UserLimits | None = None,
    ) -> None:
        self.models = models
        self.users = users
        self.items = items
        self.catalog = catalog.reset_index(drop=True)
        self.histories = histories
        self.config = config
        self.ranker = ranker
        self.default_model = default_model or next(iter(models))
        self.model_version = model_version
        self.limits = limits  # users' stored parental limits (None: nobody has one)
        self.folder: Path | None = None  # the bundle folder it was loaded from, if any
        self.config_hash = config.digest()
        self.facts = CatalogFacts.from_catalog(self.catalog)
        self._country_masks: dict[str, np.ndarray] = {}
        # The bundle's own picks: a request carrying the operator's (Request.editor_picks)
        # overrides them.
        self.editor_picks: list[str] = list(config.editor_picks)
        self.pins: list[tuple[str, int]] = [(p.item_id, p.position) for p in config.rerank.pins]
        self.sources = self._sources()
        self.content_name, self.vectors = self._content_vectors()
        item2item = next((s for s in self.sources if isinstance(s, ItemToItemSource)), None)
        self.popularity = histories_popularity(histories, len(items))
        self._tastes: dict[tuple[tuple[str, ...], ...], sp.csr_matrix] = {}
        self.features = FeatureBuilder(
            sorted(models),
            (*(s.name for s in self.sources), CONTINUE_SOURCE),
            popularity=self.popularity,
            years=np.where(self.facts.year >= 0, self.facts.year, np.nan),
            is_series=self.facts.is_series,
            genres=self.facts.genres,
            vectors=self.vectors,
            content_model=self.content_name,
            countries=self.country_mask,
            recent_scores=(
                (lambda board: (item2item.scores_for(board) or (None,))[0]) if item2item else None
            ),
        )
        self.titles = (
            self.catalog["title"].to_numpy(object)
            if "title" in self.catalog
            else np.full(len(items), None, dtype=object)
        )

    # ----- set-up ----------------------------------------------------------------------
    def _sources(self) -> list[RecallSource]:
        sources: list[RecallSource] = []
        for cfg in self.config.recall.sources:
            if not cfg.enabled or (cfg.model is not None and cfg.model not in self.models):
                continue
            model = self.models.get(cfg.model) if cfg.model else None
            if cfg.kind == "trending":
                sources.append(TrendingSource(cfg, model, self.country_mask))
            else:
                sources.append(SOURCE_KINDS[cfg.kind](cfg, model))
        return sources

    def _content_vectors(self) -> tuple[str | None, np.ndarray | None]:
        """(key, unit item vectors) of the content model, or (None, None)."""
        for key, model in self.models.items():
            if model.name == "content" and hasattr(model, "embed_items"):
                return key, np.asarray(model.embed_items(), dtype=np.float32)
        return None, None

    def country_mask(self, country: str) -> np.ndarray | None:
        """bool (n_items,): items produced in ``country`` (None when the catalog lacks it).

        Read-only and kept per country: a sparse column to dense costs ~0.4 ms a request.
        """
        key = country.strip().casefold()
        if key not in self.facts.country_keys:
            return None
        mask = self._country_masks.get(key)
        if mask is None:
            column = self.facts.country_keys.index(key)
            mask = np.asarray(self.facts.countries[:, column].toarray()).ravel() > 0
            mask.flags.writeable = False
            self._country_masks[key] = mask  # at most one per catalog country
        return mask

    def warm_up(self) -> None:
        """Answer one stored user and one new visitor, so first-call costs (thread-pool
        controllers, lazily built arrays) are paid before live traffic arrives."""
        self.recommend(Request(user_id=None, k=10))
        if len(self.users):
            self.recommend(Request(user_id=str(self.users.ids[0]), k=10))

    # ----- entry points ----------------------------------------------------------------
    def history_for(self, request: Request) -> tuple[UserHistory, bool]:
        """The user's history for ``request`` and whether it is exactly the stored one."""
        user_idx = -1
        if request.user_id is not None:
            user_idx = int(self.users.lookup(np.array([request.user_id], dtype=object))[0])
        history = self.histories.get(user_idx)
        if not (request.recent_items or request.skipped_items or request.recent_events):
            return history, user_idx >= 0
        now = _request_time(request.context, history).timestamp()
        events = sorted(request.recent_events, key=lambda e: e.timestamp)
        positive = [e for e in events if not e.skip]
        ids = [e.item_id for e in positive] + list(request.recent_items)
        times = [e.timestamp for e in positive] + [now] * len(request.recent_items)
        weights = [e.weight for e in positive] + [1.0] * len(request.recent_items)
        known = self.items.lookup(np.asarray(ids, dtype=object)) if ids else np.zeros(0, int)
        keep = known >= 0
        skipped = self._indices([e.item_id for e in events if e.skip] + list(request.skipped_items))
        return (
            history.extended(
                known[keep].astype(np.int64),
                np.asarray(times, np.float64)[keep],
                np.asarray(weights, np.float32)[keep],
                skipped,
            ),
            False,
        )

    def recommend(self, request: Request) -> Recommendations:
        """Top-``request.k`` for one request (unknown users get the cold-start path)."""
        history, stored = self.history_for(request)
        return self.run(history, request, stored=stored)

    def run(self, history: UserHistory, request: Request, *, stored: bool) -> Recommendations:
        """The whole pipeline for one history. ``stored``: the history is the trained one."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        scored = self.score_candidates(history, request, stored=stored, timings=timings)
        mark = time.perf_counter()
        cands = scored.candidates
        top, top_scores = self.rank(scored)
        timings["rank"] = (time.perf_counter() - mark) * 1e3
        mark = time.perf_counter()
        result = self._rerank(scored, top, top_scores, request)
        timings["rerank"] = (time.perf_counter() - mark) * 1e3
        mark = time.perf_counter()
        ranked = self._explain(scored, result, request)
        timings["explain"] = (time.perf_counter() - mark) * 1e3
        timings["total"] = (time.perf_counter() - started) * 1e3
        per_source = {
            name: int((cands.source_ranks[:, s] > 0).sum())
            for s, name in enumerate(cands.source_names)
        }
        return Recommendations(
            user_id=request.user_id,
            items=ranked,
            item_ids=[str(self.items.ids[r.item_idx]) for r in ranked],
            model_version=self.model_version,
            config_hash=self.config_hash,
            n_candidates=len(cands),
            per_source=per_source,
            timings_ms=timings,
        )

    # ----- stages ----------------------------------------------------------------------
    def constraints_for(self, request: Request) -> Constraints:
        """The request's constraints merged with its user's stored limits: the stricter of
        each, so a request may lower a child profile's age limit but never raise it."""
        if self.limits is None:
            return request.constraints
        return request.constraints.merge(self.limits.constraints(request.user_id))

    def eligible(self, history: UserHistory, request: Request) -> tuple[np.ndarray, np.ndarray]:
        """Filter stage: (eligible bool (n_items,), continue-watching items). Everything
        after it (every recall source, editor picks, pins, continue-watching) draws only
        from the eligible items."""
        constraints = self.constraints_for(request)
        allowed = self.facts.allowed(constraints) if not constraints.is_empty() else None
        eligible = np.ones(len(self.items), dtype=bool) if allowed is None else allowed.copy()
        resume = np.zeros(0, dtype=np.int64)
        filters = self.config.filters
        if filters.exclude_seen and len(history):
            eligible[history.items] = False
            if filters.continue_watching:
                now = _request_time(request.context, history).timestamp()
                recent = history.times >= now - filters.continue_watching_days * 86400
                series = history.items[recent & self.facts.is_series[history.items]]
                resume = recent_unique(series, filters.continue_watching_max)
                if allowed is not None:
                    resume = resume[allowed[resume]]
        blocked = self._indices(request.exclude_items)
        if filters.exclude_skipped and len(history.skipped):
            blocked = np.concatenate([blocked, history.skipped])
        eligible[blocked] = False
        return eligible, np.setdiff1d(resume, blocked)

    def score_candidates(
        self,
        history: UserHistory,
        request: Request,
        *,
        stored: bool,
        timings: dict[str, float] | None = None,
    ) -> Scored:
        """Filter, recall and feature stages: candidates with their feature rows."""
        timings = {} if timings is None else timings
        mark = time.perf_counter()
        eligible, resume = self.eligible(history, request)
        user_items = None if stored and history.user_idx >= 0 else history.row(len(self.items))
        if not len(history) and request.preferences != Preferences():
            user_items = self.stated_taste(request.preferences)
        board = ScoreBoard(self.models, history, user_items)
        if request.live_trending:
            ids, counts = zip(*request.live_trending, strict=True)
            index = self.items.lookup(np.asarray(ids, dtype=object))
            known = index >= 0
            for source in self.sources:
                if isinstance(source, TrendingSource) and source.config.model:
                    board.blend_live(
                        source.config.model,
                        index[known],
                        np.asarray(counts, dtype=np.float32)[known],
                    )
        picks = self.editor_picks if request.editor_picks is None else request.editor_picks
        recall = RecallRequest(history, board, eligible, request.context, self._indices(picks))
        results = [(s.name, s.config.quota, s.retrieve(recall)) for s in self.sources]
        timings["recall"] = (time.perf_counter() - mark) * 1e3
        mark = time.perf_counter()
        resumed = SourceResult(resume, np.ones(len(resume), np.float32))
        results.append((CONTINUE_SOURCE, len(resume), resumed))
        cands = union(results, self.config.recall.max_candidates + len(resume))
        prefs = request.preferences
        preference = self.facts.preference_match(
            cands.items, prefs.genres, prefs.languages, prefs.countries
        )
        context = request.context
        if context.timestamp is None:
            context = Context(context.device, _request_time(context, history), context.country)
        features = self.features.build(cands, board, history, context, preference=preference)
        timings["features"] = (time.perf_counter() - mark) * 1e3
        return Scored(cands, features, history, board, preference, eligible)

    def stated_taste(self, preferences: Preferences) -> sp.csr_matrix:
        """A stand-in history row for a new visitor: the most popular items matching every
        stated preference (up to :data:`STATED_TASTE_ITEMS`), so the vector and scoring
        models (ALS fold-in, content profile, EASE) personalise from the first request.
        The items are not "seen": they stay recommendable and never appear as reasons.
        """
        key = (preferences.genres, preferences.languages, preferences.countries)
        if key not in self._tastes:
            everything = np.arange(len(self.items))
            match = self.facts.preference_match(everything, *key) >= 1.0
            ranked = everything[match][np.argsort(-self.popularity[match], kind="stable")]
            chosen = np.sort(ranked[:STATED_TASTE_ITEMS])
            self._tastes[key] = sp.csr_matrix(
                (np.ones(len(chosen), np.float32), chosen, [0, len(chosen)]),
                shape=(1, len(self.items)),
            )
        return self._tastes[key]

    def rank(self, scored: Scored) -> tuple[np.ndarray, np.ndarray]:
        """Rank stage: (rows of the top ``top_n`` candidates, their ranker scores)."""
        if self.ranker is not None and len(scored.candidates):
            rank_scores = self.ranker.predict(scored.features)
        else:
            column = self.features.names.index(f"z.{self.default_model}")
            rank_scores = scored.features[:, column]
        top = np.argsort(-rank_scores, kind="stable")[: self.config.rank.top_n]
        return top, rank_scores[top]

    def _rerank(
        self,
        scored: Scored,
        top: np.ndarray,
        scores: np.ndarray,
        request: Request,
        cfg: RerankConfig | None = None,
    ) -> RerankResult:
        cands = scored.candidates
        items = cands.items[top]
        cfg = cfg or self.config.rerank
        now_year = _request_time(request.context, scored.history).year
        freshness = None
        if cfg.freshness_weight > 0:
            freshness = self.facts.freshness(now_year, cfg.freshness_years)[items]
        affinity = scored.features[top, self.features.names.index("genre_affinity")]
        pins = []
        for item_id, position in self.pins:
            idx = self._indices((item_id,))
            if len(idx) and scored.eligible[idx[0]]:
                pins.append((int(idx[0]), position))
        return rerank(
            items,
            scores.astype(np.float32),
            request.k,
            cfg,
            rule_boost=scored.preference[top],
            freshness=freshness,
            vectors=self._mmr_vectors(items, cfg.mmr_space),
            genres=self.features.genres(items),  # non-zero = member: caps read sets
            affinity=affinity if len(scored.history) else None,
            pins=pins,
        )

    def _explain(self, scored: Scored, result: RerankResult, request: Request) -> list[RankedItem]:
        cands = scored.candidates
        rows = [_row_of(cands.items, item) for item in result.items]
        sources = [tuple(cands.sources_of(r)) if r >= 0 else ("editor",) for r in rows]
        anchors = np.array([cands.anchors[r] if r >= 0 else -1 for r in rows], dtype=np.int64)
        resume = set(cands.items[cands.source_ranks[:, -1] > 0].tolist())
        reasons = explain(
            result.items,
            sources,
            anchors,
            result.pinned,
            ExplainContext(
                history=scored.history.items,
                titles=self.titles,
                is_series=self.facts.is_series,
                years=self.facts.year,
                now_year=_request_time(request.context, scored.history).year,
                region=request.context.country,
                regional=self._regional(result.items, request.context.country),
                similarity=self._similarity,
                continue_watching=frozenset(int(i) for i in resume),
            ),
        )
        return [
            RankedItem(int(item), float(score), rank, reason, src)
            for rank, (item, score, reason, src) in enumerate(
                zip(result.items, result.scores, reasons, sources, strict=True), start=1
            )
        ]

    def _mmr_vectors(self, items: np.ndarray, space: str) -> np.ndarray | None:
        """Unit rows MMR compares: content vectors, or the items' genre sets."""
        if space == "genres":
            return self.features.genres(items)  # unit rows, normalised once at load
        return None if self.vectors is None else self.vectors[items]

    def _regional(self, items: np.ndarray, country: str | None) -> frozenset[int]:
        mask = self.country_mask(country) if country else None
        if mask is None:
            return frozenset()
        return frozenset(int(i) for i in items if mask[int(i)])

    def _similarity(self, items: np.ndarray, history: np.ndarray) -> np.ndarray:
        if self.vectors is None:
            return np.zeros((len(items), len(history)), dtype=np.float32)
        return self.vectors[items] @ self.vectors[history].T

    def _indices(self, ids: tuple[str, ...] | list[str]) -> np.ndarray:
        if not ids:
            return np.zeros(0, dtype=np.int64)
        idx = self.items.lookup(np.asarray(ids, dtype=object))
        return idx[idx >= 0].astype(np.int64)

    def item_index(self, item_ids: list[str]) -> np.ndarray:
        """Catalog indices of ``item_ids``; raise ModelError naming unknown ids."""
        idx = self.items.lookup(np.asarray(item_ids, dtype=object))
        unknown = [i for i, j in zip(item_ids, idx, strict=True) if j < 0]
        if unknown:
            raise ModelError(f"unknown item id(s): {', '.join(unknown[:5])}")
        return idx.astype(np.int64)


def _row_of(items: np.ndarray, item: int) -> int:
    """The candidate row holding ``item``, -1 when it is not a candidate (a pin)."""
    hit = np.flatnonzero(items == item)
    return int(hit[0]) if len(hit) else -1


def _request_time(context: Context, history: UserHistory) -> datetime:
    """The request's time: the context's, else just after the latest event, else now."""
    if context.timestamp is not None:
        return context.timestamp
    if len(history):
        return datetime.fromtimestamp(float(history.times.max()) + 1.0, tz=UTC)
    return datetime.now(UTC)


def histories_popularity(histories: HistoryStore, n_items: int) -> np.ndarray:
    """Distinct users per item in the stored histories, float32 (n_items,)."""
    users = np.repeat(np.arange(histories.n_users), np.diff(histories.indptr))
    pairs = np.unique(users * np.int64(n_items) + histories.items)
    return np.bincount(pairs % n_items, minlength=n_items).astype(np.float32)
