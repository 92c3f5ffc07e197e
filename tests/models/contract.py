"""The behaviour every cinerec model must show, as a reusable test mixin.

A model's test module subclasses :class:`ModelContract` as ``TestXxxContract`` and sets
:meth:`ModelContract.model_factory`; pytest then runs every ``test_*`` method below
against that model. Non-personalised models set ``history_sensitive = False``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.base import Model, get_model_class, load_model
from cinerec.models.space import FloatRange, IntRange

N_USERS = 30
N_ITEMS = 40
N_GROUPS = 3
#: Catalog items no one interacted with (they must still score finitely).
COLD_ITEMS = tuple(range(34, 40))
DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2024-01-01", tz="UTC")


def synthetic_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interactions and catalog with a clear block structure.

    Users u0..u29 fall into three taste groups of ten; group g mostly engages with items
    10g..10g+9 (each user with a random 4-7 of them, over 60 days), plus one random
    "noise" item from 30..33. Items 34..39 exist only in the catalog.
    """
    rng = np.random.default_rng(7)
    rows = []
    for user in range(N_USERS):
        group = user % N_GROUPS
        block = np.arange(10 * group, 10 * group + 10)
        liked = rng.choice(block, size=int(rng.integers(4, 8)), replace=False)
        picks = [*liked.tolist(), int(rng.integers(30, 34))]
        for item in picks:
            event = str(rng.choice(["rating", "like", "view"]))
            value = float(rng.integers(1, 6)) if event == "rating" else 1.0
            when = START + DAY * float(rng.uniform(0, 60))
            rows.append((f"u{user}", f"i{item}", event, value, when))
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "event", "value", "timestamp"])
    interactions["timestamp"] = pd.to_datetime(interactions["timestamp"], utc=True)
    catalog = pd.DataFrame({"item_id": [f"i{i}" for i in range(N_ITEMS)]})
    return interactions, catalog


def synthetic_matrix() -> InteractionMatrix:
    interactions, catalog = synthetic_frames()
    return InteractionMatrix.build(interactions, items=catalog)


def history_of(data: InteractionMatrix, items: list[int], n_rows: int = 1) -> sp.csr_matrix:
    """A request-time history: the same ``items`` (confidence 1) on each of ``n_rows``."""
    dense = np.zeros((n_rows, data.n_items), dtype=np.float32)
    dense[:, items] = 1.0
    return sp.csr_matrix(dense)


