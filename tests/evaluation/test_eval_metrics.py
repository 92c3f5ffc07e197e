"""Ranking metrics: hand-computed cases, a brute-force reference and properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cinerec.evaluation.metrics import (
    bootstrap_ci,
    bootstrap_cis,
    hit_matrix,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

A, B, C, D, E, F = range(6)
N_ITEMS = 6


def truth_of(rows: list[set[int]], n_items: int = N_ITEMS) -> sp.csr_matrix:
    data = [(u, i) for u, items in enumerate(rows) for i in items]
    r = [u for u, _ in data]
    c = [i for _, i in data]
    return sp.csr_matrix((np.ones(len(data)), (r, c)), shape=(len(rows), n_items))


def test_brief_example_abc_vs_bd() -> None:
    ranked = np.array([[A, B, C]])
    truth = truth_of([{B, D}])
    m = ranking_metrics(ranked, truth, (1, 2, 3))
    g3 = 1 / math.log2(3)
    assert m["precision@3"][0] == pytest.approx(1 / 3)
    assert m["recall@3"][0] == pytest.approx(1 / 2)
    assert m["ndcg@3"][0] == pytest.approx(g3 / (1 + g3))
    assert m["mrr@3"][0] == pytest.approx(1 / 2)
    assert m["map@3"][0] == pytest.approx((1 / 2) / 2)
    assert m["hitrate@3"][0] == 1.0
    # k = 1: the only slot holds a, a miss
    for name in ("precision", "recall", "ndcg", "mrr", "map", "hitrate"):
        assert m[f"{name}@1"][0] == 0.0
    # k = 2: b at rank 2; ideal DCG over min(2, 2) = 2 slots
    assert m["precision@2"][0] == pytest.approx(1 / 2)
    assert m["ndcg@2"][0] == pytest.approx(g3 / (1 + g3))
    assert m["map@2"][0] == pytest.approx((1 / 2) / 2)


def test_two_hits_three_relevant() -> None:
    # ranked d, a, b, e; relevant {b, d, f}: hits at ranks 1 and 3
    ranked = np.array([[D, A, B, E]])
    truth = truth_of([{B, D, F}])
    m = ranking_metrics(ranked, truth, (2, 4))
    assert m["precision@4"][0] == pytest.approx(2 / 4)
    assert m["recall@4"][0] == pytest.approx(2 / 3)
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@4"][0] == pytest.approx(dcg / idcg)
    assert m["mrr@4"][0] == pytest.approx(1.0)
    assert m["map@4"][0] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert m["precision@2"][0] == pytest.approx(1 / 2)
    assert m["recall@2"][0] == pytest.approx(1 / 3)
    assert m["ndcg@2"][0] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert m["map@2"][0] == pytest.approx(1 / 2)  # one hit, precision 1, over min(3, 2)


def test_padding_duplicates_and_short_lists() -> None:
    ranked = np.array([[C, -1, -1], [B, B, A]])
    truth = truth_of([{C}, {B}])
    m = ranking_metrics(ranked, truth, (3, 5))
    assert m["precision@3"].tolist() == pytest.approx([1 / 3, 1 / 3])  # duplicate b once
    assert m["recall@3"].tolist() == [1.0, 1.0]
    assert m["ndcg@3"].tolist() == pytest.approx([1.0, 1.0])
    assert m["map@3"].tolist() == pytest.approx([1.0, 1.0])
    assert m["precision@5"].tolist() == pytest.approx([1 / 5, 1 / 5])  # k past list width
    assert hit_matrix(ranked, truth).tolist() == [[True, False, False], [True, False, False]]


def test_single_metric_helpers_and_errors() -> None:
    ranked = np.array([[A, B, C]])
    truth = truth_of([{B, D}])
    assert precision_at_k(ranked, truth, 3)[0] == pytest.approx(1 / 3)
    assert recall_at_k(ranked, truth, 3)[0] == pytest.approx(1 / 2)
    assert mrr_at_k(ranked, truth, 3)[0] == pytest.approx(1 / 2)
    assert map_at_k(ranked, truth, 3)[0] == pytest.approx(1 / 4)
    assert 0 < ndcg_at_k(ranked, truth, 3)[0] < 1
    with pytest.raises(ValueError):
        hit_matrix(np.array([[N_ITEMS]]), truth)
    with pytest.raises(ValueError):
        ranking_metrics(ranked, truth, (0,))
    explicit_zero = sp.csr_matrix((np.array([0.0, 1.0]), ([0, 0], [A, B])), shape=(1, N_ITEMS))
    assert hit_matrix(ranked, explicit_zero).tolist() == [[False, True, False]]


def reference(ranked: list[int], relevant: set[int], k: int) -> dict[str, float]:
    """Straight from the definitions, one user at a time."""
    seen: set[int] = set()
    hits = []
    for item in ranked[:k] + [-1] * max(0, k - len(ranked)):
        hits.append(item >= 0 and item in relevant and item not in seen)
        seen.add(item)
    n = len(relevant)
    dcg = sum(1 / math.log2(i + 2) for i, h in enumerate(hits) if h)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(n, k)))
    first = next((i for i, h in enumerate(hits) if h), None)
    ap = sum(sum(hits[: i + 1]) / (i + 1) for i, h in enumerate(hits) if h)
    return {
        "precision": sum(hits) / k,
        "recall": sum(hits) / n,
        "ndcg": dcg / idcg,
        "mrr": 0.0 if first is None else 1 / (first + 1),
        "map": ap / min(n, k),
        "hitrate": float(any(hits)),
    }


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, list[set[int]], int]:
    n_items = draw(st.integers(1, 12))
    n_users = draw(st.integers(1, 6))
    width = draw(st.integers(1, 8))
    item = st.integers(-1, n_items - 1)
    ranked = [draw(st.lists(item, min_size=width, max_size=width)) for _ in range(n_users)]
    rel = [
        draw(st.sets(st.integers(0, n_items - 1), min_size=1, max_size=n_items))
        for _ in range(n_users)
    ]
    return np.array(ranked, dtype=np.int64), rel, n_items


@settings(max_examples=80, deadline=None)
@given(problems(), st.integers(1, 10))
def test_matches_reference_and_bounds(problem, k: int) -> None:
    ranked, rel, n_items = problem
    m = ranking_metrics(ranked, truth_of(rel, n_items), (k,))
    for u in range(len(rel)):
        expected = reference(ranked[u].tolist(), rel[u], k)
        for name, value in expected.items():
            got = m[f"{name}@{k}"][u]
            assert got == pytest.approx(value)
            assert 0.0 <= got <= 1.0 + 1e-12


@settings(max_examples=50, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_perfect_ranking_and_permutation(problem, rnd) -> None:
    _, rel, n_items = problem
    perfect = np.full((len(rel), n_items), -1, dtype=np.int64)
    for u, items in enumerate(rel):
        ordered = sorted(items)
        perfect[u, : len(ordered)] = ordered
    ks = (1, 3, n_items)
    truth = truth_of(rel, n_items)
    m = ranking_metrics(perfect, truth, ks)
    n_rel = np.array([len(r) for r in rel])
    for k in ks:
        assert np.allclose(m[f"ndcg@{k}"], 1.0)
        assert np.allclose(m[f"map@{k}"], 1.0)
        assert np.allclose(m[f"mrr@{k}"], 1.0)
        assert np.allclose(m[f"recall@{k}"], np.minimum(n_rel, k) / n_rel)
        assert np.allclose(m[f"precision@{k}"], np.minimum(n_rel, k) / k)
    # permuting users permutes per-user values and keeps means
    order = list(range(len(rel)))
    rnd.shuffle(order)
    shuffled = ranking_metrics(perfect[order], truth[order], ks)
    for key in m:
        assert shuffled[key].mean() == pytest.approx(m[key].mean())


@settings(max_examples=50, deadline=None)
@given(problems())
def test_recall_and_hitrate_monotone_in_k(problem) -> None:
    ranked, rel, n_items = problem
    ks = tuple(range(1, 10))
    m = ranking_metrics(ranked, truth_of(rel, n_items), ks)
    for a, b in itertools.pairwise(ks):
        assert np.all(m[f"recall@{b}"] >= m[f"recall@{a}"] - 1e-12)
        assert np.all(m[f"hitrate@{b}"] >= m[f"hitrate@{a}"])


def test_bootstrap() -> None:
    assert bootstrap_ci(np.full(50, 0.3)) == pytest.approx((0.3, 0.3))
    rng = np.random.default_rng(1)
    x = rng.random(400)
    low, high = bootstrap_ci(x, n_boot=500, seed=3)
    assert low < x.mean() < high
    assert (low, high) == bootstrap_ci(x, n_boot=500, seed=3)  # seeded
    # standard error of the mean of U(0,1) over 400 users ≈ 0.0144: width ≈ 2 * 1.96 * se
    assert high - low == pytest.approx(2 * 1.96 * x.std() / 20, rel=0.2)
    # blocked, vectorised draws equal a plain loop with the same generator
    blocked = bootstrap_cis(x[:, None], n_boot=37, seed=5, block_elements=1000)
    loop_rng = np.random.default_rng(5)
    means = [x[loop_rng.integers(0, len(x), size=len(x))].mean() for _ in range(37)]
    assert blocked[0][0] == pytest.approx(np.quantile(means, 0.025))
    assert blocked[1][0] == pytest.approx(np.quantile(means, 0.975))
    # NaN (undefined for a user) is left out of the mean
    with_nan = np.r_[np.full(30, 1.0), np.full(10, np.nan)]
    assert bootstrap_ci(with_nan) == pytest.approx((1.0, 1.0))
