"""evaluate_model / evaluate_predictions / evaluate_rankings on tiny data."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.evaluator import (
    NO_GENRES,
    evaluate_model,
    evaluate_predictions,
    evaluate_rankings,
    genre_features,
)
from cinerec.models.base import Model

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def frame(rows: list[tuple[str, str]], event: str = "watch", value: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [u for u, _ in rows],
            "item_id": [i for _, i in rows],
            "event": event,
            "value": np.float32(value),
            "watch_seconds": np.nan,
            "timestamp": [T0 + pd.Timedelta(minutes=n) for n in range(len(rows))],
            "session_id": None,
        }
    )


class FixedScores(Model):
    """Scores item j for every user as a fixed table row (tests only; not registered)."""

    name: ClassVar[str] = "fixed"

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.table = np.asarray(table, dtype=np.float32)

    def _fit(self, data: InteractionMatrix) -> None:
        assert self.table.shape == data.matrix.shape

    def score(self, user_idx, items=None, user_items=None) -> np.ndarray:
        out = self.table[np.asarray(user_idx)]
        return out if items is None else out[:, items]

    def _state(self) -> dict[str, np.ndarray]:
        return {"table": self.table}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.table = arrays["table"]


ITEMS = [f"i{j}" for j in range(6)]
TRAIN = frame([("u0", "i0"), ("u1", "i1"), ("u2", "i2"), ("u3", "i0"), ("u3", "i5")])


@pytest.fixture
def setup() -> tuple[InteractionMatrix, FixedScores]:
    train = InteractionMatrix.build(TRAIN, items=pd.DataFrame({"item_id": ITEMS}))
    # every user ranks items by descending index (seen ones get excluded)
    model = FixedScores(np.tile(np.arange(6, dtype=np.float32), (train.n_users, 1)))
    return train, model.fit(train)


def test_evaluate_model_hand_checked(setup) -> None:
    train, model = setup
    test = pd.concat(
        [
            frame([("u0", "i5"), ("u1", "i3"), ("u2", "i0")]),
            frame([("u3", "i4")], event="skip", value=1.0),  # a skip is not relevant
            frame([("cold", "i5"), ("cold2", "i1")]),  # two users training never saw
            frame([("u1", "zz")]),  # item outside the catalog: dropped
        ],
        ignore_index=True,
    )
    r = evaluate_model(model, train, test, ks=(1, 2), progress=False)
    # lists: u0 [5, 4], u1 [5, 4], u2 [5, 4]; hits: u0 at 1, others none in top 2
    assert r.n_users == 3
    assert r.n_cold_users == 2
    assert r.metrics["precision@1"] == pytest.approx(1 / 3)
    assert r.metrics["recall@2"] == pytest.approx(1 / 3)
    assert r.metrics["mrr@2"] == pytest.approx(1 / 3)
    assert r.metrics["coverage@2"] == pytest.approx(2 / 6)
    # novelty over 4 training users: item 5 seen by 1 -> 2 bits, item 4 unseen -> 2 bits
    assert r.metrics["novelty@2"] == pytest.approx(2.0)
    assert r.metrics["arp@2"] == pytest.approx(0.5)
    assert r.per_user["ndcg@2"].shape == (3,)
    low, high = r.intervals["precision@1"]
    assert 0.0 <= low <= r.metrics["precision@1"] <= high <= 1.0
    json.dumps(r.to_dict(), allow_nan=False)
    assert "per_user" not in r.to_dict()


def test_seen_items_leave_truth_and_min_rating(setup) -> None:
    train, model = setup
    test = pd.concat(
        [
            frame([("u3", "i0")]),  # seen in training: cannot be recommended, not truth
            frame([("u3", "i4")]),
            frame([("u0", "i4")], event="rating", value=2.0),
        ],
        ignore_index=True,
    )
    r = evaluate_model(model, train, test, ks=(1,), progress=False)
    assert r.n_users == 2
    assert r.metrics["precision@1"] == pytest.approx(0.5)  # u3 [4] hit, u0 [5] miss
    r = evaluate_model(model, train, test, ks=(1,), progress=False, min_rating=3.0)
    assert r.n_users == 1
    assert r.metrics["precision@1"] == 1.0
    r = evaluate_model(model, train, test, ks=(1,), progress=False, relevant_events={"rating"})
    assert r.n_users == 1
    assert r.metrics["hitrate@1"] == 0.0


def test_predictions_agree_with_model() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 30
    pairs = [(f"u{u}", f"i{j}") for u in range(n_users) for j in rng.permutation(n_items)[:8]]
    df = frame(pairs)
    train_df, test_df = df.iloc[::2], df.iloc[1::2]  # disjoint (user, item) pairs
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(n_items)]})
    train = InteractionMatrix.build(train_df, items=items)
    table = rng.random((train.n_users, n_items)).astype(np.float32)
    model = FixedScores(table).fit(train)
    genres = (rng.random((n_items, 5)) < 0.4).astype(np.float32)
    ks = (1, 5, 10)
    by_model = evaluate_model(model, train, test_df, ks, progress=False, item_features=genres)
    users = np.arange(train.n_users)
    top, scores = model.recommend(users, 10)
    valid = top >= 0
    preds = pd.DataFrame(
        {
            "user_id": np.repeat(train.users.ids, 10)[valid.ravel()],
            "item_id": train.items.ids[np.maximum(top, 0)].ravel()[valid.ravel()],
            "score": scores.ravel()[valid.ravel()],
        }
    ).sample(frac=1.0, random_state=1)  # order must not matter
    extra = pd.DataFrame({"user_id": ["nobody"], "item_id": ["i0"], "score": [1.0]})
    by_preds = evaluate_predictions(
        pd.concat([preds, extra]), test_df, ks=ks, train=train, item_features=genres
    )
    assert by_preds.n_users == by_model.n_users
    assert by_preds.metrics.keys() == by_model.metrics.keys()
    assert "diversity@5" in by_model.metrics and "diversity@1" not in by_model.metrics
    for key, value in by_model.metrics.items():
        assert by_preds.metrics[key] == pytest.approx(value, nan_ok=True), key
    for key, value in by_model.intervals.items():
        assert by_preds.intervals[key] == pytest.approx(value), key


def test_predictions_rank_column_missing_users_and_duplicates() -> None:
    truth = frame([("a", "x"), ("a", "y"), ("b", "x"), ("c", "z")])
    preds = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b"],
            "item_id": ["q", "x", "x", "y", "x"],
            "score": [0.0, 0.0, 0.0, 9.0, 1.0],
            "rank": [2, 1, 3, 1, 2],  # rank wins over score
        }
    )
    r = evaluate_predictions(preds, truth, k=2)
    # a: [x, q] -> 1 hit of 2; b: [y, x] -> hit at 2; c: no predictions -> zero hits
    assert r.n_users == 3
    assert r.per_user["precision@2"].tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert r.per_user["mrr@2"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert r.per_user["recall@2"].tolist() == pytest.approx([0.5, 1.0, 0.0])
    by_score = evaluate_predictions(preds.drop(columns="rank"), truth, k=1)
    assert by_score.per_user["precision@1"].tolist() == [0.0, 0.0, 0.0]  # b's top is y
    with pytest.raises(Exception, match="score"):
        evaluate_predictions(preds.drop(columns=["rank", "score"]), truth)
    train_df = frame([("a", "x"), ("b", "q"), ("b", "x")])
    with_train = evaluate_predictions(preds, truth, k=2, train=train_df)
    assert with_train.n_cold_users == 1  # c
    assert with_train.metrics["arp@2"] == pytest.approx((2 + 1) / 2 / 2 + (0 + 2) / 2 / 2)


def test_predictions_scale_without_python_loops() -> None:
    rng = np.random.default_rng(2)
    n_users, k = 100_000, 10
    users = np.repeat(np.arange(n_users), k).astype(str)
    preds = pd.DataFrame(
        {"user_id": users, "item_id": rng.integers(0, 5000, n_users * k).astype(str)}
    )
    preds["score"] = rng.random(len(preds))
    truth = pd.DataFrame(
        {"user_id": np.arange(n_users).astype(str), "item_id": rng.integers(0, 5000, n_users)}
    ).astype(str)
    r = evaluate_predictions(preds, truth, k=k)
    assert r.n_users == n_users
    assert r.seconds < 30


def test_evaluate_rankings_drops_users_without_truth() -> None:
    ranked = np.array([[0, 1], [1, 0]])
    truth = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0]]))
    r = evaluate_rankings(ranked, truth, (2,), name="x")
    assert r.n_users == 1
    assert r.metrics["ndcg@2"] == pytest.approx((1 / np.log2(3)) / 1.0)
    assert r.ks == (2,)


def test_genre_features_or_why_diversity_is_skipped() -> None:
    index = IdIndex.from_ids(["a", "b", "c"])
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "genres": [["Drama"], [], None]})
    matrix, note = genre_features(items, index)
    assert note is None and matrix is not None
    assert matrix.toarray().tolist() == [[1.0], [0.0], [0.0]]
    for no_genres in (items.assign(genres=[[], None, []]), items[["item_id"]]):
        matrix, note = genre_features(no_genres, index)
        assert matrix is None and note == NO_GENRES
