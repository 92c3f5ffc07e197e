"""EASE: the contract plus the closed form checked against a direct numpy computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.ease import EASE
from tests.models.contract import ModelContract

# 5 users x 4 items; every item has at least one interaction.
X54 = np.array(
    [[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1]], dtype=np.float64
)


class TestEASEContract(ModelContract):
    def model_factory(self) -> EASE:
        return EASE(lam=5.0)


class TestEASEConfidenceContract(ModelContract):
    def model_factory(self) -> EASE:
        return EASE(lam=1.0, binarize=False)


def direct_ease(X: np.ndarray, lam: float) -> np.ndarray:
    P = np.linalg.inv(X.T @ X + lam * np.eye(X.shape[1]))
    B = np.eye(X.shape[1]) - P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def matrix_from(X: np.ndarray, extra_items: int = 0, event: str = "like") -> InteractionMatrix:
    users, items = np.nonzero(X)
    df = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{i}" for i in items],
            "event": event,
            "value": X[users, items],
            "timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    catalog = pd.DataFrame({"item_id": [f"i{i}" for i in range(X.shape[1] + extra_items)]})
    return InteractionMatrix.build(df, items=catalog)


@pytest.mark.parametrize("lam", [0.5, 10.0])
def test_matches_direct_numpy(lam: float) -> None:
    model = EASE(lam=lam).fit(matrix_from(X54))
    B = direct_ease(X54, lam)
    assert model.weights is not None
    np.testing.assert_allclose(model.weights, B, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score(np.arange(5)), X54 @ B, rtol=1e-5, atol=1e-6)
    assert (np.diag(model.weights) == 0).all()


@pytest.mark.parametrize("lam", [0.5, 10.0])
def test_fewer_users_than_items_matches_direct_numpy(lam: float) -> None:
    """The users x users (Woodbury) path gives the same closed form."""
    X = np.random.default_rng(0).binomial(1, 0.4, size=(6, 15)).astype(np.float64)
    X[0, :] = 1.0  # every item has an interaction
    model = EASE(lam=lam).fit(matrix_from(X))
    B = direct_ease(X, lam)
    assert model.weights is not None and model.weights.shape == (15, 15)
    np.testing.assert_allclose(model.weights, B, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score(np.arange(6)), X @ B, rtol=1e-5, atol=1e-6)
    assert (np.diag(model.weights) == 0).all()


def test_confidence_input() -> None:
    ratings = X54 * np.array([[5], [4], [3], [2], [1]])  # rating / 5 is the confidence
    model = EASE(lam=2.0, binarize=False).fit(matrix_from(ratings, event="rating"))
    X = ratings / 5.0
    np.testing.assert_allclose(
        model.score(np.arange(5)), X @ direct_ease(X, 2.0), rtol=1e-4, atol=1e-6
    )


def test_items_without_interactions_score_zero() -> None:
    data = matrix_from(X54, extra_items=3)
    model = EASE(lam=10.0).fit(data)
    scores = model.score(np.arange(5))
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(scores[:, 4:], 0.0)
    np.testing.assert_allclose(scores[:, :4], X54 @ direct_ease(X54, 10.0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.score(np.arange(5), items=np.array([6, 5])), 0.0)
    assert model.weights is not None and model.weights.shape == (4, 4)


def test_max_items_limit() -> None:
    with pytest.raises(ModelError, match="max_items"):
        EASE(max_items=3).fit(matrix_from(X54))
    EASE(max_items=4).fit(matrix_from(X54, extra_items=10))  # only active items count


def test_bad_params_rejected() -> None:
    with pytest.raises(ModelError, match="lam"):
        EASE(lam=0)
    with pytest.raises(ModelError, match="max_items"):
        EASE(max_items=0)
