"""The pipeline offline: built over fitted models, evaluated like a model, scoring in batch.

:func:`build_recommender` assembles a :class:`Recommender` from models fitted on an
interaction matrix (its events become the stored histories); :class:`PipelineModel` lets
:func:`~cinerec.evaluation.evaluator.evaluate_model` score the whole pipeline, one user at a
time through :meth:`Recommender.run` — the same call the API makes; :func:`recommend_users`
is batch scoring through the same pipeline. Training the pipeline's ranker lives above
evaluation, in :mod:`cinerec.training.ranker`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from cinerec.data.matrix import InteractionMatrix
from cinerec.models.base import Model
from cinerec.pipeline.config import PipelineConfig
from cinerec.pipeline.rankers import Ranker
from cinerec.pipeline.recommender import Recommender, Request
from cinerec.pipeline.state import HistoryStore


def build_recommender(
    models: dict[str, Model],
    matrix: InteractionMatrix,
    config: PipelineConfig,
    ranker: Ranker | None = None,
    *,
    default_model: str | None = None,
    model_version: str = "unversioned",
) -> Recommender:
    """A Recommender over models fitted on ``matrix`` (its events become the histories)."""
    catalog = matrix.catalog
    if catalog is None:
        catalog = pd.DataFrame({"item_id": matrix.items.ids})
    return Recommender(
        models,
        matrix.users,
        matrix.items,
        catalog,
        HistoryStore.from_events(matrix.events, matrix.n_users),
        config,
        ranker,
        default_model=default_model,
        model_version=model_version,
    )


class PipelineModel:
    """The whole pipeline behind the model interface evaluation uses (``recommend``).

    Each user goes through :meth:`Recommender.run` with their stored history — the same
    call the API makes — so offline metrics measure what users get.
    """

    name = "hybrid"

    def __init__(self, recommender: Recommender, request: Request | None = None) -> None:
        self.recommender = recommender
        self.request = request or Request()
        ranker = recommender.ranker
        self.params = {
            "config": recommender.config_hash,
            "ranker": ranker.kind if ranker is not None else "none",
        }

    @property
    def n_users(self) -> int:
        return len(self.recommender.users)

    @property
    def n_items(self) -> int:
        return len(self.recommender.items)

    def recommend(
        self,
        user_idx: np.ndarray,
        k: int = 10,
        exclude_seen: bool = True,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (indices, scores) per user, padded with -1 / -inf."""
        if items is not None or user_items is not None or not exclude_seen:
            raise NotImplementedError("the pipeline ranks the whole catalog, seen items excluded")
        top = np.full((len(user_idx), k), -1, dtype=np.int64)
        scores = np.full((len(user_idx), k), -np.inf, dtype=np.float32)
        request = replace(self.request, k=k)
        for row, user in enumerate(np.asarray(user_idx, dtype=np.int64)):
            history = self.recommender.histories.get(int(user))
            result = self.recommender.run(history, request, stored=True)
            n = len(result.items)
            top[row, :n] = [r.item_idx for r in result.items]
            scores[row, :n] = [r.score for r in result.items]
        return top, scores


def recommend_users(
    recommender: Recommender,
    user_ids: list[str] | None = None,
    k: int = 10,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """Batch scoring through the pipeline: user_id, item_id, score, rank, reason, sources.

    ``user_ids`` None scores every known user; unknown ids get the cold-start answer.
    """
    ids = list(recommender.users.ids) if user_ids is None else list(user_ids)
    rows: list[tuple[str, str, float, int, str, str]] = []
    for user in tqdm(ids, desc="recommending", disable=not progress, leave=False):
        result = recommender.recommend(Request(user_id=str(user), k=k))
        for item, item_id in zip(result.items, result.item_ids, strict=True):
            sources = ",".join(item.sources)
            rows.append((str(user), item_id, item.score, item.rank, item.reason.text, sources))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank", "reason", "sources"])
