"""The Recommender end to end on a small catalog: each stage's guarantees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cinerec.data.matrix import InteractionMatrix
from cinerec.models.base import Model
from cinerec.pipeline.config import Pin, PipelineConfig, RerankConfig, default_config
from cinerec.pipeline.recommender import Preferences, Recommender, Request
from cinerec.pipeline.state import UserLimits
from cinerec.pipeline.types import Constraints, Context, RecentEvent
from tests.pipeline.conftest import NOW, make_recommender, user_ids

CONSTRAINTS = [
    Constraints(max_min_age=12),
    Constraints(languages=("tr",)),
    Constraints(types=("series",), max_seasons=3),
    Constraints(year_min=2010, year_max=2018),
    Constraints(countries=("India",), max_min_age=16),
]


def _with_rerank(models: dict[str, Model], matrix: InteractionMatrix, **rerank) -> Recommender:
    config = default_config(list(models))
    config = config.model_copy(update={"rerank": RerankConfig(**rerank)})
    return make_recommender(models, matrix, PipelineConfig.model_validate(config.model_dump()))


def test_known_user_gets_k_unseen_items_with_sources_and_reasons(
    recommender: Recommender, matrix: InteractionMatrix
) -> None:
    for user in user_ids(matrix):
        result = recommender.recommend(Request(user_id=user, k=10, context=Context(timestamp=NOW)))
        history = recommender.histories.get(int(matrix.users.lookup(np.array([user]))[0]))
        assert len(result.items) == 10
        assert len(set(result.item_ids)) == 10
        assert not set(r.item_idx for r in result.items) & set(history.items.tolist())
        assert all(r.sources for r in result.items)
        assert all(r.reason.text for r in result.items)
        assert [r.rank for r in result.items] == list(range(1, 11))
        assert result.n_candidates >= 10
        assert result.config_hash == recommender.config.digest()


@pytest.mark.parametrize("constraints", CONSTRAINTS)
def test_rules_never_leak_a_filtered_item(
    recommender: Recommender, matrix: InteractionMatrix, constraints: Constraints
) -> None:
    allowed = recommender.facts.allowed(constraints)
    for user in [*user_ids(matrix, 8), "someone-new"]:
        result = recommender.recommend(Request(user_id=user, k=20, constraints=constraints))
        assert all(allowed[r.item_idx] for r in result.items), constraints
        assert len(result.items) == min(20, int(allowed.sum())) or user != "someone-new"


def test_pins_land_at_their_positions(models: dict[str, Model], matrix: InteractionMatrix) -> None:
    recommender = make_recommender(models, matrix)
    user = user_ids(matrix, 1)[0]
    plain = recommender.recommend(Request(user_id=user, k=10))
    outsider = "cold3"  # no interactions: never in the plain list's top
    recommender.pins = [(outsider, 1), (plain.item_ids[6], 4)]
    pinned = recommender.recommend(Request(user_id=user, k=10))
    assert pinned.item_ids[0] == outsider
    assert pinned.item_ids[3] == plain.item_ids[6]
    assert len(set(pinned.item_ids)) == 10
    assert pinned.items[0].reason.code == "editors_pick"


def test_config_pins_and_editor_picks(models: dict[str, Model], matrix: InteractionMatrix) -> None:
    config = default_config(list(models)).model_dump()
    config["rerank"]["pins"] = [{"item_id": "cold1", "position": 2}]
    config["editor_picks"] = ["cold2", "cold4"]
    recommender = make_recommender(models, matrix, PipelineConfig.model_validate(config))
    result = recommender.recommend(Request(user_id=user_ids(matrix, 1)[0], k=10))
    assert result.item_ids[1] == "cold1"
    assert result.per_source["editor"] == 2
    assert isinstance(config["rerank"]["pins"][0], dict) and Pin(item_id="x", position=1)


def _mean_pairwise_cosine(vectors: np.ndarray) -> float:
    sims = vectors @ vectors.T
    n = len(vectors)
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def test_mmr_increases_diversity(models: dict[str, Model], matrix: InteractionMatrix) -> None:
    plain = _with_rerank(models, matrix, mmr_lambda=1.0)
    diverse = _with_rerank(models, matrix, mmr_lambda=0.3)
    before, after = [], []
    for user in user_ids(matrix, 10):
        for rec, out in ((plain, before), (diverse, after)):
            items = [r.item_idx for r in rec.recommend(Request(user_id=user, k=10)).items]
            out.append(_mean_pairwise_cosine(rec.vectors[items]))
    assert np.mean(after) < np.mean(before) - 0.02


def test_explanations_name_a_real_history_item(
    recommender: Recommender, matrix: InteractionMatrix
) -> None:
    named = 0
    for user in user_ids(matrix):
        user_idx = int(matrix.users.lookup(np.array([user]))[0])
        history = set(recommender.histories.get(user_idx).items.tolist())
        for item in recommender.recommend(Request(user_id=user, k=10)).items:
            if item.reason.code in ("because_you_watched", "new_similar_to"):
                assert item.reason.item_idx in history
                assert str(recommender.titles[item.reason.item_idx]) in item.reason.text
                named += 1
    assert named > 0


def test_feedback_changes_the_next_answer(
    recommender: Recommender, matrix: InteractionMatrix
) -> None:
    user = user_ids(matrix, 1)[0]
    before = recommender.recommend(Request(user_id=user, k=10))
    films = [r for r in before.items if not recommender.facts.is_series[r.item_idx]]
    series = [r for r in before.items if recommender.facts.is_series[r.item_idx]]
    clicked, skipped = before.item_ids[films[0].rank - 1], before.item_ids[series[0].rank - 1]
    after = recommender.recommend(
        Request(user_id=user, k=10, recent_items=(clicked,), skipped_items=(skipped,))
    )
    assert clicked not in after.item_ids  # a film just watched is seen
    assert skipped not in after.item_ids  # a skipped series does not come back
    assert after.item_ids != before.item_ids
    # A series just clicked comes back as "continue watching".
    resumed = recommender.recommend(Request(user_id=user, k=10, recent_items=(skipped,)))
    back = [r for r in resumed.items if resumed.item_ids[r.rank - 1] == skipped]
    assert back and back[0].reason.code == "continue_watching"


def test_a_click_moves_a_new_visitor_toward_its_cluster(recommender: Recommender) -> None:
    # Items i0, i4, i8, … form cluster 0; a new visitor who clicked two of them.
    result = recommender.recommend(Request(user_id=None, k=10, recent_items=("i0", "i4")))
    clusters = [int(i[1:]) % 4 for i in result.item_ids if i.startswith("i")]
    assert clusters.count(0) >= 5
    assert any(r.reason.code == "because_you_watched" for r in result.items)


def test_cold_start_with_stated_preferences(recommender: Recommender) -> None:
    constraints = Constraints(languages=("tr",), year_min=2010)
    result = recommender.recommend(
        Request(
            user_id="new-visitor",
            k=5,
            constraints=constraints,
            preferences=Preferences(genres=("g1",)),
        )
    )
    allowed = recommender.facts.allowed(constraints)
    assert result.items and all(allowed[r.item_idx] for r in result.items)
    assert all(r.reason.code in ("popular", "trending", "editors_pick") for r in result.items)
    # Without constraints, the stated genre steers the vector models from the first request.
    liked = recommender.recommend(
        Request(user_id=None, k=10, preferences=Preferences(genres=("g1",)))
    )
    plain = recommender.recommend(Request(user_id=None, k=10))
    share = recommender.facts.preference_match
    liked_share = share(np.array([r.item_idx for r in liked.items]), genres=("g1",)).mean()
    plain_share = share(np.array([r.item_idx for r in plain.items]), genres=("g1",)).mean()
    assert liked_share >= 0.7 and liked_share > plain_share
    assert "als" in liked.per_source and liked.per_source["als"] > 0


def test_continue_watching_brings_back_a_recent_series(
    recommender: Recommender, matrix: InteractionMatrix
) -> None:
    found = 0
    for user in user_ids(matrix, 20):
        user_idx = int(matrix.users.lookup(np.array([user]))[0])
        history = recommender.histories.get(user_idx)
        result = recommender.recommend(Request(user_id=user, k=40))
        for item in result.items:
            if item.item_idx in set(history.items.tolist()):
                assert recommender.facts.is_series[item.item_idx]
                assert "continue_watching" in item.sources
                found += 1
    assert found > 0


def test_excluded_items_and_timings(recommender: Recommender, matrix: InteractionMatrix) -> None:
    user = user_ids(matrix, 1)[0]
    first = recommender.recommend(Request(user_id=user, k=5))
    again = recommender.recommend(Request(user_id=user, k=5, exclude_items=tuple(first.item_ids)))
    assert not set(first.item_ids) & set(again.item_ids)
    assert {"recall", "features", "rank", "rerank", "explain", "total"} <= set(again.timings_ms)


def test_popular_in_region_names_only_items_from_that_region(recommender: Recommender) -> None:
    result = recommender.recommend(Request(user_id=None, k=20, context=Context(country="India")))
    india = recommender.country_mask("India")
    assert india is not None
    regional = [r for r in result.items if r.reason.code == "popular_in_region"]
    assert regional and all(india[r.item_idx] for r in regional)
    assert all("India" in r.reason.text for r in regional)


def test_a_users_stored_limit_holds_on_every_path(
    models: dict[str, Model], matrix: InteractionMatrix
) -> None:
    """A child's stored limit: every source, pins, editor picks, request-time events and
    continue-watching draw from what it allows; a request may lower it, never raise it."""
    config = default_config(list(models)).model_dump()
    adult = [str(i) for i in matrix.items.ids if not allowed_at_7(matrix, str(i))]
    config["rerank"]["pins"] = [{"item_id": adult[0], "position": 1}]
    recommender = make_recommender(models, matrix, PipelineConfig.model_validate(config))
    child, other = user_ids(matrix, 2)
    users = pd.DataFrame({"user_id": [child, "new-kid"], "max_age_rating": [7, 0]})
    recommender.limits = UserLimits.from_users(users)
    seven = recommender.facts.allowed(Constraints(max_min_age=7))
    zero = recommender.facts.allowed(Constraints(max_min_age=0))
    series = [str(i) for i in matrix.items.ids[recommender.facts.is_series]]
    recent = tuple(RecentEvent(i, NOW.timestamp() - 3600, 1.0) for i in [*adult[:3], *series])
    requests = [
        (Request(user_id=child, k=10), seven),
        (Request(user_id=child, k=10, constraints=Constraints(max_min_age=18)), seven),
        (Request(user_id=child, k=10, constraints=Constraints(max_min_age=0)), zero),
        (Request(user_id=child, k=10, editor_picks=tuple(adult[:4])), seven),
        (Request(user_id=child, k=10, recent_events=recent, context=Context(timestamp=NOW)), seven),
        (Request(user_id="new-kid", k=10, preferences=Preferences(genres=("g1",))), zero),
    ]
    for request, allowed in requests:
        result = recommender.recommend(request)
        assert result.items and all(allowed[r.item_idx] for r in result.items), request
    free = recommender.recommend(Request(user_id=other, k=10, editor_picks=tuple(adult[:4])))
    assert free.item_ids[0] == adult[0] and free.per_source.get("editor")  # pins, picks: on


def test_request_picks_override_the_bundles(
    models: dict[str, Model], matrix: InteractionMatrix
) -> None:
    config = default_config(list(models)).model_dump()
    config["editor_picks"] = ["cold2", "cold4"]
    recommender = make_recommender(models, matrix, PipelineConfig.model_validate(config))
    user = user_ids(matrix, 1)[0]

    def picked(request: Request) -> set[str]:
        history, stored = recommender.history_for(request)
        cands = recommender.score_candidates(history, request, stored=stored).candidates
        rows = cands.source_ranks[:, cands.source_names.index("editor")] > 0
        return set(recommender.items.ids[cands.items[rows]])

    assert picked(Request(user_id=user)) == {"cold2", "cold4"}
    assert picked(Request(user_id=user, editor_picks=("cold1",))) == {"cold1"}
    assert picked(Request(user_id=user, editor_picks=())) == set()


def allowed_at_7(matrix: InteractionMatrix, item_id: str) -> bool:
    """Whether a 7-year-old may see ``item_id`` (its minimum age is known and at most 7)."""
    catalog = matrix.catalog.set_index("item_id")
    age = catalog.loc[item_id, "min_age"]
    return bool(pd.notna(age) and age <= 7)
