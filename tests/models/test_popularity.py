"""MostPopular and Trending: the contract plus hand-checked rankings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.base import Model, get_model_class
from cinerec.models.popularity import MostPopular, Trending
from tests.models.contract import ModelContract, synthetic_matrix

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def frame(rows: list[tuple[str, str, str, float, pd.Timestamp]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "event", "value", "timestamp"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df


def days_ago(days: float) -> pd.Timestamp:
    return T0 - pd.Timedelta(days=days)


class TestMostPopularContract(ModelContract):
    history_sensitive = False

    def model_factory(self) -> MostPopular:
        return MostPopular()


class TestMostPopularConfidenceContract(ModelContract):
    history_sensitive = False

    def model_factory(self) -> MostPopular:
        return MostPopular(weighting="confidence")


class TestTrendingContract(ModelContract):
    history_sensitive = False

    def model_factory(self) -> Trending:
        return Trending(window_days=14)


class TestTrendingDecayContract(ModelContract):
    history_sensitive = False

    def model_factory(self) -> Trending:
        return Trending(window_days=30, half_life_days=7)


@pytest.fixture
def small() -> InteractionMatrix:
    # a: 3 users long ago; b: 2 users recently (one of them twice); c: 1 user, recent;
    # d: 1 user long ago (with a low rating); e: catalog only.
    rows = [
        ("u1", "a", "like", 1.0, days_ago(100)),
        ("u2", "a", "like", 1.0, days_ago(90)),
        ("u3", "a", "view", 1.0, days_ago(80)),
        ("u1", "b", "like", 1.0, days_ago(3)),
        ("u2", "b", "view", 1.0, days_ago(2)),
        ("u2", "b", "like", 1.0, days_ago(1)),
        ("u3", "c", "like", 1.0, days_ago(0)),
        ("u4", "d", "rating", 1.0, days_ago(200)),
    ]
    catalog = pd.DataFrame({"item_id": ["a", "b", "c", "d", "e"]})
    return InteractionMatrix.build(frame(rows), items=catalog)


def ranking(model: MostPopular | Trending, data: InteractionMatrix) -> list[str]:
    scores = model.score(np.array([0]))[0]
    order = np.lexsort((np.arange(len(scores)), -scores))
    return [str(data.items.ids[i]) for i in order]


def test_most_popular_counts_distinct_users(small: InteractionMatrix) -> None:
    model = MostPopular().fit(small)
    np.testing.assert_array_equal(model.score(np.array([0]))[0], [3, 2, 1, 1, 0])
    assert ranking(model, small) == ["a", "b", "c", "d", "e"]


def test_most_popular_confidence_sums(small: InteractionMatrix) -> None:
    model = MostPopular(weighting="confidence").fit(small)
    # like = 1.0, view = 0.3 (max per user and item), a 1-star rating = 1/5.
    expected = [1.0 + 1.0 + 0.3, 1.0 + 1.0, 1.0, 0.2, 0.0]
    np.testing.assert_allclose(model.score(np.array([0]))[0], expected, rtol=1e-6)


def test_most_popular_same_for_every_user(small: InteractionMatrix) -> None:
    scores = MostPopular().fit(small).score(np.arange(small.n_users))
    assert (scores == scores[0]).all()


def test_bad_params_rejected() -> None:
    with pytest.raises(ModelError, match="weighting"):
        MostPopular(weighting="clicks")
    with pytest.raises(ModelError, match="window_days"):
        Trending(window_days=0)
    with pytest.raises(ModelError, match="half_life_days"):
        Trending(half_life_days=-1)


def test_trending_window_picks_recent_items(small: InteractionMatrix) -> None:
    recent = Trending(window_days=7).fit(small)
    np.testing.assert_array_equal(recent.trend, [0, 2, 1, 0, 0])
    # b, c are in the window; the rest follow by all-time popularity (a before d), and
    # the never-seen e comes last.
    assert ranking(recent, small) == ["b", "c", "a", "d", "e"]
    everything = Trending(window_days=3650).fit(small)
    np.testing.assert_array_equal(everything.trend, [3, 2, 1, 1, 0])
    assert ranking(everything, small) == ["a", "b", "c", "d", "e"]


def test_trending_window_ends_at_last_training_event(small: InteractionMatrix) -> None:
    # "c" happened at the last timestamp; a 1-day window holds it and b's latest event
    # from exactly one day earlier is just outside (the window is (end - 1 day, end]).
    model = Trending(window_days=1).fit(small)
    np.testing.assert_array_equal(model.trend, [0, 0, 1, 0, 0])
    assert ranking(model, small)[:2] == ["c", "a"]


def test_trending_half_life_decays_by_latest_event(small: InteractionMatrix) -> None:
    model = Trending(window_days=7, half_life_days=1).fit(small)
    # b: u1 three days ago (1/8) + u2's latest event one day ago (1/2); c: today (1).
    np.testing.assert_allclose(model.trend, [0, 0.125 + 0.5, 1.0, 0, 0])
    assert ranking(model, small)[:2] == ["c", "b"]


def test_trending_scores_are_distinct_ranks(small: InteractionMatrix) -> None:
    scores = Trending(window_days=7).fit(small).score(np.array([0]))[0]
    np.testing.assert_allclose(np.sort(scores)[::-1], [1.0, 0.8, 0.6, 0.4, 0.2])


def test_trending_without_events() -> None:
    empty = frame([("u1", "a", "skip", 1.0, T0)])  # skips never become positives
    data = InteractionMatrix.build(empty, items=pd.DataFrame({"item_id": ["a", "b"]}))
    model = Trending().fit(data)
    np.testing.assert_array_equal(model.trend, [0, 0])
    assert np.isfinite(model.score(np.array([0]))).all()


class TestRandomContract(ModelContract):
    history_sensitive = False

    def model_factory(self) -> Model:
        return get_model_class("random")(seed=3)


def test_random_scores_are_per_user_and_independent_of_the_batch() -> None:
    data = synthetic_matrix()
    model = get_model_class("random")(seed=1).fit(data)
    both = model.score(np.array([0, 1]))
    assert not np.allclose(both[0], both[1])
    np.testing.assert_array_equal(model.score(np.array([1]))[0], both[1])
