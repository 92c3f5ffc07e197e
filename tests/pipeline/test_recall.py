"""Recall sources and their union."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.base import has_vectors
from cinerec.pipeline.config import SourceConfig
from cinerec.pipeline.recall import (
    AnnSource,
    RecallRequest,
    ScoreBoard,
    SourceResult,
    recent_unique,
    top_eligible,
    union,
)
from cinerec.pipeline.recommender import Recommender, Request
from cinerec.pipeline.types import Constraints
from tests.pipeline.conftest import make_recommender


def test_top_eligible_respects_the_mask_and_orders_ties_by_index() -> None:
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.7], dtype=np.float32)
    eligible = np.array([True, True, True, True, False])
    result = top_eligible(scores, eligible, 3)
    assert result.items.tolist() == [1, 2, 0]
    assert top_eligible(scores, np.zeros(5, dtype=bool), 3).items.size == 0


def test_a_known_order_gives_the_same_answer_as_partitioning() -> None:
    """Scores every user shares come with their order; reading the top off it must agree
    with the partition, ties, -inf scores and masks included."""
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 40, 5000).astype(np.float32)  # many ties
    scores[rng.random(5000) < 0.05] = -np.inf
    order = np.argsort(-scores, kind="stable")
    for share in (1.0, 0.5, 0.01):
        eligible = rng.random(5000) < share
        for n in (0, 1, 37, 300, 6000):
            expected = top_eligible(scores, eligible, n)
            got = top_eligible(scores, eligible, n, order)
            np.testing.assert_array_equal(got.items, expected.items)
            np.testing.assert_array_equal(got.scores, expected.scores)


def test_shared_scores_are_read_only_and_ordered(recommender: Recommender) -> None:
    from cinerec.pipeline.recall import ScoreBoard

    board = ScoreBoard(recommender.models, recommender.histories.get(0), None)
    scores, order = board.get("pop"), board.order("pop")
    assert order is not None and not scores.flags.writeable
    assert (np.diff(scores[order]) <= 0).all()
    assert board.order("ease") is None  # personal scores have no shared order
    board.blend_live("pop", np.array([order[-1]]), np.array([5.0]))
    assert board.order("pop") is None and board.get("pop").argmax() == order[-1]


def test_union_tags_sources_and_keeps_each_source_head_when_capped() -> None:
    a = SourceResult(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1], dtype=np.float32))
    b = SourceResult(np.array([9, 2]), np.array([1, 0.5], dtype=np.float32), np.array([7, 8]))
    cands = union([("a", 4, a), ("b", 2, b)], max_candidates=10)
    assert cands.items.tolist() == [1, 2, 3, 4, 9]
    row = cands.items.tolist().index(2)
    assert cands.source_ranks[row].tolist() == [2.0, 2.0]
    assert cands.sources_of(row) == ["a", "b"]
    assert cands.anchors[cands.items.tolist().index(9)] == 7
    capped = union([("a", 4, a), ("b", 2, b)], max_candidates=3)
    assert set(capped.items.tolist()) == {1, 9, 2}


def test_recent_unique_is_latest_first() -> None:
    assert recent_unique(np.array([5, 3, 5, 8, 3]), 2).tolist() == [3, 8]


def test_every_source_contributes_and_only_eligible_items_come_back(
    recommender: Recommender,
) -> None:
    history = recommender.histories.get(0)
    constraints = Constraints(max_min_age=13)
    scored = recommender.score_candidates(
        history, Request(user_id="u0", constraints=constraints), stored=True
    )
    cands = scored.candidates
    allowed = recommender.facts.allowed(constraints)
    assert allowed[cands.items].all()
    seen = set(history.items.tolist())
    resumed = cands.source_ranks[:, cands.source_names.index("continue_watching")] > 0
    assert not seen & set(cands.items[~resumed].tolist())
    produced = {
        name for s, name in enumerate(cands.source_names) if (cands.source_ranks[:, s] > 0).any()
    }
    assert {"als", "ease", "itemknn", "content", "trending", "popular"} <= produced
    assert scored.features.shape == (len(cands), len(recommender.features.names))
    assert np.isfinite(scored.features[:, : 3 * len(recommender.models)]).all()


def test_ann_source_serves_vectors_through_faiss(recommender: Recommender) -> None:
    ann = next(s for s in recommender.sources if s.name == "als")
    vectors = recommender.models["als"].embed_items()  # type: ignore[attr-defined]
    with_vector = np.flatnonzero(vectors.any(axis=1))
    assert 0 < len(with_vector) < len(recommender.items)  # catalog items nobody watched
    assert np.array_equal(ann.members, with_vector)  # type: ignore[attr-defined]
    assert len(ann.index) == len(with_vector)  # type: ignore[attr-defined]


def test_ann_source_indexes_only_items_with_a_vector(recommender: Recommender) -> None:
    """Items nobody interacted with have all-zero factors: they stay out of the index, and
    what the source returns is the exact top of the others, under the catalog's ids."""
    als = copy.deepcopy(recommender.models["als"])
    never_seen = np.arange(0, len(recommender.items), 3)
    als.item_factors[never_seen] = 0.0  # type: ignore[attr-defined]
    source = AnnSource(SourceConfig(name="als", kind="ann", model="als", quota=5), als)
    members = np.flatnonzero(als.item_factors.any(axis=1))  # type: ignore[attr-defined]
    assert not np.isin(never_seen, members).any()
    assert np.array_equal(source.members, members)
    assert len(source.index) == len(members)  # type: ignore[arg-type]
    history = recommender.histories.get(0)
    board = ScoreBoard({"als": als}, history, None)
    eligible = np.ones(len(recommender.items), dtype=bool)
    eligible[members[::4]] = False
    found = source.retrieve(RecallRequest(history, board, eligible))
    scores = als.item_factors @ board.embedding("als")[0]  # type: ignore[attr-defined]
    expected = top_eligible(np.where(np.isin(np.arange(len(scores)), members), scores, -np.inf),
                            eligible, 5)  # fmt: skip
    assert np.array_equal(found.items, expected.items)
    np.testing.assert_allclose(found.scores, expected.scores, rtol=1e-5)


