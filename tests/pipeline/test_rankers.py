"""Rankers: the NDCG metric, learning a non-linear synthetic task, persistence, misuse."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from cinerec.errors import ModelError
from cinerec.pipeline.rankers import (
    FusionRanker,
    LightGBMRanker,
    NeuralRanker,
    Ranker,
    RankingData,
    load_ranker,
    make_ranker,
    ndcg_at_k,
)

ROWS = 200
NAMES = tuple(f"f{i}" for i in range(8))
GROUPS = {"models": (0, 1, 2), "item": (3, 4), "noise": (5, 6, 7)}
LGB_PARAMS = {"threads": 1}
NN_PARAMS = {"epochs": 12, "queries_per_batch": 4, "lr": 3e-3, "patience": 4, "threads": 1}
FUSION_COLUMNS = {"cf": "f0", "content": "f5", "sequence": "not_a_feature"}
ALLOWED_SUFFIXES = {".json", ".txt", ".safetensors"}


def synthetic(queries: int, seed: int) -> RankingData:
    """Queries of 200 rows, 8 features in 3 groups; relevance is non-linear in f0 and f1.

    utility = f0 + 1.5·|f1| − 0.5·f0·f1 + noise; graded labels 1 / 2 above two thresholds
    (~8% positive). f2..f4 are weak/irrelevant, f5..f7 pure noise (f5 with 5% NaN).
    """
    rng = np.random.default_rng(seed)
    n = queries * ROWS
    x = rng.normal(size=(n, 8)).astype(np.float32)
    utility = x[:, 0] + 1.5 * np.abs(x[:, 1]) - 0.5 * x[:, 0] * x[:, 1]
    utility += rng.normal(scale=0.3, size=n)
    labels = (utility > 3.2).astype(np.float32) + (utility > 4.2).astype(np.float32)
    x[rng.random(n) < 0.05, 5] = np.nan
    return RankingData(x, labels, np.full(queries, ROWS), NAMES, GROUPS)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def train() -> RankingData:
    return synthetic(40, seed=1)


@pytest.fixture(scope="module")
def valid() -> RankingData:
    return synthetic(20, seed=2)


@pytest.fixture(scope="module")
def baselines(valid: RankingData) -> dict[str, float]:
    """Random scores (mean of 5 draws) and the best single feature, either direction."""
    rng = np.random.default_rng(0)
    random = np.mean(
        [
            ndcg_at_k(rng.random(len(valid.labels)), valid.labels, valid.group_sizes)
            for _ in range(5)
        ]
    )
    single = max(
        ndcg_at_k(sign * valid.features[:, j], valid.labels, valid.group_sizes)
        for j in range(valid.features.shape[1])
        for sign in (1.0, -1.0)
    )
    return {"random": float(random), "single": float(single)}


@pytest.fixture(scope="module")
def fitted(train: RankingData, valid: RankingData) -> dict[str, Ranker]:
    return {
        "lightgbm": LightGBMRanker(**LGB_PARAMS).fit(train, valid, seed=0),
        "neural": NeuralRanker(**NN_PARAMS).fit(train, valid, seed=0),
        "fusion": FusionRanker(columns=FUSION_COLUMNS).fit(train, valid),
    }


# ----- the metric ------------------------------------------------------------------------
def test_ndcg_hand_computed() -> None:
    labels = np.array([2, 1, 0], dtype=np.float32)
    sizes = np.array([3])
    assert ndcg_at_k(np.array([3.0, 2.0, 1.0]), labels, sizes) == pytest.approx(1.0)
    # Swap the two relevant rows: DCG = 1/log2(2) + 3/log2(3), IDCG = 3 + 1/log2(3).
    expected = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert ndcg_at_k(np.array([2.0, 3.0, 1.0]), labels, sizes) == pytest.approx(expected)
    assert expected == pytest.approx(0.79670, abs=1e-5)
    # k = 1: only the top row counts.
    assert ndcg_at_k(np.array([2.0, 3.0, 1.0]), labels, sizes, k=1) == pytest.approx(1 / 3)


def test_ndcg_ties_skips_and_nan() -> None:
    # Equal scores keep row order: [0, 1] ranks the relevant row second.
    tie = ndcg_at_k(np.zeros(2), np.array([0.0, 1.0]), np.array([2]))
    assert tie == pytest.approx(1 / math.log2(3))
    # A query without positives is left out of the mean; NaN scores rank last.
    scores = np.array([1.0, np.nan, 0.5, 0.2, 0.1])
    labels = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    both = ndcg_at_k(scores, labels, np.array([2, 3]))
    assert both == pytest.approx(ndcg_at_k(scores[:2], labels[:2], np.array([2])))
    assert both == pytest.approx((1 + 1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(np.array([np.nan, 1.0]), np.array([0.0, 1.0]), np.array([2])) == 1.0
    assert ndcg_at_k(np.zeros(3), np.zeros(3), np.array([3])) == 0.0
    with pytest.raises(ModelError):
        ndcg_at_k(np.zeros(3), np.zeros(3), np.array([2]))


# ----- the data ----------------------------------------------------------------------
def test_ranking_data_checks_and_subsets() -> None:
    data = RankingData(
        np.arange(12, dtype=np.float32).reshape(6, 2),
        np.array([0, 1, 0, 0, 2, 1]),
        np.array([2, 1, 3]),
        ("a", "b"),
    )
    assert data.feature_groups == {"all": (0, 1)}
    sub = data.subset_queries(np.array([2, 0]))
    np.testing.assert_array_equal(sub.group_sizes, [3, 2])
    np.testing.assert_array_equal(sub.labels, [0, 2, 1, 0, 1])
    np.testing.assert_array_equal(sub.features[:, 0], [6, 8, 10, 0, 2])
    with pytest.raises(ModelError):
        RankingData(data.features, data.labels, np.array([2, 2]), ("a", "b"))
    with pytest.raises(ModelError):
        RankingData(data.features, data.labels, data.group_sizes, ("a", "b"), {"x": (0,)})
    with pytest.raises(ModelError):
        data.subset_queries(np.array([3]))


# ----- learning ----------------------------------------------------------------------
def test_baselines_are_what_the_task_intends(baselines: dict[str, float]) -> None:
    assert baselines["random"] < 0.15
    assert baselines["single"] < 0.5  # no single column solves the non-linear task


@pytest.mark.parametrize("kind", ["lightgbm", "neural"])
def test_learned_rankers_beat_every_single_feature(
    kind: str, fitted: dict[str, Ranker], valid: RankingData, baselines: dict[str, float]
) -> None:
    ranker = fitted[kind]
    assert ranker.kind == kind
    assert ranker.validation_ndcg is not None
    assert ranker.validation_ndcg > baselines["single"] + 0.25
    assert ranker.validation_ndcg > baselines["random"] + 0.5
    assert ranker.evaluate(valid) == pytest.approx(ranker.validation_ndcg, abs=1e-6)
    scores = ranker.predict(valid.features[:ROWS])
    assert scores.dtype == np.float32 and scores.shape == (ROWS,)
    assert np.isfinite(scores).all()


def test_lightgbm_importances_favour_informative_features(fitted: dict[str, Ranker]) -> None:
    ranker = fitted["lightgbm"]
    assert isinstance(ranker, LightGBMRanker)
    gains = ranker.importances()
    assert set(gains) == set(NAMES)
    assert min(gains["f0"], gains["f1"]) > max(gains[f"f{i}"] for i in range(2, 8))


def test_lightgbm_without_valid_trains_all_rounds(train: RankingData) -> None:
    ranker = LightGBMRanker(n_estimators=15, threads=1).fit(train)
    assert ranker.validation_ndcg is None
    assert ranker.booster is not None and ranker.booster.num_trees() == 15


def test_fusion_weights_informative_over_noise(
    fitted: dict[str, Ranker], valid: RankingData, baselines: dict[str, float]
) -> None:
    ranker = fitted["fusion"]
    assert isinstance(ranker, FusionRanker)
    assert set(ranker.weights) == {"cf", "content"}  # "sequence" has no column: dropped
    assert ranker.weights["cf"] > ranker.weights["content"]
    assert ranker.validation_ndcg is not None
    assert ranker.validation_ndcg > baselines["random"] + 0.1
    assert ranker.evaluate(valid) == pytest.approx(ranker.validation_ndcg, abs=1e-6)


def test_fusion_scores_each_query_on_its_own(fitted: dict[str, Ranker], valid: RankingData) -> None:
    ranker = fitted["fusion"]
    x = valid.features[: 3 * ROWS].copy()
    x[ROWS : 2 * ROWS] += 100.0  # a shift of one query must not change its ranking
    grouped = ranker.predict_groups(x, np.array([ROWS, ROWS, ROWS]))
    one_by_one = np.concatenate([ranker.predict(x[i * ROWS : (i + 1) * ROWS]) for i in range(3)])
    np.testing.assert_allclose(grouped, one_by_one, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        grouped[ROWS : 2 * ROWS], ranker.predict(valid.features[ROWS : 2 * ROWS]), atol=1e-4
    )
    with pytest.raises(ModelError):
        ranker.predict_groups(x, np.array([ROWS, ROWS]))


def test_fusion_without_any_known_column_raises(train: RankingData) -> None:
    with pytest.raises(ModelError):
        FusionRanker(columns={"cf": "nope"}).fit(train)


def test_neural_is_seeded_and_restores_threads(train: RankingData) -> None:
    small = train.subset_queries(np.arange(12))
    params = {**NN_PARAMS, "epochs": 2, "threads": 1}
    torch.set_num_threads(2)
    try:
        a = NeuralRanker(**params).fit(small, seed=3)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    b = NeuralRanker(**params).fit(small, seed=3)
    assert a.validation_ndcg is None
    np.testing.assert_array_equal(a.predict(small.features), b.predict(small.features))


# ----- persistence and misuse ----------------------------------------------------------
@pytest.mark.parametrize("kind", ["lightgbm", "neural", "fusion"])
def test_save_load_round_trip_without_pickle(
    kind: str, fitted: dict[str, Ranker], valid: RankingData, tmp_path: Path
) -> None:
    ranker = fitted[kind]
    folder = tmp_path / kind
    ranker.save(folder)
    suffixes = {p.suffix for p in folder.rglob("*") if p.is_file()}
    assert suffixes <= ALLOWED_SUFFIXES, suffixes
    assert json.loads((folder / "ranker.json").read_text())["kind"] == kind
    loaded = load_ranker(folder)
    assert type(loaded) is type(ranker)
    assert loaded.feature_names == ranker.feature_names
    assert loaded.validation_ndcg == ranker.validation_ndcg
    np.testing.assert_array_equal(
        loaded.predict_groups(valid.features, valid.group_sizes),
        ranker.predict_groups(valid.features, valid.group_sizes),
    )
    assert isinstance(type(ranker).load(folder), type(ranker))
    other = FusionRanker if kind != "fusion" else LightGBMRanker
    with pytest.raises(ModelError):
        other.load(folder)


@pytest.mark.parametrize("kind", ["lightgbm", "neural", "fusion"])
def test_predict_checks_columns_and_fit(kind: str, fitted: dict[str, Ranker]) -> None:
    with pytest.raises(ModelError):
        fitted[kind].predict(np.zeros((5, 7), dtype=np.float32))
    with pytest.raises(ModelError):
        fitted[kind].predict(np.zeros(8, dtype=np.float32))
    with pytest.raises(ModelError):
        make_ranker(kind).predict(np.zeros((5, 8), dtype=np.float32))
    assert fitted[kind].predict(np.zeros((0, 8), dtype=np.float32)).shape == (0,)


def test_make_and_load_reject_unknown_kinds(tmp_path: Path) -> None:
    assert isinstance(make_ranker("lightgbm", num_leaves=7), LightGBMRanker)
    assert isinstance(make_ranker("fusion", columns={"cf": "f0"}), FusionRanker)
    with pytest.raises(ModelError):
        make_ranker("xgboost")
    with pytest.raises(ModelError):
        make_ranker("neural", layers=3)
    (tmp_path / "ranker.json").write_text(json.dumps({"kind": "xgboost", "format_version": 1}))
    with pytest.raises(ModelError):
        load_ranker(tmp_path)
    with pytest.raises(ModelError):
        load_ranker(tmp_path / "missing")
