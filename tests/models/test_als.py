"""ALS and BPR: the model contract plus what the ``implicit`` wrappers must guarantee."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.evaluation.evaluator import evaluate_model
from cinerec.evaluation.splits import make_split
from cinerec.models.als import ALS, BPR
from cinerec.models.popularity import MostPopular
from tests.models.contract import COLD_ITEMS, ModelContract, history_of, synthetic_matrix
from tests.synthetic import clustered_dataset

ALS_PARAMS = {"factors": 8, "regularization": 0.05, "alpha": 10.0, "iterations": 10}
BPR_PARAMS = {"factors": 8, "learning_rate": 0.05, "regularization": 0.01, "iterations": 200}


class TestALSContract(ModelContract):
    def model_factory(self) -> ALS:
        return ALS(**ALS_PARAMS)


class TestBPRContract(ModelContract):
    def model_factory(self) -> BPR:
        return BPR(**BPR_PARAMS)


@pytest.fixture(scope="module")
def data() -> InteractionMatrix:
    return synthetic_matrix()


def test_als_factors_equal_a_direct_implicit_call(data: InteractionMatrix) -> None:
    model = ALS(**ALS_PARAMS, seed=3).fit(data)
    C = data.matrix.tocsr().astype(np.float32)
    C.data = 1 + np.float32(ALS_PARAMS["alpha"]) * C.data
    direct = AlternatingLeastSquares(
        factors=8, regularization=0.05, alpha=1.0, iterations=10, random_state=3, num_threads=1
    )
    direct.fit(C, show_progress=False)
    np.testing.assert_array_equal(model.user_factors, direct.user_factors)
    np.testing.assert_array_equal(model.item_factors, direct.item_factors)
    # Cold items: zero factors in implicit already, hence a neutral score of exactly 0.
    assert not model.item_factors[list(COLD_ITEMS)].any()
    assert not model.score(np.arange(data.n_users), items=np.array(COLD_ITEMS)).any()


def test_bpr_factors_equal_a_direct_implicit_call(data: InteractionMatrix) -> None:
    model = BPR(**BPR_PARAMS, seed=5).fit(data)
    direct = BayesianPersonalizedRanking(
        factors=8,
        learning_rate=0.05,
        regularization=0.01,
        iterations=200,
        random_state=5,
        num_threads=1,
    )
    direct.fit(data.matrix.tocsr().astype(np.float32), show_progress=False)
    warm = np.setdiff1d(np.arange(data.n_items), COLD_ITEMS)
    np.testing.assert_array_equal(model.user_factors, direct.user_factors)
    np.testing.assert_array_equal(model.item_factors[warm], direct.item_factors[warm])
    # Cold items: no taste factors, the lowest trained bias (implicit leaves them random).
    cold = model.item_factors[list(COLD_ITEMS)]
    assert not cold[:, :-1].any()
    assert (cold[:, -1] == model.item_factors[warm, -1].min()).all()


def test_als_fold_in_of_a_training_row_is_close_to_the_trained_factors() -> None:
    data = InteractionMatrix.build(clustered_dataset().interactions)
    model = ALS(factors=8, regularization=0.05, alpha=10.0, iterations=30).fit(data)
    users = np.arange(data.n_users)
    folded = model.fold_in(data.matrix.tocsr()[users])
    trained = model.score(users)
    refit = folded @ model.item_factors.T
    np.testing.assert_allclose(refit, trained, atol=0.02 * np.abs(trained).max())
    assert np.corrcoef(refit.ravel(), trained.ravel())[0, 1] > 0.999


def test_changed_history_is_folded_in_and_unchanged_rows_keep_their_factors(
    data: InteractionMatrix,
) -> None:
    model = ALS(**ALS_PARAMS).fit(data)
    rows = data.matrix.tocsr()[[0, 1]].tolil()
    rows[1, 25] = 1.0  # user 1 engaged with one more item at request time
    history = rows.tocsr()
    scores = model.score(np.array([0, 1]), user_items=history)
    np.testing.assert_allclose(scores[0], model.score(np.array([0]))[0], atol=1e-6)
    folded = model.fold_in(history[1]) @ model.item_factors.T
    np.testing.assert_allclose(scores[1], folded[0], atol=1e-6)
    # Users unknown to training (index out of range) are folded in too.
    new_user = model.score(np.array([data.n_users]), user_items=history[1])
    np.testing.assert_allclose(new_user, folded, atol=1e-6)


def test_bpr_fold_in_points_at_the_history(data: InteractionMatrix) -> None:
    model = BPR(**BPR_PARAMS).fit(data)
    history = history_of(data, [10, 11, 12, 13])
    top, _ = model.recommend(np.array([data.n_users + 5]), k=3, user_items=history)
    assert set(top[0].tolist()) <= set(range(14, 20))
    empty = model.score(np.array([0]), user_items=sp.csr_matrix((1, data.n_items)))
    np.testing.assert_allclose(empty[0], model.item_factors[:, -1], rtol=1e-6)


def test_als_beats_popularity_on_clustered_data() -> None:
    dataset = clustered_dataset(n_users=80)
    split = make_split("leave-last:2", dataset.interactions)
    train = InteractionMatrix.build(split.train, items=dataset.items)
    values = {}
    for model in (ALS(factors=16, iterations=15), MostPopular()):
        result = evaluate_model(
            model.fit(train), train, split.test, ks=(10,), progress=False, n_boot=0
        )
        values[model.name] = result.metrics["ndcg@10"]
    assert values["als"] > values["pop"] + 0.05


@pytest.mark.parametrize("cls", [ALS, BPR])
def test_bad_params_raise(cls: type[ALS] | type[BPR]) -> None:
    for bad in ({"factors": 0}, {"iterations": 2.5}, {"regularization": -1.0}, {"seed": -1}):
        with pytest.raises(ModelError):
            cls(**bad)
