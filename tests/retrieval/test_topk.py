"""top_k: deterministic row-wise selection shared by models and indexes."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cinerec.retrieval.topk import top_k


def test_top_k_orders_best_first() -> None:
    idx, val = top_k(np.array([[0.1, 0.9, 0.5, 0.7]], dtype=np.float32), 3)
    assert idx.tolist() == [[1, 3, 2]]
    np.testing.assert_allclose(val, [[0.9, 0.7, 0.5]], rtol=1e-6)
    assert idx.dtype == np.int64 and val.dtype == np.float32


def test_top_k_ties_go_to_lower_index_even_at_the_cut() -> None:
    scores = np.zeros((2, 200), dtype=np.float32)
    scores[0, 150] = 1.0
    idx, _ = top_k(scores, 3)
    assert idx.tolist() == [[150, 0, 1], [0, 1, 2]]
    idx, _ = top_k(np.array([[2, 1, 2, 1, 2]], dtype=np.float32), 4)
    assert idx.tolist() == [[0, 2, 4, 1]]


def test_top_k_pads_minus_inf_and_short_rows() -> None:
    scores = np.array([[1.0, -np.inf, 3.0], [-np.inf, -np.inf, -np.inf]], dtype=np.float32)
    idx, val = top_k(scores, 5)
    assert idx.tolist() == [[2, 0, -1, -1, -1], [-1, -1, -1, -1, -1]]
    assert val[0, :2].tolist() == [3.0, 1.0]
    assert np.isneginf(val[0, 2:]).all() and np.isneginf(val[1]).all()


def test_top_k_never_returns_nan() -> None:
    idx, _ = top_k(np.array([[np.nan, 0.5, np.nan]], dtype=np.float32), 3)
    assert idx.tolist() == [[1, -1, -1]]


def test_top_k_k_larger_than_items_and_zero() -> None:
    idx, val = top_k(np.array([[0.2, 0.4]], dtype=np.float32), 4)
    assert idx.tolist() == [[1, 0, -1, -1]] and val.shape == (1, 4)
    idx, val = top_k(np.ones((3, 5), dtype=np.float32), 0)
    assert idx.shape == (3, 0) and val.shape == (3, 0)
    idx, val = top_k(np.ones((0, 5), dtype=np.float32), 2)
    assert idx.shape == (0, 2)


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(1, 12)),
        elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, -np.inf]),
    ),
    st.integers(0, 15),
)
def test_top_k_matches_a_stable_sort(scores: np.ndarray, k: int) -> None:
    idx, val = top_k(scores, k)
    for row, got, got_val in zip(scores, idx, val, strict=True):
        order = [j for j in np.lexsort((np.arange(len(row)), -row)) if np.isfinite(row[j])][:k]
        expected = order + [-1] * (k - len(order))
        assert got.tolist() == expected
        np.testing.assert_array_equal(got_val[: len(order)], row[order])
