"""The pipeline's model state: what a bundle's :class:`~cinerec.pipeline.recommender.Recommender`
builds once and every request then only reads.

A request must not pay for anything that depends on the bundle alone, so all of it is
assembled here when a bundle is loaded: the fitted models and the id indexes, the catalog
facts the rules filter on, the recall sources (with their ANN indexes), the content
vectors that MMR, the "similar to the latest items" feature and the reasons compare, the
popularity the cold-start path ranks by, and the :class:`FeatureBuilder` whose column
layout the ranker was trained on. Two small caches fill on first use — one country mask
per catalog country, one stand-in history per set of stated preferences — and are then
read-only, like everything else here.

What changes per request (the history, the candidates and their features) lives in
:mod:`cinerec.pipeline.scoring`; operator settings that change while serving (editor
picks, pins) and the ranker stay on the Recommender.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.matrix import IdIndex
from cinerec.errors import ModelError
from cinerec.models.base import Model
from cinerec.pipeline.config import PipelineConfig
from cinerec.pipeline.features import FeatureBuilder
from cinerec.pipeline.recall import (
    SOURCE_KINDS,
    CountryMask,
    ItemToItemSource,
    RecallSource,
    TrendingSource,
)
from cinerec.pipeline.rules import CatalogFacts
from cinerec.pipeline.state import HistoryStore, UserLimits
from cinerec.pipeline.types import Constraints, Preferences, Request

#: The pseudo-source of the series a viewer is mid-way through ("continue watching").
CONTINUE_SOURCE: Final = "continue_watching"
#: A new visitor's stated preferences stand in for a history of this many items.
STATED_TASTE_ITEMS: Final = 50
#: Distinct preference sets whose stand-in history rows are kept (least recently used out).
STATED_TASTE_CACHE: Final = 256


@runtime_checkable
class ItemEmbedder(Protocol):
    """A model with one vector per catalog item (the content model's unit text vectors)."""

    def embed_items(self) -> np.ndarray:
        """float (n_items, d) item vectors."""
        ...


class CountryMasks:
    """country → bool (n_items,) mask of the items produced there; None when the catalog
    does not know the country. Satisfies :class:`~cinerec.pipeline.recall.CountryMask`.

    Masks are read-only and built on first use, at most one per catalog country: turning a
    sparse column dense costs ~0.4 ms, too much to pay on every request.
    """

    def __init__(self, facts: CatalogFacts) -> None:
        self._facts = facts
        self._masks: dict[str, np.ndarray] = {}

    def __call__(self, country: str) -> np.ndarray | None:
        key = country.strip().casefold()
        if key not in self._facts.country_keys:
            return None
        mask = self._masks.get(key)
        if mask is None:
            column = self._facts.country_keys.index(key)
            mask = np.asarray(self._facts.countries[:, column].toarray()).ravel() > 0
            mask.flags.writeable = False
            self._masks[key] = mask
        return mask


class ContentSimilarity:
    """Cosine similarity of items to history items over unit content vectors, float32
    (m, h); all zeros without vectors. Satisfies
    :class:`~cinerec.pipeline.explain.ItemSimilarity` (the reasons' "similar to")."""

    def __init__(self, vectors: np.ndarray | None) -> None:
        self.vectors = vectors

    def __call__(self, items: np.ndarray, history: np.ndarray) -> np.ndarray:
        if self.vectors is None:
            return np.zeros((len(items), len(history)), dtype=np.float32)
        return self.vectors[items] @ self.vectors[history].T


def build_sources(
    config: PipelineConfig, models: dict[str, Model], regional: CountryMask
) -> list[RecallSource]:
    """The enabled recall sources of ``config`` whose model the bundle holds, in order."""
    sources: list[RecallSource] = []
    for cfg in config.recall.sources:
        if not cfg.enabled or (cfg.model is not None and cfg.model not in models):
            continue
        model = models.get(cfg.model) if cfg.model else None
        if cfg.kind == "trending":
            sources.append(TrendingSource(cfg, model, regional))
        else:
            sources.append(SOURCE_KINDS[cfg.kind](cfg, model))
    return sources


def content_vectors(models: dict[str, Model]) -> tuple[str | None, np.ndarray | None]:
    """(key, float32 unit item vectors) of the bundle's content model, or (None, None)."""
    for key, model in models.items():
        if model.name == "content" and isinstance(model, ItemEmbedder):
            return key, np.asarray(model.embed_items(), dtype=np.float32)
    return None, None


def histories_popularity(histories: HistoryStore, n_items: int) -> np.ndarray:
    """Distinct users per item in the stored histories, float32 (n_items,)."""
    users = np.repeat(np.arange(histories.n_users), np.diff(histories.indptr))
    pairs = np.unique(users * np.int64(n_items) + histories.items)
    return np.bincount(pairs % n_items, minlength=n_items).astype(np.float32)


class PipelineParts:
    """Everything the pipeline reads that depends on the bundle alone (module docstring).

    ``models`` by bundle key; ``users`` / ``items`` map ids to indices; ``catalog`` is
    aligned with ``items`` (row i = item i); ``histories`` the stored user histories;
    ``default_model`` orders candidates when there is no ranker (first model if None).
    """

    def __init__(
        self,
        models: dict[str, Model],
        users: IdIndex,
        items: IdIndex,
        catalog: pd.DataFrame,
        histories: HistoryStore,
        config: PipelineConfig,
        *,
        default_model: str | None = None,
        limits: UserLimits | None = None,
    ) -> None:
        self.models = models
        self.users = users
        self.items = items
        self.catalog = catalog.reset_index(drop=True)
        self.histories = histories
        self.config = config
        self.default_model: str = default_model or next(iter(models))
        self.limits = limits  # users' stored parental limits (None: nobody has one)
        self.facts = CatalogFacts.from_catalog(self.catalog)
        self.country_mask = CountryMasks(self.facts)
        self.sources = build_sources(config, models, self.country_mask)
        self.content_name, self.vectors = content_vectors(models)
        self.similarity = ContentSimilarity(self.vectors)
        self.popularity = histories_popularity(histories, len(items))
        item2item = next((s for s in self.sources if isinstance(s, ItemToItemSource)), None)
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
        self.titles: np.ndarray = (
            self.catalog["title"].to_numpy(object)
            if "title" in self.catalog
            else np.full(len(items), None, dtype=object)
        )
        self._tastes: OrderedDict[tuple[tuple[str, ...], ...], sp.csr_matrix] = OrderedDict()
        self._tastes_lock = threading.Lock()  # pipeline threads share the cache

    def constraints_for(self, request: Request) -> Constraints:
        """The request's constraints merged with its user's stored limits: the stricter of
        each, so a request may lower a child profile's age limit but never raise it."""
        if self.limits is None:
            return request.constraints
        return request.constraints.merge(self.limits.constraints(request.user_id))

    def indices(self, ids: tuple[str, ...] | list[str]) -> np.ndarray:
        """int64 catalog indices of the known ids among ``ids`` (unknown ones dropped)."""
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

    def stated_taste(self, preferences: Preferences) -> sp.csr_matrix:
        """A stand-in history row for a new visitor: the most popular items matching every
        stated preference (up to :data:`STATED_TASTE_ITEMS`), so the vector and scoring
        models (ALS fold-in, content profile, EASE) personalise from the first request.
        The items are not "seen": they stay recommendable and never appear as reasons.
        Cached per set of preferences, the :data:`STATED_TASTE_CACHE` most recently used
        (clients may send any combination: the cache must not grow without end).
        """
        key = (preferences.genres, preferences.languages, preferences.countries)
        with self._tastes_lock:
            if key in self._tastes:
                self._tastes.move_to_end(key)
                return self._tastes[key]
        everything = np.arange(len(self.items))
        match = self.facts.preference_match(everything, *key) >= 1.0
        ranked = everything[match][np.argsort(-self.popularity[match], kind="stable")]
        chosen = np.sort(ranked[:STATED_TASTE_ITEMS])
        row = sp.csr_matrix(
            (np.ones(len(chosen), np.float32), chosen, [0, len(chosen)]),
            shape=(1, len(self.items)),
        )
        with self._tastes_lock:
            self._tastes[key] = row
            while len(self._tastes) > STATED_TASTE_CACHE:
                self._tastes.popitem(last=False)
        return row