class ModelContract:
    """Mixin of contract tests; subclasses override :meth:`model_factory`."""

    #: False for models whose scores ignore the user's history (popularity, trending).
    history_sensitive: ClassVar[bool] = True

    def model_factory(self) -> Model:
        """A new, unfitted model with small, fast parameters."""
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> InteractionMatrix:
        return synthetic_matrix()

    @pytest.fixture
    def fitted(self, data: InteractionMatrix) -> Model:
        return self.model_factory().fit(data)

    @staticmethod
    def all_users(data: InteractionMatrix) -> np.ndarray:
        return np.arange(data.n_users)

    # ----- sanity of the fixture itself ------------------------------------------------
    def test_fixture_has_cold_items(self, data: InteractionMatrix) -> None:
        cold = data.items.lookup([f"i{i}" for i in COLD_ITEMS])
        assert data.matrix[:, cold].nnz == 0
        assert data.n_users == N_USERS and data.n_items == N_ITEMS

    # ----- score -------------------------------------------------------------------------
    def test_score_shape_dtype_finite(self, fitted: Model, data: InteractionMatrix) -> None:
        scores = fitted.score(self.all_users(data))
        assert scores.shape == (data.n_users, data.n_items)
        assert scores.dtype == np.float32
        assert np.isfinite(scores).all()

    def test_score_empty_batches(self, fitted: Model, data: InteractionMatrix) -> None:
        assert fitted.score(np.array([], dtype=np.int64)).shape == (0, data.n_items)
        empty_items = fitted.score(np.array([0, 1]), items=np.array([], dtype=np.int64))
        assert empty_items.shape == (2, 0)

    def test_items_restricts_columns(self, fitted: Model, data: InteractionMatrix) -> None:
        users = self.all_users(data)
        items = np.array([5, 0, 39, 12, 33, 21, 5])
        full = fitted.score(users)
        part = fitted.score(users, items=items)
        assert part.shape == (len(users), len(items))
        assert part.dtype == np.float32
        np.testing.assert_allclose(part, full[:, items], rtol=1e-5, atol=1e-6)

    def test_user_index_out_of_range(self, fitted: Model, data: InteractionMatrix) -> None:
        with pytest.raises(ModelError):
            fitted.score(np.array([data.n_users]))
        with pytest.raises(ModelError):
            fitted.score(np.array([-1]))

    # ----- recommend ---------------------------------------------------------------------
    def test_recommend_excludes_seen(self, fitted: Model, data: InteractionMatrix) -> None:
        users = self.all_users(data)
        k = 5
        top, top_scores = fitted.recommend(users, k=k)
        assert top.shape == (len(users), k) and top.dtype == np.int64
        assert top_scores.shape == (len(users), k) and top_scores.dtype == np.float32
        scores = fitted.score(users)
        seen = data.matrix.tocsr()
        for row, user in enumerate(users):
            recs = top[row]
            assert (recs >= 0).all() and (recs < data.n_items).all()
            assert len(set(recs.tolist())) == k
            assert not set(recs.tolist()) & set(seen[user].indices.tolist())
            assert (np.diff(top_scores[row]) <= 0).all()
            np.testing.assert_allclose(top_scores[row], scores[row, recs], rtol=1e-6)
            left_out = np.setdiff1d(np.arange(data.n_items), [*seen[user].indices, *recs])
            # Nothing left out scores higher than the k-th recommendation.
            assert scores[row, left_out].max() <= top_scores[row, -1] + 1e-6

    def test_recommend_can_include_seen(self, fitted: Model, data: InteractionMatrix) -> None:
        top, _ = fitted.recommend(np.array([0]), k=data.n_items, exclude_seen=False)
        assert sorted(top[0].tolist()) == list(range(data.n_items))

    def test_recommend_pads_when_few_eligible(self, fitted: Model, data: InteractionMatrix) -> None:
        user = 0
        seen = data.matrix.tocsr()[user].indices
        unseen = np.setdiff1d(np.arange(data.n_items), seen)[:2]
        candidates = np.concatenate([seen, unseen])
        top, top_scores = fitted.recommend(np.array([user]), k=10, items=candidates)
        assert sorted(top[0, :2].tolist()) == sorted(unseen.tolist())
        assert (top[0, 2:] == -1).all()
        assert np.isneginf(top_scores[0, 2:]).all()
        top, top_scores = fitted.recommend(np.array([user]), k=data.n_items + 3)
        n_unseen = data.n_items - len(seen)
        assert (top[0, :n_unseen] >= 0).all() and (top[0, n_unseen:] == -1).all()
        assert np.isfinite(top_scores[0, :n_unseen]).all()

    def test_recommend_with_candidates(self, fitted: Model, data: InteractionMatrix) -> None:
        candidates = np.array([39, 3, 17, 25, 31, 8])
        top, _ = fitted.recommend(self.all_users(data), k=3, items=candidates)
        assert np.isin(top[top >= 0], candidates).all()

    # ----- request-time history ----------------------------------------------------------
    def test_user_items_matches_training_rows(self, fitted: Model, data: InteractionMatrix) -> None:
        users = np.array([0, 4, 17])
        history = data.matrix.tocsr()[users]
        np.testing.assert_allclose(
            fitted.score(users, user_items=history), fitted.score(users), rtol=1e-6
        )

    def test_user_items_changes_scores(self, fitted: Model, data: InteractionMatrix) -> None:
        users = np.array([0])  # a group-0 user, handed a group-2 history instead
        before = fitted.score(users)
        after = fitted.score(users, user_items=history_of(data, [20, 21, 22, 23]))
        assert after.shape == before.shape and np.isfinite(after).all()
        if self.history_sensitive:
            assert not np.allclose(after, before)
            # The new history points at group 2: its unseen items should now lead.
            top, _ = fitted.recommend(users, k=3, user_items=history_of(data, [20, 21, 22, 23]))
            assert set(top[0].tolist()) <= set(range(24, 30))
        else:
            np.testing.assert_array_equal(after, before)

    def test_user_items_excluded_from_recommend(
        self, fitted: Model, data: InteractionMatrix
    ) -> None:
        history = history_of(data, [0, 1, 2, 20, 35], n_rows=2)
        top, _ = fitted.recommend(np.array([0, 1]), k=10, user_items=history)
        assert not np.isin(top, [0, 1, 2, 20, 35]).any()

    def test_user_items_shape_checked(self, fitted: Model, data: InteractionMatrix) -> None:
        with pytest.raises(ModelError):
            fitted.score(np.array([0, 1]), user_items=history_of(data, [1], n_rows=1))

    # ----- persistence -------------------------------------------------------------------
    def test_save_load_round_trip(
        self, fitted: Model, data: InteractionMatrix, tmp_path: Path
    ) -> None:
        folder = tmp_path / "bundle"
        fitted.save(folder)
        assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))
        with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
            for key in npz.files:
                assert npz[key].dtype != object
        meta = json.loads((folder / "model.json").read_text())
        assert meta["name"] == fitted.name
        loaded = load_model(folder)
        assert type(loaded) is type(fitted)
        assert loaded.params == fitted.params
        users = self.all_users(data)
        np.testing.assert_array_equal(loaded.score(users), fitted.score(users))
        items = np.array([3, 38, 11])
        np.testing.assert_array_equal(
            loaded.score(users, items=items), fitted.score(users, items=items)
        )
        for got, want in zip(
            loaded.recommend(users, k=7), fitted.recommend(users, k=7), strict=True
        ):
            np.testing.assert_array_equal(got, want)

    # ----- determinism and errors --------------------------------------------------------
    def test_deterministic(self, data: InteractionMatrix) -> None:
        users = self.all_users(data)
        first = self.model_factory().fit(data).score(users)
        second = self.model_factory().fit(data).score(users)
        np.testing.assert_array_equal(first, second)

    def test_unfitted_raises(self, tmp_path: Path) -> None:
        model = self.model_factory()
        with pytest.raises(ModelError):
            model.score(np.array([0]))
        with pytest.raises(ModelError):
            model.recommend(np.array([0]))
        with pytest.raises(ModelError):
            model.save(tmp_path / "never")

    def test_unknown_param_raises(self) -> None:
        with pytest.raises(ModelError, match="no_such_param"):
            type(self.model_factory())(no_such_param=1)

    def test_search_space_is_valid(self) -> None:
        cls = type(self.model_factory())
        defaults = cls.default_params()
        json.dumps(defaults)
        for key, entry in cls.search_space().items():
            assert key in defaults
            if isinstance(entry, IntRange | FloatRange):
                assert defaults[key] in entry  # the first (enqueued) trial is the default
                for value in (entry.low, entry.high):
                    cls(**{key: value})  # both bounds are accepted
                continue
            assert isinstance(entry, list) and entry
            json.dumps(entry)
            for value in entry:
                cls(**{key: value})  # every grid value is accepted

    def test_registered_by_name(self) -> None:
        model = self.model_factory()
        assert get_model_class(model.name) is type(model)

    # ----- similar_items ("more like this") ------------------------------------------------
    def test_similar_items_contract(self, fitted: Model, data: InteractionMatrix) -> None:
        """Models that relate items return their own block's items; others refuse clearly."""
        anchors = data.items.lookup(["i0", "i10", "i20"])
        if not fitted.relates_items:
            with pytest.raises(ModelError, match="cannot find similar items"):
                fitted.similar_items(anchors, 5)
            return
        top, scores = fitted.similar_items(anchors, 5)
        assert top.shape == scores.shape == (3, 5)
        assert top.dtype == np.int64 and scores.dtype == np.float32
        for row, anchor in enumerate(anchors):
            found = top[row][top[row] >= 0]
            assert anchor not in found and len(found) > 0
            assert np.all(np.diff(scores[row][: len(found)]) <= 0)  # best first
            assert np.isneginf(scores[row][len(found) :]).all()  # padding after the hits
            # the synthetic tastes are blocks of ten items: most neighbours share the block
            block = int(data.items.ids[anchor][1:]) // 10
            same = [int(data.items.ids[i][1:]) // 10 == block for i in found]
            assert sum(same) > len(same) / 2
        with pytest.raises(ModelError, match="out of range"):
            fitted.similar_items(np.array([data.n_items]), 3)
