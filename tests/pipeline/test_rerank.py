"""Final re-ranking: blend, MMR, genre cap, serendipity, pins — and never a duplicate."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cinerec.pipeline.config import RerankConfig
from cinerec.pipeline.rerank import (
    RerankResult,
    normalise_scores,
    rerank,
    serendipity_positions,
)

PLAIN = RerankConfig(mmr_lambda=1.0)


def ranked(n: int, offset: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``n`` candidates (ids offset..offset+n-1) with strictly decreasing ranker scores."""
    items = np.arange(offset, offset + n, dtype=np.int64)
    scores = np.linspace(5.0, -3.0, n).astype(np.float32)
    return items, scores


def unit_rows(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def clustered_vectors(n_clusters: int, per: int, d: int = 32, seed: int = 0) -> np.ndarray:
    """Near-duplicate clusters, ranker order = cluster 0's items first, then cluster 1, …"""
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((n_clusters, d)))
    rows = np.repeat(centres, per, axis=0) + 0.05 * rng.standard_normal((n_clusters * per, d))
    return unit_rows(rows)


def mean_pairwise_cos(v: np.ndarray) -> float:
    sims = v @ v.T
    iu = np.triu_indices(len(v), 1)
    return float(sims[iu].mean())


def check_shapes(res: RerankResult) -> None:
    m = len(res.items)
    assert res.items.dtype == np.int64 and res.scores.dtype == np.float32
    assert res.pinned.shape == res.serendipitous.shape == res.scores.shape == (m,)
    assert not (res.pinned & res.serendipitous).any()


# --- blending -----------------------------------------------------------------------------


def test_normalise_scores() -> None:
    np.testing.assert_allclose(normalise_scores(np.array([3.0, 1.0, 2.0])), [1.0, 0.0, 0.5])
    np.testing.assert_array_equal(normalise_scores(np.array([7.0, 7.0])), [1.0, 1.0])
    np.testing.assert_allclose(normalise_scores(np.array([2.0, np.nan, 0.0])), [1.0, 0.0, 0.0])


def test_lambda_one_reproduces_ranker_order_exactly() -> None:
    items, scores = ranked(60)
    vecs = clustered_vectors(6, 10)
    res = rerank(items, scores, 20, RerankConfig(mmr_lambda=1.0), vectors=vecs)
    np.testing.assert_array_equal(res.items, items[:20])
    assert not res.pinned.any() and not res.serendipitous.any()
    # Without vectors the default λ < 1 cannot diversify either: plain order.
    np.testing.assert_array_equal(rerank(items, scores, 20, RerankConfig()).items, items[:20])


def test_ties_keep_ranker_order() -> None:
    items = np.array([9, 3, 7, 1], dtype=np.int64)
    res = rerank(items, np.ones(4, dtype=np.float32), 4, PLAIN)
    np.testing.assert_array_equal(res.items, items)
    np.testing.assert_array_equal(res.scores, np.full(4, 0.9, dtype=np.float32))  # constant → 1


def test_rule_boost_lifts_an_item() -> None:
    items, scores = ranked(10)
    boost = np.zeros(10, dtype=np.float32)
    boost[7] = 1.0
    res = rerank(items, scores, 5, RerankConfig(mmr_lambda=1.0, rank_weight=0.5), rule_boost=boost)
    assert res.items[0] == items[7]
    np.testing.assert_array_equal(res.items[1:], items[:4])
    # With rank_weight = 1 the boost has no say.
    res = rerank(items, scores, 5, RerankConfig(mmr_lambda=1.0, rank_weight=1.0), rule_boost=boost)
    np.testing.assert_array_equal(res.items, items[:5])


def test_freshness_lifts_new_items() -> None:
    items, scores = ranked(10)
    fresh = np.zeros(10, dtype=np.float32)
    fresh[[4, 9]] = 1.0
    cfg = RerankConfig(mmr_lambda=1.0, rank_weight=1.0, freshness_weight=0.6)
    res = rerank(items, scores, 6, cfg, freshness=fresh)
    # base: rank 1, 0.89, 0.78, …; item 4 → 0.44 + 0.6 first, item 9 → 0 + 0.6 above item 5.
    np.testing.assert_array_equal(res.items, items[[4, 0, 1, 2, 3, 9]])
    # freshness_weight 0 ignores the array.
    cfg0 = RerankConfig(mmr_lambda=1.0, freshness_weight=0.0)
    np.testing.assert_array_equal(rerank(items, scores, 4, cfg0, freshness=fresh).items, items[:4])


