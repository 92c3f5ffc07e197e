"""ItemKNN: the contract plus similarities and scores checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.itemknn import ItemKNN, item_similarity
from tests.models.contract import ModelContract, synthetic_matrix

# 4 users x 3 items: u0 {0, 1}, u1 {0, 1, 2}, u2 {0}, u3 {1, 2}.
BINARY = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [1, 0, 0], [0, 1, 1]], dtype=np.float32))


class TestItemKNNContract(ModelContract):
    def model_factory(self) -> ItemKNN:
        return ItemKNN(neighbors=10, shrink=5.0)


class TestItemKNNConfidenceContract(ModelContract):
    def model_factory(self) -> ItemKNN:
        return ItemKNN(neighbors=5, shrink=0.0, binarize=False)


def small_matrix() -> InteractionMatrix:
    users, items = BINARY.nonzero()
    df = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{i}" for i in items],
            "event": "like",
            "value": 1.0,
            "timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    return InteractionMatrix.build(df, items=pd.DataFrame({"item_id": ["i0", "i1", "i2"]}))


def test_shrunk_cosine_by_hand() -> None:
    S = item_similarity(BINARY, neighbors=10, shrink=10.0).toarray()
    # norms: item 0 and 1 have 3 users each, item 2 has 2; co-occurrences 0-1: 2,
    # 0-2: 1, 1-2: 2.
    s01 = 2 / (3 + 10)
    s02 = 1 / (math.sqrt(3 * 2) + 10)
    s12 = 2 / (math.sqrt(3 * 2) + 10)
    expected = np.array([[0, s01, s02], [s01, 0, s12], [s02, s12, 0]])
    np.testing.assert_allclose(S, expected, rtol=1e-6)


def test_shrink_zero_is_plain_cosine() -> None:
    S = item_similarity(BINARY, neighbors=10, shrink=0.0).toarray()
    dense = BINARY.toarray().astype(np.float64)
    cos = dense.T @ dense / np.outer(np.linalg.norm(dense, axis=0), np.linalg.norm(dense, axis=0))
    np.fill_diagonal(cos, 0.0)
    np.testing.assert_allclose(S, cos, rtol=1e-6)


def test_neighbors_keeps_most_similar_per_row() -> None:
    S = item_similarity(BINARY, neighbors=1, shrink=10.0)
    assert np.diff(S.indptr).tolist() == [1, 1, 1]
    # row 0: 2/13 > 1/12.45 -> item 1; row 1: 2/12.45 > 2/13 -> item 2; row 2 -> item 1.
    assert S.indices.tolist() == [1, 2, 1]


def test_scores_are_history_times_similarity() -> None:
    data = small_matrix()
    model = ItemKNN(neighbors=10, shrink=10.0).fit(data)
    S = item_similarity(BINARY, neighbors=10, shrink=10.0).toarray()
    np.testing.assert_allclose(
        model.score(np.arange(4)), BINARY.toarray() @ S, rtol=1e-6, atol=1e-7
    )
    only_item0 = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    np.testing.assert_allclose(
        model.score(np.array([0]), user_items=only_item0)[0],
        [0, 2 / 13, 1 / (math.sqrt(6) + 10)],
        rtol=1e-6,
    )


def test_confidence_weighting_by_hand() -> None:
    X = sp.csr_matrix(np.array([[1.0, 0.5], [0.2, 1.0], [0.0, 0.3]], dtype=np.float32))
    S = item_similarity(X, neighbors=5, shrink=1.0).toarray()
    dense = X.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=0)
    s01 = (1.0 * 0.5 + 0.2 * 1.0) / (norms[0] * norms[1] + 1.0)
    np.testing.assert_allclose(S, [[0, s01], [s01, 0]], rtol=1e-5)


def brute_force(X: sp.csr_matrix, neighbors: int, shrink: float) -> np.ndarray:
    dense = X.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=0)
    sim = dense.T @ dense / (np.outer(norms, norms) + shrink)
    sim = np.nan_to_num(sim)
    np.fill_diagonal(sim, 0.0)
    out = np.zeros_like(sim)
    for i, row in enumerate(sim):
        order = np.lexsort((np.arange(len(row)), -row))[:neighbors]
        keep = order[row[order] > 0]
        out[i, keep] = row[keep]
    return out


@pytest.mark.parametrize("shrink", [0.0, 3.0])
def test_matches_brute_force_with_ties(shrink: float) -> None:
    rng = np.random.default_rng(3)
    X = sp.csr_matrix((rng.random((60, 35)) < 0.15).astype(np.float32))
    S = item_similarity(X, neighbors=4, shrink=shrink)
    np.testing.assert_allclose(S.toarray(), brute_force(X, 4, shrink), rtol=1e-6)


def test_blocking_does_not_change_result() -> None:
    X = synthetic_matrix().matrix
    whole = item_similarity(X, neighbors=7, shrink=2.0)
    tiny_blocks = item_similarity(X, neighbors=7, shrink=2.0, block_nnz=1)
    assert (whole != tiny_blocks).nnz == 0


def test_cold_items_have_no_neighbours() -> None:
    data = synthetic_matrix()
    model = ItemKNN(neighbors=10, shrink=0.0).fit(data)
    assert model.similarity is not None
    cold = np.flatnonzero(np.diff(data.matrix.tocsc().indptr) == 0)
    assert cold.size and model.similarity[cold].nnz == 0
    assert model.similarity[:, cold].nnz == 0


def test_bad_params_rejected() -> None:
    with pytest.raises(ModelError, match="neighbors"):
        ItemKNN(neighbors=0)
    with pytest.raises(ModelError, match="shrink"):
        ItemKNN(shrink=-1)
