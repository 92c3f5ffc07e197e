"""Recall: several named sources each propose candidates; their union goes to ranking.

Each source answers one question about the user — what a factor model's nearest
neighbours are (ALS, content profile: Faiss), what the whole-catalog scorer ranks first
(EASE, popularity), what is similar to the last things watched (item-to-item), what comes
next in the current session (SASRec), what is trending (in the viewer's country when the
catalog knows it), and what editors picked. A source only ever proposes *eligible* items
(the filter stage's mask: allowed by the constraints and not already seen), so strict
constraints ("Turkish series, 2020+") still fill every quota from the items that pass.

:func:`union` merges the lists, de-duplicates, records every source's rank and score per
candidate (ranking features and the evidence for explanations) and caps the total.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from cinerec.errors import ModelError
from cinerec.models.base import Model, has_vectors
from cinerec.models.itemknn import spread_rows
from cinerec.pipeline.config import SourceConfig
from cinerec.pipeline.state import UserHistory
from cinerec.pipeline.types import Candidates, Context
from cinerec.retrieval.ann import VectorIndex

#: item-to-item: weight of the i-th most recent seed item is DECAY**i.
SEED_DECAY = 0.8


class CountryMask(Protocol):
    """country → bool (n_items,) mask of the items produced there, None when unknown."""

    def __call__(self, country: str, /) -> np.ndarray | None: ...


class ScoreBoard:
    """Full-catalog scores of each model for one request, computed once, shared by stages.

    ``user_items`` None means "the user's trained state" (exactly the scores offline
    evaluation of the model alone gives); a row means request-time history. Sequence
    models (those with ``score_sequences``) always read the history's exact order.
    """

    def __init__(
        self, models: dict[str, Model], history: UserHistory, user_items: sp.csr_matrix | None
    ) -> None:
        self.models = models
        self.history = history
        self.user_items = user_items
        self._scores: dict[str, np.ndarray] = {}
        self._embeddings: dict[str, np.ndarray] = {}
        self._memo: dict[str, Any] = {}
        self._orders: dict[str, np.ndarray] = {}

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per request: what several stages read (item-to-item scores)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def user(self) -> np.ndarray:
        return np.array([self.history.user_idx], dtype=np.int64)

    def embedding(self, name: str) -> np.ndarray:
        """The user's vector (1, d) in model ``name``'s space (computed once)."""
        if name not in self._embeddings:
            model = self.models[name]
            if not has_vectors(model):
                raise ModelError(f"model '{name}' has no user and item vectors")
            self._embeddings[name] = np.asarray(
                model.embed_users(self.user, self.user_items), dtype=np.float32
            )
        return self._embeddings[name]

    def get(self, name: str) -> np.ndarray:
        """float32 (n_items,) scores of model ``name`` for this user."""
        if name not in self._scores:
            model = self.models[name]
            if hasattr(model, "global_scores"):  # the same for everyone: shared, read-only
                scores, self._orders[name] = model.global_scores()
            elif hasattr(model, "score_sequences"):
                scores = model.score_sequences([self.history.sequence()])[0]
            elif has_vectors(model):
                scores = model.embed_items() @ self.embedding(name)[0]
            else:
                scores = model.score(self.user, user_items=self.user_items)[0]
            self._scores[name] = np.asarray(scores, dtype=np.float32)
        return self._scores[name]

    def order(self, name: str) -> np.ndarray | None:
        """Model ``name``'s items best first when its scores are the same for every user
        (popularity, trending without live counts), else None."""
        self.get(name)
        return self._orders.get(name)

    def blend_live(self, name: str, items: np.ndarray, counts: np.ndarray) -> None:
        """Make model ``name``'s scores the live last-24h counts, the trained order (scaled
        below one event) breaking ties — for recall and the ranker's features alike."""
        scores = self.get(name).copy()
        span = float(scores.max() - scores.min()) or 1.0
        scores = (scores - scores.min()) / span * 0.5
        scores[items] += counts.astype(np.float32)
        self._scores[name] = scores
        self._orders.pop(name, None)

    def get_items(self, name: str, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """float32 (len(items),) scores of ``items``: vector models score only those.
        ``rows``: the model's item vectors of ``items`` when the caller already has them."""
        model = self.models[name]
        if name in self._scores or not has_vectors(model):
            return self.get(name)[items]
        if rows is None:
            rows = model.embed_items()[items]
        return np.asarray(rows @ self.embedding(name)[0], dtype=np.float32)


@dataclass
class RecallRequest:
    """What every source sees: the user, the request context and the eligible items."""

    history: UserHistory
    board: ScoreBoard
    eligible: np.ndarray  # bool (n_items,)
    context: Context = field(default_factory=Context)
    editor_picks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class SourceResult:
    """One source's proposal: items best first, their scores, optional anchor items."""

    items: np.ndarray  # int64 (m,)
    scores: np.ndarray  # float32 (m,)
    anchors: np.ndarray | None = None  # int64 (m,) history item behind each, -1 none


EMPTY = SourceResult(np.zeros(0, np.int64), np.zeros(0, np.float32))


def top_eligible(
    scores: np.ndarray, eligible: np.ndarray, n: int, order: np.ndarray | None = None
) -> SourceResult:
    """The ``n`` best-scoring eligible items with finite scores, best first (ties: lower index).

    ``order``: all items best first (ties: lower index) when known in advance, as for
    scores every user shares; the answer is then read off it instead of a partition.
    """
    if order is not None:
        chosen = order[eligible[order]][: max(int(n), 0)]
        chosen = chosen[np.isfinite(scores[chosen])]
        return SourceResult(chosen.astype(np.int64), scores[chosen].astype(np.float32))
    masked = np.where(eligible, scores, -np.inf).astype(np.float32)
    n = min(int(n), int(np.count_nonzero(np.isfinite(masked))))
    if n <= 0:
        return EMPTY
    if n < len(masked):
        # The partition may cut a run of equal scores anywhere: keep everything above the
        # cut's score and the lowest-index items at it.
        cut = masked[np.argpartition(-masked, n - 1)[n - 1]]
        above = np.flatnonzero(masked > cut)
        part = np.concatenate([above, np.flatnonzero(masked == cut)[: n - len(above)]])
    else:
        part = np.arange(len(masked))
    top = part[np.lexsort((part, -masked[part]))]
    return SourceResult(top.astype(np.int64), masked[top])


class RecallSource(ABC):
    """A named recall source with a quota; see :class:`SourceConfig` for the kinds."""

    def __init__(self, config: SourceConfig, model: Model | None) -> None:
        self.config = config
        self.model = model

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    def retrieve(self, request: RecallRequest) -> SourceResult: ...


class ModelSource(RecallSource):
    """The top of a whole-catalog scorer (EASE, popularity, …)."""

    def retrieve(self, request: RecallRequest) -> SourceResult:
        name = self.config.model or ""
        scores = request.board.get(name)
        order = request.board.order(name)
        return top_eligible(scores, request.eligible, self.config.quota, order)


class AnnSource(RecallSource):
    """Faiss nearest neighbours of the user's vector among the model's item vectors.

    Items whose vector is all zero — a collaborative model's items nobody interacted with,
    two thirds of the demo catalog — have no taste to match and are left out of the index
    (``members``: the indexed items), which makes each search that much cheaper.
    """

    def __init__(self, config: SourceConfig, model: Model | None) -> None:
        super().__init__(config, model)
        if not has_vectors(model):
            raise ModelError(f"recall source '{config.name}': model has no vectors for ANN")
        self.members: np.ndarray | None = None
        self.index: VectorIndex | None = None
        # Built now, not on the first request: an IVF build takes seconds at 30k items.
        if hasattr(model, "vector_index"):  # the model's own index (content: shared)
            self.index = model.vector_index()
            return
        vectors = np.ascontiguousarray(model.embed_items(), dtype=np.float32)
        members = np.flatnonzero(vectors.any(axis=1))
        if len(members) < len(vectors):
            self.members, vectors = members, np.ascontiguousarray(vectors[members])
        if len(vectors):
            self.index = VectorIndex.build(vectors, kind="auto", metric="ip")

    def retrieve(self, request: RecallRequest) -> SourceResult:
        query = request.board.embedding(self.config.model or "")
        if self.index is None or not np.any(query):
            return EMPTY  # no history: no taste vector
        eligible = request.eligible if self.members is None else request.eligible[self.members]
        if not eligible.any():
            return EMPTY
        items, scores = self.index.search(query, self.config.quota, eligible=eligible)
        keep = items[0] >= 0
        found = items[0][keep]
        return SourceResult(found if self.members is None else self.members[found], scores[0][keep])


class ItemToItemSource(RecallSource):
    """Neighbours of the user's most recent items, weighted toward the latest.

    Uses the model's item–item ``similarity`` (item-kNN); each candidate's anchor is the
    seed item contributing most to its score ("because you watched X").
    """

    def __init__(self, config: SourceConfig, model: Model | None) -> None:
        super().__init__(config, model)
        if getattr(model, "similarity", None) is None:
            raise ModelError(f"recall source '{config.name}': model has no item similarity")

    def scores(self, history: UserHistory) -> tuple[np.ndarray, np.ndarray] | None:
        """(scores (n_items,), anchors (n_items,)) from the recent seeds, or None.

        A score is the decayed sum of the seeds' similarities; the anchor is the seed with
        the largest weighted similarity (the latest seed on ties). Computed on the seeds'
        sparse rows — a few thousand entries — never on dense (seeds × catalog) arrays.
        """
        seeds = recent_unique(history.items, self.config.recent)
        if not len(seeds):
            return None
        similarity: sp.csr_matrix = getattr(self.model, "similarity", None)  # checked in __init__
        n_items = similarity.shape[1]
        decay = SEED_DECAY ** np.arange(len(seeds), dtype=np.float32)
        columns, values, rows = spread_rows(similarity, seeds, decay)
        scores = np.bincount(columns, weights=values, minlength=n_items).astype(np.float32)
        anchors = np.full(n_items, seeds[0], dtype=np.int64)
        order = np.lexsort((rows, -values, columns))  # per column: best value, then latest
        first = np.ones(len(order), dtype=bool)
        first[1:] = columns[order[1:]] != columns[order[:-1]]
        anchors[columns[order[first]]] = seeds[rows[order[first]]]
        return scores, anchors

    def scores_for(self, board: ScoreBoard) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`scores` of the board's history, computed once per request."""
        return board.memo(f"item2item:{self.name}", lambda: self.scores(board.history))

    def retrieve(self, request: RecallRequest) -> SourceResult:
        result = self.scores_for(request.board)
        if result is None:
            return EMPTY
        scores, anchors = result
        eligible = request.eligible & (scores > 0)
        top = top_eligible(scores, eligible, self.config.quota)
        top.anchors = anchors[top.items]
        return top


class SequenceSource(RecallSource):
    """What a sequence model (SASRec) expects next after the request-time sequence."""

    def retrieve(self, request: RecallRequest) -> SourceResult:
        if not len(request.history):
            return EMPTY
        scores = request.board.get(self.config.model or "")
        return top_eligible(scores, request.eligible, self.config.quota)


class TrendingSource(RecallSource):
    """The trending model's top; the viewer's country first when the catalog knows it.

    ``regional`` (bool (n_items,) per country, from the catalog's production countries)
    is supplied by the pipeline; half the quota goes to regional items when any exist.
    """

    def __init__(
        self, config: SourceConfig, model: Model | None, regional: CountryMask | None = None
    ) -> None:
        super().__init__(config, model)
        self.regional = regional

    def retrieve(self, request: RecallRequest) -> SourceResult:
        name = self.config.model or ""
        scores = request.board.get(name)
        order = request.board.order(name)
        country = request.context.country
        if country and self.regional is not None:
            mask = self.regional(country)
            if mask is not None and mask.any():
                quota = self.config.quota
                local = top_eligible(scores, request.eligible & mask, quota // 2, order)
                rest = top_eligible(
                    scores, request.eligible & ~mask, quota - len(local.items), order
                )
                return SourceResult(
                    np.concatenate([local.items, rest.items]),
                    np.concatenate([local.scores, rest.scores]),
                )
        return top_eligible(scores, request.eligible, self.config.quota, order)


class EditorSource(RecallSource):
    """The operator's editor picks, in their order, when eligible."""

    def retrieve(self, request: RecallRequest) -> SourceResult:
        picks = request.editor_picks[request.eligible[request.editor_picks]]
        picks = picks[: self.config.quota]
        scores = np.linspace(1.0, 0.5, num=max(len(picks), 1), dtype=np.float32)[: len(picks)]
        return SourceResult(picks.astype(np.int64), scores)


SOURCE_KINDS: dict[str, type[RecallSource]] = {
    "model": ModelSource,
    "ann": AnnSource,
    "item2item": ItemToItemSource,
    "sequence": SequenceSource,
    "trending": TrendingSource,
    "editor": EditorSource,
}


def recent_unique(items: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` most recent distinct items, latest first."""
    seen: dict[int, None] = {}
    for item in items[::-1]:
        if len(seen) == n:
            break
        seen.setdefault(int(item), None)
    return np.fromiter(seen, dtype=np.int64, count=len(seen))


def union(results: list[tuple[str, int, SourceResult]], max_candidates: int) -> Candidates:
    """Merge ``(source name, quota, result)`` lists into :class:`Candidates`, keeping at
    most ``max_candidates``.

    When the union is larger, candidates are kept by their best quota-relative rank over
    the sources (rank / quota), so every source keeps its head.
    """
    names = tuple(name for name, _, _ in results)
    lists = [r.items for _, _, r in results]
    all_items = np.concatenate([*lists, np.zeros(0, np.int64)])
    items = np.unique(all_items)
    n, s = len(items), len(results)
    ranks = np.zeros((n, s), dtype=np.float32)
    scores = np.full((n, s), np.nan, dtype=np.float32)
    anchors = np.full(n, -1, dtype=np.int64)
    for col, (_, _, result) in enumerate(results):
        if not len(result.items):
            continue
        rows = np.searchsorted(items, result.items)
        ranks[rows, col] = np.arange(1, len(rows) + 1, dtype=np.float32)
        scores[rows, col] = result.scores
        if result.anchors is not None:
            free = anchors[rows] < 0
            anchors[rows[free]] = result.anchors[free]
    candidates = Candidates(items, names, ranks, scores, anchors)
    if n > max_candidates:
        quotas = np.array([max(quota, 1) for _, quota, _ in results], dtype=np.float32)
        relative = np.where(ranks > 0, ranks / quotas, np.inf).min(axis=1)
        keep = np.sort(np.argsort(relative, kind="stable")[:max_candidates])
        candidates = candidates.subset(keep)
    return candidates
