"""The re-rank and explain stages fed from the bundle's parts and one request's state."""

from __future__ import annotations

import numpy as np

from cinerec.data.matrix import InteractionMatrix
from cinerec.models.base import Model
from cinerec.pipeline.config import PipelineConfig
from cinerec.pipeline.finish import mmr_vectors, regional_items
from cinerec.pipeline.recommender import Recommender, Request
from cinerec.pipeline.types import Context
from tests.pipeline.conftest import NOW, make_recommender, user_ids


def test_rerank_with_a_policy_answers_as_a_pipeline_configured_with_it(
    recommender: Recommender, models: dict[str, Model], matrix: InteractionMatrix
) -> None:
    """What tune_rerank relies on: scoring once and re-ranking under many policies gives
    each policy's own pipeline answer."""
    policy = recommender.config.rerank.model_copy(
        update={"mmr_space": "genres", "mmr_lambda": 0.5, "genre_cap": 2}
    )
    data = recommender.config.model_dump()
    data["rerank"] = policy.model_dump()
    tuned = make_recommender(models, matrix, PipelineConfig.model_validate(data))
    changed = 0
    for user in user_ids(matrix, 6):
        request = Request(user_id=user, k=10, context=Context(timestamp=NOW))
        history, stored = recommender.history_for(request)
        scored = recommender.score_candidates(history, request, stored=stored)
        top, scores = recommender.rank(scored)
        result = recommender.rerank(scored, top, scores, request, policy)
        want = tuned.recommend(request)
        assert [str(matrix.items.ids[i]) for i in result.items] == want.item_ids
        np.testing.assert_allclose(result.scores, [r.score for r in want.items], rtol=1e-6)
        default = recommender.rerank(scored, top, scores, request)
        assert list(default.items) == [r.item_idx for r in recommender.recommend(request).items]
        changed += list(default.items) != list(result.items)
    assert changed  # the policy matters on these users, so the check above is not vacuous


def test_mmr_compares_content_vectors_or_genre_sets(recommender: Recommender) -> None:
    parts = recommender.parts
    items = np.array([0, 3, 7, 12])
    content = mmr_vectors(parts, items, "content")
    assert parts.vectors is not None and content is not None
    np.testing.assert_array_equal(content, parts.vectors[items])
    genres = mmr_vectors(parts, items, "genres")
    assert genres is not None and genres.shape[0] == len(items)
    np.testing.assert_allclose(np.linalg.norm(genres, axis=1), 1.0, rtol=1e-5)
    same_genre = (parts.facts.genres[items] @ parts.facts.genres[items].T).toarray() > 0
    assert ((genres @ genres.T > 1e-6) == same_genre).all()


def test_regional_items_are_those_made_in_the_viewers_country(recommender: Recommender) -> None:
    items = np.arange(len(recommender.items))
    india = recommender.country_mask("India")
    assert india is not None
    assert regional_items(recommender.parts, items, "India") == set(np.flatnonzero(india))
    assert regional_items(recommender.parts, items, None) == frozenset()
    assert regional_items(recommender.parts, items, "Atlantis") == frozenset()