def test_vector_recall_needs_a_model_with_user_and_item_vectors(
    recommender: Recommender,
) -> None:
    """ALS has vectors, EASE has none: ANN recall over EASE and a user vector in its space
    are refused with a clear error, not an AttributeError from deep inside."""
    ease = recommender.models["ease"]
    assert has_vectors(recommender.models["als"]) and not has_vectors(ease)
    with pytest.raises(ModelError, match="no vectors for ANN"):
        AnnSource(SourceConfig(name="e", kind="ann", model="ease", quota=5), ease)
    board = ScoreBoard({"ease": ease}, recommender.histories.get(0), None)
    with pytest.raises(ModelError, match="has no user and item vectors"):
        board.embedding("ease")
    items = np.array([0, 2, 4])
    np.testing.assert_array_equal(board.get_items("ease", items), board.get("ease")[items])


def test_sequence_source_reads_the_request_time_sequence(
    models: dict, matrix: InteractionMatrix
) -> None:
    from cinerec.models.sasrec import SASRec

    sasrec = SASRec(dim=16, blocks=1, heads=1, epochs=3, max_len=20, threads=1).fit(matrix)
    recommender = make_recommender({**models, "sasrec": sasrec}, matrix)
    assert "sequence" in [s.name for s in recommender.sources]
    assert "score.sasrec" in recommender.features.names
    before = recommender.score_candidates(
        recommender.histories.get(0), Request(user_id="u0"), stored=True
    )
    column = before.candidates.source_names.index("sequence")
    assert (before.candidates.source_ranks[:, column] > 0).any()
    history, stored = recommender.history_for(Request(user_id="u0", recent_items=("i1", "i5")))
    assert not stored and history.items[-2:].tolist() == [1, 5]
    after = recommender.score_candidates(history, Request(user_id="u0"), stored=False)
    expected = sasrec.score_sequences([history.items])[0]
    board = after.board.get("sasrec")
    np.testing.assert_allclose(board, expected, rtol=1e-5)


def test_live_trending_counts_lead_the_trending_source(recommender: Recommender) -> None:
    live = (("cold2", 50.0), ("cold4", 20.0))
    scored = recommender.score_candidates(
        recommender.histories.get(-1), Request(live_trending=live), stored=False
    )
    cands = scored.candidates
    column = cands.source_names.index("trending")
    ranks = {
        str(recommender.items.ids[i]): r
        for i, r in zip(cands.items, cands.source_ranks[:, column], strict=True)
        if r > 0
    }
    assert ranks["cold2"] == 1 and ranks["cold4"] == 2
