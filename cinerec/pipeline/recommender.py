"""The Recommender: recall → filter → rank → re-rank → explain, for one user at a time.

One object serves offline evaluation (:mod:`cinerec.pipeline.offline`), batch scoring
and the online API, so what is measured is exactly what users get. It is built from a
bundle's models plus the pipeline parts saved beside them (config, ranker, histories);
:meth:`Recommender.run` takes a :class:`UserHistory` — the stored one, or the stored one
extended with request-time events — so feedback changes the next answer without a refit.

The work is split along what changes how often:

* :mod:`~cinerec.pipeline.parts` — model state, built once per bundle and then only read
  (models, catalog facts, recall sources, content vectors, feature layout);
* :mod:`~cinerec.pipeline.scoring` — request state through filter, recall, features and
  rank (:class:`~cinerec.pipeline.scoring.Scored`);
* :mod:`~cinerec.pipeline.finish` — re-rank and explain;
* :mod:`~cinerec.pipeline.timing` — the per-stage milliseconds every answer reports.

This class ties them together and holds what an operator or the trainer changes on a
live object: the ranker, the editor picks and the pins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.matrix import IdIndex
from cinerec.models.base import Model
from cinerec.pipeline import finish, scoring
from cinerec.pipeline.config import PipelineConfig, RerankConfig
from cinerec.pipeline.features import FeatureBuilder
from cinerec.pipeline.parts import PipelineParts
from cinerec.pipeline.rankers import Ranker
from cinerec.pipeline.recall import RecallSource
from cinerec.pipeline.rerank import RerankResult
from cinerec.pipeline.rules import CatalogFacts
from cinerec.pipeline.scoring import Scored
from cinerec.pipeline.state import HistoryStore, UserHistory, UserLimits
from cinerec.pipeline.timing import StageClock
from cinerec.pipeline.types import Constraints, Preferences, Recommendations, Request

__all__ = ["Preferences", "Recommendations", "Recommender", "Request", "Scored"]


class Recommender:
    """The hybrid pipeline over a set of fitted models (see the module docstring).

    The bundle's parts are in :attr:`parts` and readable through the properties below;
    ``ranker`` (None: the default model's order), ``editor_picks`` (item ids) and
    ``pins`` ((item id, 1-based position) pairs) may be replaced on a live object.
    """

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
        self.parts = PipelineParts(
            models,
            users,
            items,
            catalog,
            histories,
            config,
            default_model=default_model,
            limits=limits,
        )
        self.ranker = ranker
        self.model_version = model_version
        self.folder: Path | None = None  # the bundle folder it was loaded from, if any
        self.config_hash = config.digest()
        # The bundle's own picks: a request carrying the operator's (Request.editor_picks)
        # overrides them.
        self.editor_picks: list[str] = list(config.editor_picks)
        self.pins: list[tuple[str, int]] = [(p.item_id, p.position) for p in config.rerank.pins]

    # ----- the bundle's parts (read-only) ----------------------------------------------
    @property
    def models(self) -> dict[str, Model]:
        return self.parts.models

    @property
    def users(self) -> IdIndex:
        return self.parts.users

    @property
    def items(self) -> IdIndex:
        return self.parts.items

    @property
    def catalog(self) -> pd.DataFrame:
        """The catalog, row i = item i."""
        return self.parts.catalog

    @property
    def histories(self) -> HistoryStore:
        return self.parts.histories

    @property
    def config(self) -> PipelineConfig:
        return self.parts.config

    @property
    def default_model(self) -> str:
        return self.parts.default_model

    @property
    def facts(self) -> CatalogFacts:
        return self.parts.facts

    @property
    def sources(self) -> list[RecallSource]:
        return self.parts.sources

    @property
    def features(self) -> FeatureBuilder:
        return self.parts.features

    @property
    def vectors(self) -> np.ndarray | None:
        """Unit content vectors (n_items, d), or None without a content model."""
        return self.parts.vectors

    @property
    def titles(self) -> np.ndarray:
        return self.parts.titles

    @property
    def limits(self) -> UserLimits | None:
        """Users' stored parental limits (None: nobody has one)."""
        return self.parts.limits

    @limits.setter
    def limits(self, limits: UserLimits | None) -> None:
        self.parts.limits = limits

    def picks_for(self, request: Request) -> list[str]:
        """The editor picks ``request`` carries (the operator's), else the bundle's."""
        return self.editor_picks if request.editor_picks is None else list(request.editor_picks)

    def country_mask(self, country: str) -> np.ndarray | None:
        """bool (n_items,): items produced in ``country`` (None when the catalog lacks it)."""
        return self.parts.country_mask(country)

    def item_index(self, item_ids: list[str]) -> np.ndarray:
        """Catalog indices of ``item_ids``; raise ModelError naming unknown ids."""
        return self.parts.item_index(item_ids)

    def stated_taste(self, preferences: Preferences) -> sp.csr_matrix:
        """A new visitor's stand-in history row (:meth:`PipelineParts.stated_taste`)."""
        return self.parts.stated_taste(preferences)

    def warm_up(self) -> None:
        """Answer one stored user and one new visitor, so first-call costs (thread-pool
        controllers, lazily built arrays) are paid before live traffic arrives."""
        self.recommend(Request(user_id=None, k=10))
        if len(self.users):
            self.recommend(Request(user_id=str(self.users.ids[0]), k=10))

    # ----- entry points ----------------------------------------------------------------
    def history_for(self, request: Request) -> tuple[UserHistory, bool]:
        """The user's history for ``request`` and whether it is exactly the stored one."""
        return scoring.history_for(self.parts, request)

    def recommend(self, request: Request) -> Recommendations:
        """Top-``request.k`` for one request (unknown users get the cold-start path)."""
        history, stored = scoring.history_for(self.parts, request)
        return self.run(history, request, stored=stored)

    def run(self, history: UserHistory, request: Request, *, stored: bool) -> Recommendations:
        """The whole pipeline for one history. ``stored``: the history is the trained one."""
        parts = self.parts
        clock = StageClock()
        picks = self.picks_for(request)
        scored = scoring.score_candidates(
            parts, history, request, stored=stored, editor_picks=picks, clock=clock
        )
        top, top_scores = scoring.rank(parts, scored, self.ranker)
        clock.lap("rank")
        result = finish.rerank_scored(
            parts, scored, top, top_scores, request, parts.config.rerank, self.pins
        )
        clock.lap("rerank")
        ranked = finish.explain_result(parts, scored, result, request)
        clock.lap("explain")
        clock.total()
        cands = scored.candidates
        per_source = {
            name: int((cands.source_ranks[:, s] > 0).sum())
            for s, name in enumerate(cands.source_names)
        }
        return Recommendations(
            user_id=request.user_id,
            items=ranked,
            item_ids=[str(parts.items.ids[r.item_idx]) for r in ranked],
            model_version=self.model_version,
            config_hash=self.config_hash,
            n_candidates=len(cands),
            per_source=per_source,
            timings_ms=clock.timings,
        )

    # ----- stages, for training and tests ----------------------------------------------
    def constraints_for(self, request: Request) -> Constraints:
        """The request's constraints merged with its user's stored limits (the stricter)."""
        return self.parts.constraints_for(request)

    def eligible(self, history: UserHistory, request: Request) -> tuple[np.ndarray, np.ndarray]:
        """Filter stage: (eligible bool (n_items,), continue-watching items)."""
        return scoring.eligible_items(self.parts, history, request)

    def score_candidates(
        self,
        history: UserHistory,
        request: Request,
        *,
        stored: bool,
        timings: dict[str, float] | None = None,
    ) -> Scored:
        """Filter, recall and feature stages: candidates with their feature rows.

        ``timings`` (when given) receives the "recall" and "features" milliseconds.
        """
        return scoring.score_candidates(
            self.parts,
            history,
            request,
            stored=stored,
            editor_picks=self.picks_for(request),
            clock=StageClock(timings),
        )

    def rank(self, scored: Scored) -> tuple[np.ndarray, np.ndarray]:
        """Rank stage: (rows of the top ``top_n`` candidates, their ranker scores)."""
        return scoring.rank(self.parts, scored, self.ranker)

    def rerank(
        self,
        scored: Scored,
        top: np.ndarray,
        scores: np.ndarray,
        request: Request,
        config: RerankConfig | None = None,
    ) -> RerankResult:
        """Re-rank stage for the output of :meth:`rank`: the final top-``request.k``.

        ``config`` replaces the pipeline's re-rank policy for this call, so a policy
        search (:func:`cinerec.training.rerank_tuning.tune_rerank`) can score many
        policies on candidates scored and ranked once; None uses ``config.rerank``.
        """
        policy = self.config.rerank if config is None else config
        return finish.rerank_scored(self.parts, scored, top, scores, request, policy, self.pins)
