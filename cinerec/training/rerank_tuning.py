"""Choosing the re-ranking policy on validation: accuracy subject to a diversity floor.

Re-ranking trades accuracy for diversity, so its weights are not free parameters to
maximise NDCG with (that would always pick "no diversity"). The rule here: among a small
grid of MMR spaces and strengths and genre caps, keep the most accurate policy (NDCG@10 on
the carved validation users) whose genre diversity is at least the best single model's on
the same users plus a small margin — the hybrid must not narrow what people see. When no
policy reaches the floor, the most diverse one is kept. A catalog without genres has no
diversity to measure: the most accurate policy is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from cinerec.evaluation.beyond import intra_list_diversity
from cinerec.evaluation.metrics import ndcg_at_k
from cinerec.pipeline.config import PipelineConfig
from cinerec.pipeline.recommender import Recommender, Scored
from cinerec.pipeline.types import Request

#: Required diversity above the reference's on validation, so that the floor still holds
#: on new users (a few hundred validation users estimate it to about ±0.01).
DIVERSITY_MARGIN = 0.01
#: (mmr_space, mmr_lambda, genre_cap) policies tried, from "ranker order" to strongly
#: diversified; MMR over content vectors or over the genre sets.
RERANK_GRID: tuple[tuple[str, float, int | None], ...] = tuple(
    (space, lam, cap)
    for space in ("content", "genres")
    for cap in (None, 3)
    for lam in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
)


def tune_rerank(
    recommender: Recommender,
    truth: sp.csr_matrix,
    users: np.ndarray,
    *,
    k: int = 10,
    grid: tuple[tuple[str, float, int | None], ...] = RERANK_GRID,
    scored: dict[int, Scored] | None = None,
) -> tuple[PipelineConfig, dict[str, Any]]:
    """The pipeline config with the chosen re-rank policy, and a record of the search.

    ``recommender`` holds the stage-1 models and the chosen ranker; ``truth`` the held-out
    items (rows = users); ``users`` the validation users to measure on. ``scored``: users'
    candidates already scored for a default :class:`Request` (the ranker's training
    data), reused instead of computed again.
    """
    users = np.asarray(users, dtype=np.int64)
    genres = recommender.facts.genres
    reference = recommender.models[recommender.default_model]
    ref_top, _ = reference.recommend(users, k, exclude_seen=True)
    floor = _mean_diversity(ref_top, genres, k)
    request = Request(k=k)
    prepared = []
    known = scored or {}
    for user in users:
        found = known.get(int(user))
        if found is None:
            history = recommender.histories.get(int(user))
            found = recommender.score_candidates(history, request, stored=True)
        prepared.append((found, *recommender.rank(found)))
    rows = truth[users]
    tried: list[dict[str, Any]] = []
    base = recommender.config.rerank
    for space, lam, cap in grid:
        cfg = replace_rerank(base, mmr_space=space, mmr_lambda=lam, genre_cap=cap)
        ranked = np.full((len(users), k), -1, dtype=np.int64)
        for row, (candidates, top, scores) in enumerate(prepared):
            result = recommender.rerank(candidates, top, scores, request, cfg)
            ranked[row, : len(result.items)] = result.items
        tried.append(
            {
                "mmr_space": space,
                "mmr_lambda": lam,
                "genre_cap": cap,
                "ndcg@10": float(ndcg_at_k(ranked, rows, k).mean()),
                "diversity@10": _mean_diversity(ranked, genres, k),
            }
        )
    feasible = [t for t in tried if t["diversity@10"] >= floor + DIVERSITY_MARGIN]
    if np.isnan(floor):  # no genres: nothing to hold a floor on
        feasible = tried
    best = (
        max(feasible, key=lambda t: t["ndcg@10"])
        if feasible
        else max(tried, key=lambda t: t["diversity@10"])
    )
    data = recommender.config.model_dump()
    data["rerank"] = replace_rerank(
        base,
        mmr_space=best["mmr_space"],
        mmr_lambda=best["mmr_lambda"],
        genre_cap=best["genre_cap"],
    ).model_dump()
    record = {"chosen": best, "diversity_floor": floor, "reference": reference.name, "tried": tried}
    return PipelineConfig.model_validate(data), record


def _mean_diversity(ranked: np.ndarray, genres: sp.spmatrix, k: int) -> float:
    """Mean genre diversity of the lists; NaN (quietly) when no list has two genred items."""
    per_user = intra_list_diversity(ranked, genres, k)
    finite = np.isfinite(per_user)
    return float(per_user[finite].mean()) if finite.any() else float("nan")


def replace_rerank(base: Any, **changes: Any) -> Any:
    """A copy of a (frozen) RerankConfig with ``changes``."""
    return base.model_copy(update=changes)
