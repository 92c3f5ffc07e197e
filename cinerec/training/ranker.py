"""Training the pipeline's ranker on a validation carve, with the online code path.

Two-stage training, as in every production recommender: the base models are fitted on
the training part minus each user's latest interactions (the validation carve); the
:class:`Recommender` built on them produces candidates and features for every carved user
exactly as it would online; the held-out interactions label the candidates. Rankers are
trained on 80% of those users and compared on the other 20% (full candidate lists,
NDCG@10); the best one — or no ranker at all, when none beats the single best model's
order — is kept, then the re-rank policy is tuned (:mod:`cinerec.training.rerank_tuning`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from rich.console import Console
from tqdm.auto import tqdm

from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.splits import Split
from cinerec.models.base import get_model_class
from cinerec.pipeline.config import PipelineConfig
from cinerec.pipeline.offline import build_recommender
from cinerec.pipeline.rankers import Ranker, RankingData, make_ranker, ndcg_at_k
from cinerec.pipeline.recommender import Recommender, Request, Scored
from cinerec.training.rerank_tuning import tune_rerank

RANKER_KINDS = ("lightgbm", "neural", "fusion")


def held_out_truth(train: InteractionMatrix, test: pd.DataFrame) -> sp.csr_matrix:
    """(n_users, n_items) 0/1 CSR of test items, minus what the user saw in training."""
    truth = (train.encode_like(test).matrix > 0).astype(np.float32)
    truth = (truth - truth.multiply(train.matrix > 0)).tocsr()
    truth.eliminate_zeros()
    return truth


@dataclass
class CandidateStats:
    """How well recall covers the held-out items: the ceiling for any ranker."""

    users: int = 0
    recall: float = 0.0  # mean over users of |held-out ∩ candidates| / |held-out|
    mean_candidates: float = 0.0
    per_source_recall: dict[str, float] = field(default_factory=dict)
    query_users: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per query


def ranking_data(
    recommender: Recommender,
    truth: sp.csr_matrix,
    *,
    negatives: int | None = None,
    seed: int = 0,
    progress: bool = False,
    keep: dict[int, Scored] | None = None,
) -> tuple[RankingData, CandidateStats]:
    """Labelled candidate rows for every user with held-out items in ``truth``.

    Queries without a single held-out item among their candidates are left out (nothing
    to learn). ``negatives`` keeps at most that many random negatives per query (all
    positives kept) — training rows; None keeps every candidate (evaluation rows).
    ``keep``, when given, receives each query user's scored candidates (the re-rank
    search reuses them instead of computing them again).
    """
    rng = np.random.default_rng(seed)
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    blocks: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    sizes: list[int] = []
    query_users: list[int] = []
    recalls: list[float] = []
    n_cands: list[int] = []
    source_hits: dict[str, list[float]] = {}
    for user in tqdm(users, desc="candidates", disable=not progress, leave=False):
        positives = truth.indices[truth.indptr[user] : truth.indptr[user + 1]]
        history = recommender.histories.get(int(user))
        scored = recommender.score_candidates(history, Request(), stored=True)
        cands = scored.candidates
        hit = np.isin(cands.items, positives)
        recalls.append(hit.sum() / len(positives))
        n_cands.append(len(cands))
        for s, name in enumerate(cands.source_names):
            found = (cands.source_ranks[:, s] > 0) & hit
            source_hits.setdefault(name, []).append(found.sum() / len(positives))
        if not hit.any():
            continue
        if keep is not None:
            keep[int(user)] = scored
        rows = np.arange(len(cands))
        if negatives is not None:
            neg = rows[~hit]
            if len(neg) > negatives:
                neg = rng.choice(neg, negatives, replace=False)
            rows = np.sort(np.concatenate([rows[hit], neg]))
        query_users.append(int(user))
        blocks.append(scored.features[rows])
        labels.append(hit[rows].astype(np.float32))
        sizes.append(len(rows))
    names = recommender.features.names
    width = len(names)
    data = RankingData(
        features=np.vstack(blocks) if blocks else np.zeros((0, width), np.float32),
        labels=np.concatenate(labels) if labels else np.zeros(0, np.float32),
        group_sizes=np.asarray(sizes, dtype=np.int64),
        feature_names=names,
        feature_groups=recommender.features.groups,
    )
    stats = CandidateStats(
        users=len(users),
        recall=float(np.mean(recalls)) if recalls else 0.0,
        mean_candidates=float(np.mean(n_cands)) if n_cands else 0.0,
        per_source_recall={k: float(np.mean(v)) for k, v in source_hits.items()},
        query_users=np.asarray(query_users, dtype=np.int64),
    )
    return data, stats


@dataclass
class RankerChoice:
    """The rankers tried, their validation NDCG@10, and the one kept (None: model order)."""

    chosen: Ranker | None
    chosen_kind: str
    validation: dict[str, float]
    stats: CandidateStats
    seconds: dict[str, float] = field(default_factory=dict)
    valid_users: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rerank: dict[str, Any] = field(default_factory=dict)  # what tune_rerank chose, and why
    config: PipelineConfig | None = None  # the config with the tuned re-rank policy
    #: each query user's scored candidates (from ranking_data), for the re-rank search
    scored: dict[int, Scored] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranker": self.chosen_kind,
            "rerank": self.rerank,
            "validation_ndcg@10": {k: round(v, 5) for k, v in self.validation.items()},
            "candidate_recall": round(self.stats.recall, 4),
            "mean_candidates": round(self.stats.mean_candidates, 1),
            "per_source_recall": {k: round(v, 4) for k, v in self.stats.per_source_recall.items()},
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def choose_ranker(
    recommender: Recommender,
    truth: sp.csr_matrix,
    *,
    kinds: tuple[str, ...] = RANKER_KINDS,
    preferred: str = "auto",
    negatives: int = 200,
    valid_share: float = 0.2,
    seed: int = 0,
    progress: bool = False,
    prepared: tuple[RankingData, CandidateStats] | None = None,
) -> RankerChoice:
    """Train each ranker kind on 80% of the carved users, keep the best on the other 20%.

    ``preferred`` other than "auto" forces that kind ("none": no ranker). The baseline
    "none" is the default model's order within the candidates (its z-score column).
    ``prepared``: the full-candidate :func:`ranking_data` of ``truth``, when computed.
    """

    console = Console(stderr=True, quiet=not progress)
    started = time.perf_counter()
    kept: dict[int, Scored] = {}
    if prepared is None:
        prepared = ranking_data(
            recommender, truth, negatives=None, seed=seed, progress=progress, keep=kept
        )
    data, stats = prepared
    seconds = {"candidates": time.perf_counter() - started}
    console.log(
        f"recall: {stats.recall:.3f} of held-out items among {stats.mean_candidates:.0f} "
        f"candidates per user ({data.n_queries} users with a hit)"
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(data.n_queries)
    n_valid = max(1, round(valid_share * data.n_queries))
    valid = data.subset_queries(np.sort(order[:n_valid]))
    train = _sample_negatives(data.subset_queries(np.sort(order[n_valid:])), negatives, rng)
    baseline_col = data.feature_names.index(f"z.{recommender.default_model}")

    scores = {"none": ndcg_at_k(valid.features[:, baseline_col], valid.labels, valid.group_sizes)}
    fitted: dict[str, Ranker] = {}
    wanted = kinds if preferred == "auto" else tuple(k for k in kinds if k == preferred)
    if wanted and (train.n_queries == 0 or data.n_queries < 2):  # one user, say
        console.log(
            f"ranker: {data.n_queries} validation user(s) with a candidate hit, too few to "
            "train and compare rankers on; the default model's order is kept"
        )
        wanted = ()
    for kind in wanted:
        mark = time.perf_counter()
        params: dict[str, Any] = {}
        if kind == "fusion":
            params["columns"] = recommender.features.fusion_columns()
        ranker = make_ranker(kind, **params).fit(train, valid, seed=seed, progress=progress)
        fitted[kind] = ranker
        scores[kind] = ranker.evaluate(valid)
        seconds[kind] = time.perf_counter() - mark
        console.log(f"ranker {kind}: validation NDCG@10 {scores[kind]:.4f} ({seconds[kind]:.0f}s)")
    if preferred == "auto":
        best = max(scores, key=lambda k: scores[k])
    else:
        best = preferred if preferred in scores else "none"
    valid_users = stats.query_users[np.sort(order[:n_valid])]
    return RankerChoice(fitted.get(best), best, scores, stats, seconds, valid_users, scored=kept)


def train_ranker(
    validation: Split,
    items: pd.DataFrame | None,
    item_index: IdIndex,
    params: dict[str, dict[str, Any]],
    config: PipelineConfig,
    *,
    default_model: str,
    seed: int = 0,
    progress: bool = False,
) -> RankerChoice:
    """Fit each model (``params``: name → hyperparameters) on the validation carve's
    training part, build the pipeline on them and choose its ranker on the held-out part.
    """
    carve = InteractionMatrix.build(validation.train, items=items, item_index=item_index)
    stage1 = {name: get_model_class(name)(**p).fit(carve) for name, p in params.items()}
    recommender = build_recommender(stage1, carve, config, default_model=default_model)
    truth = held_out_truth(carve, validation.test)
    choice = choose_ranker(
        recommender, truth, preferred=config.rank.ranker, seed=seed, progress=progress
    )
    choice.config = config
    if config.rerank.tune and len(choice.valid_users):
        recommender.ranker = choice.chosen
        users = choice.stats.query_users  # every carved user with a candidate hit
        choice.config, choice.rerank = tune_rerank(recommender, truth, users, scored=choice.scored)
        choice.scored = {}  # ~100 MB on the demo data: not kept past the search
    return choice


def _sample_negatives(data: RankingData, negatives: int, rng: np.random.Generator) -> RankingData:
    keep: list[np.ndarray] = []
    sizes: list[int] = []
    start = 0
    for size in data.group_sizes:
        rows = np.arange(start, start + size)
        pos = rows[data.labels[rows] > 0]
        neg = rows[data.labels[rows] <= 0]
        if len(neg) > negatives:
            neg = rng.choice(neg, negatives, replace=False)
        chosen = np.sort(np.concatenate([pos, neg]))
        keep.append(chosen)
        sizes.append(len(chosen))
        start += size
    rows = np.concatenate(keep) if keep else np.zeros(0, np.int64)
    return replace(
        data,
        features=data.features[rows],
        labels=data.labels[rows],
        group_sizes=np.asarray(sizes, dtype=np.int64),
    )