# --- MMR ----------------------------------------------------------------------------------


def test_mmr_increases_intra_list_diversity() -> None:
    items, scores = ranked(50)
    vecs = clustered_vectors(5, 10)
    plain = rerank(items, scores, 10, RerankConfig(mmr_lambda=1.0), vectors=vecs)
    mmr = rerank(items, scores, 10, RerankConfig(mmr_lambda=0.5), vectors=vecs)
    rows = {int(it): i for i, it in enumerate(items)}
    v_plain = vecs[[rows[int(x)] for x in plain.items]]
    v_mmr = vecs[[rows[int(x)] for x in mmr.items]]
    assert mean_pairwise_cos(v_mmr) < mean_pairwise_cos(v_plain) - 0.3
    clusters = {rows[int(x)] // 10 for x in mmr.items}
    assert clusters == set(range(5))  # every cluster represented
    assert mmr.items[0] == items[0]  # the best item still leads
    assert len(set(mmr.items.tolist())) == 10


def test_mmr_lambda_zero_still_fills_without_duplicates() -> None:
    items, scores = ranked(30)
    vecs = clustered_vectors(3, 10)
    res = rerank(items, scores, 30, RerankConfig(mmr_lambda=0.0), vectors=vecs)
    assert sorted(res.items.tolist()) == items.tolist()


# --- genre cap ----------------------------------------------------------------------------


def genre_matrix(assign: list[list[int]], g: int) -> sp.csr_matrix:
    dense = np.zeros((len(assign), g), dtype=np.float32)
    for row, gs in enumerate(assign):
        dense[row, gs] = 1.0
    return sp.csr_matrix(dense)


def test_genre_cap_respected_when_feasible() -> None:
    items, scores = ranked(30)
    # The 20 best are dramas (genre 0; every 4th also comedy, genre 1); the rest rotate
    # through genres 2, 3, 4.
    assign = [[0, 1] if i % 4 == 0 else [0] for i in range(20)]
    assign += [[2 + i % 3] for i in range(10)]
    genres = genre_matrix(assign, 5)
    res = rerank(items, scores, 10, RerankConfig(mmr_lambda=1.0, genre_cap=3), genres=genres)
    rows = (res.items - 100).tolist()
    counts = genres[rows].toarray().sum(axis=0)
    assert counts.max() <= 3
    assert len(res.items) == 10
    assert rows[:3] == [0, 1, 2]  # the cap skips, it does not reorder the first ones
    assert rows[3:] == list(range(20, 27))


def test_genre_cap_relaxed_only_when_the_list_cannot_be_filled() -> None:
    items, scores = ranked(8)
    genres = genre_matrix([[0]] * 6 + [[1]] * 2, 2)
    res = rerank(items, scores, 6, RerankConfig(mmr_lambda=1.0, genre_cap=2), genres=genres)
    rows = (res.items - 100).tolist()
    assert rows == [0, 1, 6, 7, 2, 3]  # capped items come only after every other one


def test_pins_count_towards_the_genre_cap() -> None:
    items, scores = ranked(12)
    genres = genre_matrix([[0]] * 6 + [[1]] * 6, 2)
    cfg = RerankConfig(mmr_lambda=1.0, genre_cap=2)
    res = rerank(items, scores, 4, cfg, genres=genres, pins=[(int(items[5]), 4)])
    rows = (res.items - 100).tolist()
    assert rows == [0, 6, 7, 5]


# --- serendipity --------------------------------------------------------------------------


def test_serendipity_positions_documented() -> None:
    assert (serendipity_positions(20, 1) + 1).tolist() == [16]
    assert (serendipity_positions(20, 2) + 1).tolist() == [13, 18]
    assert (serendipity_positions(10, 1) + 1).tolist() == [8]
    assert (serendipity_positions(10, 2) + 1).tolist() == [7, 9]
    assert serendipity_positions(3, 5).tolist() == [1, 2]  # at most the second half
    assert serendipity_positions(0, 2).size == 0


def test_serendipity_slot_holds_a_low_affinity_item() -> None:
    items, scores = ranked(40)
    affinity = np.full(40, 0.9, dtype=np.float32)
    affinity[[15, 25, 35]] = [0.1, 0.0, 0.05]
    cfg = RerankConfig(mmr_lambda=1.0, serendipity_slots=1)
    res = rerank(items, scores, 10, cfg, affinity=affinity)
    check_shapes(res)
    assert res.items[7] == items[15] and res.serendipitous[7]  # 1-based position 8
    assert res.serendipitous.sum() == 1
    others = np.delete(res.items, 7)
    np.testing.assert_array_equal(others, items[:9])
    # Two slots: rows 15 and 25 (row 35 lies beyond the top 3k = 30).
    res2 = rerank(
        items, scores, 10, cfg.model_copy(update={"serendipity_slots": 2}), affinity=affinity
    )
    assert res2.items[[6, 8]].tolist() == [items[15], items[25]]
    assert res2.serendipitous[[6, 8]].all() and res2.serendipitous.sum() == 2


def test_serendipity_skips_items_already_in_the_list_and_needs_affinity() -> None:
    items, scores = ranked(40)
    affinity = np.full(40, 0.9, dtype=np.float32)
    affinity[[2, 20]] = 0.0
    cfg = RerankConfig(mmr_lambda=1.0, serendipity_slots=1)
    res = rerank(items, scores, 10, cfg, affinity=affinity)
    assert res.items[2] == items[2] and not res.serendipitous[2]  # placed on its merit
    assert res.items[7] == items[20] and res.serendipitous[7]
    assert not rerank(items, scores, 10, cfg).serendipitous.any()
    # Constant affinity: nobody is outside the usual taste.
    flat = rerank(items, scores, 10, cfg, affinity=np.full(40, 0.5, dtype=np.float32))
    assert not flat.serendipitous.any()
    np.testing.assert_array_equal(flat.items, items[:10])


# --- pins ---------------------------------------------------------------------------------


def test_pins_land_at_their_positions_first_and_last() -> None:
    items, scores = ranked(30)
    pins = [(999, 1), (int(items[20]), 10)]
    res = rerank(items, scores, 10, PLAIN, pins=pins)
    check_shapes(res)
    assert res.items[0] == 999 and res.items[9] == items[20]
    assert res.pinned.tolist() == [True] + [False] * 8 + [True]
    np.testing.assert_array_equal(res.items[1:9], items[:8])
    # Scores: a pin takes the score of the item it displaced.
    assert res.scores[0] == res.scores[1]
    assert res.scores[9] == pytest.approx(0.9 * normalise_scores(scores)[8])


def test_pinned_candidate_appears_once() -> None:
    items, scores = ranked(20)
    res = rerank(items, scores, 10, PLAIN, pins=[(int(items[0]), 5)])
    assert res.items.tolist().count(items[0]) == 1
    assert res.items[4] == items[0] and res.pinned[4]
    np.testing.assert_array_equal(np.delete(res.items, 4), items[1:10])


def test_pin_collisions_and_out_of_range() -> None:
    items, scores = ranked(20)
    pins = [(900, 3), (901, 3), (902, 4), (903, 11), (900, 6)]
    res = rerank(items, scores, 10, PLAIN, pins=pins)
    assert res.items[2] == 900 and res.items[3] == 902 and res.items[4] == 901
    assert 903 not in res.items  # beyond k
    assert res.items.tolist().count(900) == 1  # the first pin of an item wins
    assert res.pinned.sum() == 3
    with pytest.raises(ValueError, match="1-based"):
        rerank(items, scores, 10, PLAIN, pins=[(5, 0)])


def test_pin_after_the_end_of_a_short_list_lands_last() -> None:
    items, scores = ranked(3)
    res = rerank(items, scores, 10, PLAIN, pins=[(500, 8)])
    assert res.items.tolist() == [*items.tolist(), 500]
    assert res.pinned.tolist() == [False, False, False, True]


def test_k_larger_than_n_and_empty_inputs() -> None:
    items, scores = ranked(7)
    vecs = clustered_vectors(1, 7)
    res = rerank(
        items,
        scores,
        50,
        RerankConfig(mmr_lambda=0.5, serendipity_slots=3),
        vectors=vecs,
        affinity=np.linspace(0, 1, 7),
    )
    assert len(res) == 7 and sorted(res.items.tolist()) == items.tolist()
    empty = rerank(np.zeros(0, np.int64), np.zeros(0, np.float32), 10, RerankConfig())
    assert len(empty) == 0 and empty.scores.dtype == np.float32
    only_pins = rerank(np.zeros(0, np.int64), np.zeros(0, np.float32), 5, PLAIN, pins=[(4, 2)])
    assert only_pins.items.tolist() == [4] and only_pins.scores.tolist() == [1.0]
    assert len(rerank(items, scores, 0, PLAIN, pins=[(4, 1)])) == 0


def test_mismatched_lengths_rejected() -> None:
    items, scores = ranked(5)
    with pytest.raises(ValueError, match="rank_scores"):
        rerank(items, scores[:4], 3, PLAIN)
    with pytest.raises(ValueError, match="rule_boost"):
        rerank(items, scores, 3, PLAIN, rule_boost=np.zeros(4))
    with pytest.raises(ValueError, match="vectors"):
        rerank(items, scores, 3, RerankConfig(), vectors=np.ones((4, 3), np.float32))


# --- property: never a duplicate ----------------------------------------------------------


@st.composite
def rerank_inputs(draw: st.DrawFn) -> dict:
    n = draw(st.integers(0, 30))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    items = rng.integers(0, 40, n).astype(np.int64)  # repeats allowed
    pins = [
        (int(rng.integers(0, 50)), int(rng.integers(1, 25))) for _ in range(draw(st.integers(0, 5)))
    ]
    config = RerankConfig(
        rank_weight=draw(st.floats(0, 1)),
        freshness_weight=draw(st.floats(0, 1)),
        mmr_lambda=draw(st.sampled_from([0.0, 0.3, 0.7, 1.0])),
        genre_cap=draw(st.sampled_from([None, 1, 2, 4])),
        serendipity_slots=draw(st.integers(0, 3)),
    )
    return {
        "items": items,
        "rank_scores": rng.standard_normal(n).astype(np.float32),
        "k": draw(st.integers(0, 25)),
        "config": config,
        "rule_boost": rng.random(n).astype(np.float32) if draw(st.booleans()) else None,
        "freshness": rng.random(n).astype(np.float32) if draw(st.booleans()) else None,
        "vectors": unit_rows(rng.standard_normal((n, 8)) + 1e-3) if draw(st.booleans()) else None,
        "genres": sp.csr_matrix((rng.random((n, 4)) < 0.4).astype(np.float32))
        if draw(st.booleans())
        else None,
        "affinity": rng.random(n).astype(np.float32) if draw(st.booleans()) else None,
        "pins": pins,
    }


@settings(max_examples=150, deadline=None)
@given(rerank_inputs())
def test_property_unique_subset_and_length(args: dict) -> None:
    res = rerank(
        args["items"],
        args["rank_scores"],
        args["k"],
        args["config"],
        rule_boost=args["rule_boost"],
        freshness=args["freshness"],
        vectors=args["vectors"],
        genres=args["genres"],
        affinity=args["affinity"],
        pins=args["pins"],
    )
    check_shapes(res)
    k = args["k"]
    out = res.items.tolist()
    valid_pins: dict[int, int] = {}
    for item, pos in args["pins"]:
        if pos <= k and item not in valid_pins:
            valid_pins[item] = pos
    available = set(args["items"].tolist()) | set(valid_pins)
    assert len(out) == len(set(out))
    assert set(out) <= available
    assert len(out) == min(k, len(available))
    assert np.isfinite(res.scores).all()
    assert {x for x, p in zip(out, res.pinned, strict=True) if p} <= set(valid_pins)
    claimed: set[int] = set()
    for item, pos in valid_pins.items():  # the first pin at each position lands exactly
        if pos not in claimed and pos <= len(out):
            assert out[pos - 1] == item and res.pinned[pos - 1]
        claimed.add(pos)
