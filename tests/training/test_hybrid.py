"""Training a hybrid: ranker choice on held-out interactions, re-rank tuning, the bundle,
and the offline protocol that runs the hybrid beside its parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cinerec.data.dataset import Dataset
from cinerec.data.matrix import InteractionMatrix
from cinerec.evaluation.splits import make_split
from cinerec.models.base import Model
from cinerec.pipeline.config import default_config
from cinerec.pipeline.offline import build_recommender
from cinerec.pipeline.persist import load_recommender
from cinerec.pipeline.recommender import Request
from cinerec.training.protocol import run_protocol
from cinerec.training.ranker import choose_ranker, held_out_truth, ranking_data, train_ranker
from cinerec.training.rerank_tuning import DIVERSITY_MARGIN, tune_rerank
from cinerec.training.train import train_bundle
from tests.pipeline.conftest import dataset, fitted_models, rich_dataset

__all__ = ["dataset"]  # the module-scoped fixture, shared with the pipeline tests
BASE_MODELS = ("pop", "itemknn", "ease", "als")


@pytest.fixture(scope="module")
def carve(dataset: Dataset) -> tuple[InteractionMatrix, np.ndarray, dict[str, Model]]:
    split = make_split("leave-last:3", dataset.interactions)
    train = InteractionMatrix.build(split.train, items=dataset.items)
    return train, held_out_truth(train, split.test), fitted_models(train)


def test_ranking_data_labels_the_held_out_items(carve) -> None:
    train, truth, models = carve
    recommender = build_recommender(models, train, default_config(list(models)))
    data, stats = ranking_data(recommender, truth, negatives=20, seed=1)
    assert data.n_queries > 0 and data.features.shape[1] == len(recommender.features.names)
    assert set(np.unique(data.labels)) <= {0.0, 1.0}
    starts = np.concatenate([[0], np.cumsum(data.group_sizes)[:-1]])
    for start, size in zip(starts, data.group_sizes, strict=True):
        labels = data.labels[start : start + size]
        assert labels.sum() >= 1 and (labels == 0).sum() <= 20
    assert 0 < stats.recall <= 1
    assert set(stats.per_source_recall) >= {"als", "ease", "itemknn"}


def test_choose_ranker_compares_every_kind_with_the_model_order(carve) -> None:
    train, truth, models = carve
    recommender = build_recommender(models, train, default_config(list(models)))
    choice = choose_ranker(recommender, truth, seed=0)
    assert set(choice.validation) == {"none", "lightgbm", "neural", "fusion"}
    best = max(choice.validation, key=lambda k: choice.validation[k])
    assert choice.chosen_kind == best
    assert (choice.chosen is None) == (best == "none")
    assert all(0 <= v <= 1 for v in choice.validation.values())


def test_hybrid_bundle_round_trip(tmp_path: Path) -> None:
    data = rich_dataset(seed=3)
    report = train_bundle(
        data, tmp_path / "bundle", model_names=BASE_MODELS, validation_spec="leave-last:3",
        progress=False,
    )  # fmt: skip
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    pipeline = manifest["pipeline"]
    assert pipeline["ranker"] == report.pipeline["ranker"]
    assert "pipeline/config.json" in manifest["files"]
    assert "pipeline/histories.npz" in manifest["files"]
    has_ranker = any(f.startswith("pipeline/ranker/") for f in manifest["files"])
    assert (pipeline["ranker"] == "none") != has_ranker
    recommender = load_recommender(tmp_path / "bundle")
    assert recommender.config_hash == pipeline["config_hash"]
    first = recommender.recommend(Request(user_id="u1", k=10))
    again = load_recommender(tmp_path / "bundle").recommend(Request(user_id="u1", k=10))
    assert first.item_ids == again.item_ids and len(first.item_ids) == 10
    assert first.model_version == again.model_version


def test_protocol_runs_the_hybrid_beside_the_models() -> None:
    models = (*BASE_MODELS, "hybrid")
    run = run_protocol(rich_dataset(seed=5), "leave-last:2", models, ks=(10,), progress=False)
    names = [r.model for r in run.results]
    assert names[-1] == "hybrid" and names[:-1] == list(BASE_MODELS)
    hybrid = run.results[-1]
    assert hybrid.metrics["ndcg@10"] > run.results[0].metrics["ndcg@10"]  # beats popularity
    assert "ranker" in hybrid.params and "candidate_recall" in hybrid.params


def test_rerank_policy_is_chosen_under_a_diversity_floor(dataset: Dataset) -> None:

    validation = make_split("leave-last:3", dataset.interactions)
    matrix = InteractionMatrix.build(dataset.interactions, items=dataset.items)
    params = {name: {} for name in BASE_MODELS}
    choice = train_ranker(
        validation, dataset.items, matrix.items, params, default_config(list(params)),
        default_model="ease",
    )  # fmt: skip
    record = choice.rerank
    assert record["tried"] and choice.config is not None
    chosen = record["chosen"]
    floor = record["diversity_floor"] + DIVERSITY_MARGIN
    feasible = [t for t in record["tried"] if t["diversity@10"] >= floor]
    if feasible:
        assert chosen["diversity@10"] >= floor
        assert chosen["ndcg@10"] == max(t["ndcg@10"] for t in feasible)
    assert choice.config.rerank.mmr_lambda == chosen["mmr_lambda"]
    assert choice.config.rerank.genre_cap == chosen["genre_cap"]


def test_rerank_search_reuses_the_ranker_datas_candidates(carve) -> None:
    """Scored candidates kept by ranking_data give the re-rank search the same answer as
    scoring them again, and are not scored again."""
    train, truth, models = carve
    recommender = build_recommender(models, train, default_config(list(models)))
    kept: dict = {}
    _, stats = ranking_data(recommender, truth, negatives=None, keep=kept)
    assert set(kept) == set(stats.query_users.tolist()) and kept
    fresh_config, fresh = tune_rerank(recommender, truth, stats.query_users)
    scored_calls = []
    original = recommender.score_candidates
    recommender.score_candidates = lambda *a, **kw: scored_calls.append(1) or original(*a, **kw)
    reused_config, reused = tune_rerank(recommender, truth, stats.query_users, scored=kept)
    assert not scored_calls
    assert reused == fresh and reused_config == fresh_config
