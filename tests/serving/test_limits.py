"""A user's stored parental limit (users table ``max_age_rating``) on every serving path:
live pipeline, cache, editor picks, feedback-driven recall, cold start and nightly lists."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from cinerec.pipeline.offline import recommend_users
from cinerec.pipeline.persist import load_recommender
from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.types import Constraints
from cinerec.serving.app import create_app
from cinerec.serving.batch import BatchStore, batch_score
from tests.services import REDIS_URL, drop_prefix, redis_or_skip
from tests.serving.conftest import ADMIN_KEY, CHILDREN, make_settings

ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def rec(bundle_folder: Path) -> Recommender:
    return load_recommender(bundle_folder)


def allowed_ids(rec: Recommender, age: int) -> set[str]:
    """Titles a viewer limited to ``age`` may see (known minimum age, at most ``age``)."""
    return set(rec.items.ids[rec.facts.allowed(Constraints(max_min_age=age))])


def adult_unseen(rec: Recommender, user: str, age: int) -> list[str]:
    """Titles above ``age`` that ``user`` has not watched (so the pipeline could offer them)."""
    seen = set(rec.items.ids[rec.histories.get(int(rec.users.lookup([user])[0])).items])
    return [i for i in rec.items.ids if i not in allowed_ids(rec, age) and i not in seen]


def items_of(response: dict) -> list[str]:
    return [i["item_id"] for i in response["items"]]


def test_the_bundle_carries_the_users_tables_limits(rec: Recommender) -> None:
    assert rec.limits is not None and len(rec.limits) == len(CHILDREN)  # u1 has none
    for user, age in CHILDREN.items():
        assert rec.limits.constraints(user) == Constraints(max_min_age=age)
    assert rec.limits.constraints("u1") == Constraints()
    assert rec.limits.constraints(None) == Constraints()


def test_a_child_never_gets_an_adult_title_from_the_api(
    client: TestClient, rec: Recommender
) -> None:
    child, age = "u50", CHILDREN["u50"]
    ok = allowed_ids(rec, age)
    adult = adult_unseen(rec, child, age)
    assert adult, "the fixture must offer the child adult titles to refuse"
    unlimited = client.get("/v1/recommendations", params={"user_id": "u1", "k": 20}).json()
    assert set(items_of(unlimited)) - ok, "an unlimited user does get adult titles here"

    answers = []
    get = {"user_id": child, "k": 10}
    answers.append(client.get("/v1/recommendations", params=get).json())
    answers.append(client.get("/v1/recommendations", params=get).json())
    assert answers[-1]["cached"] is True
    # a request may lower the limit, never raise it
    answers.append(client.get("/v1/recommendations", params={**get, "max_age_rating": "18"}).json())
    body = {"user_id": child, "k": 10, "filters": {"max_age_rating": "TV-MA"}}
    answers.append(client.post("/v1/recommendations", json=body).json())
    lower = client.get("/v1/recommendations", params={**get, "max_age_rating": "7"}).json()
    assert set(items_of(lower)) <= allowed_ids(rec, 7)
    # the operator's editor picks, and feedback on adult titles (item-to-item, sequences)
    pick = client.put("/v1/admin/editor-picks", json={"item_ids": adult[:3]}, headers=ADMIN)
    assert pick.status_code == 200
    visitor = client.get("/v1/recommendations", params={"k": 20}).json()
    assert set(adult[:3]) & set(items_of(visitor)), "the picks reach an unlimited visitor"
    for item in adult[3:6]:
        event = {"user_id": child, "item_id": item, "action": "like"}
        assert client.post("/v1/feedback", json=event).status_code == 202
    answers.append(client.get("/v1/recommendations", params=get).json())
    answers.append(client.get("/v1/recommendations", params={**get, "k": 30}).json())
    for answer in answers:
        assert answer["items"], answer
        assert set(items_of(answer)) <= ok, answer
    sources = {s for a in answers for i in a["items"] for s in i["sources"]}
    assert len(sources) >= 3, sources  # the limit held across recall sources


def test_a_new_child_profile_is_limited_from_its_first_request(
    client: TestClient, rec: Recommender
) -> None:
    ok = allowed_ids(rec, CHILDREN["kid0"])
    plain = client.get("/v1/recommendations", params={"user_id": "kid0", "k": 8}).json()
    stated = client.post(
        "/v1/recommendations",
        json={"user_id": "kid0", "k": 8, "preferences": {"genres": ["g1", "g2"]}},
    ).json()
    for answer in (plain, stated):
        assert answer["cold_start"] is True and answer["items"]
        assert set(items_of(answer)) <= ok


def test_the_pipelines_batch_path_applies_the_limits(rec: Recommender) -> None:
    frame = recommend_users(rec, [*CHILDREN, "u1"], k=10)
    for user, age in CHILDREN.items():
        mine = frame[frame.user_id == user]
        assert len(mine) and set(mine.item_id) <= allowed_ids(rec, age)
    assert set(frame[frame.user_id == "u1"].item_id) - allowed_ids(rec, 13)


@pytest.mark.integration
def test_nightly_lists_respect_the_limits_and_a_bad_list_is_not_served(
    bundle_folder: Path, tmp_path: Path, rec: Recommender
) -> None:
    url = redis_or_skip(REDIS_URL)
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    child, age = "u50", CHILDREN["u50"]
    try:
        batch_score(rec, k=10, out=tmp_path / "b.parquet", redis_url=url, prefix=prefix)
        frame = pd.read_parquet(tmp_path / "b.parquet")
        assert set(frame[frame.user_id == child].item_id) <= allowed_ids(rec, age)
        store = BatchStore(url, prefix=prefix)
        stored = store.get(rec.model_version, child, picks="bundle")
        assert stored and {i["item_id"] for i in stored} <= allowed_ids(rec, age)
        settings = make_settings(bundle_folder, tmp_path, redis_url=url, redis_prefix=prefix)
        with TestClient(create_app(settings)) as client:
            served = client.get("/v1/recommendations", params={"user_id": child, "k": 8}).json()
            assert served["source"] == "batch"
            assert set(items_of(served)) <= allowed_ids(rec, age)
            # a list that breaks the limit (an older job, a bug) is not served
            bad = [dict(stored[0], item_id=i) for i in adult_unseen(rec, child, age)[:10]]
            key = f"{prefix}:batch:{rec.model_version}:bundle:{child}"
            store.client.set(key, json.dumps(bad))
            client.app.state.services.cache.invalidate(child)  # type: ignore[attr-defined]
            live = client.get("/v1/recommendations", params={"user_id": child, "k": 8}).json()
            assert live["source"] == "pipeline"
            assert live["items"] and set(items_of(live)) <= allowed_ids(rec, age)
    finally:
        drop_prefix(url, prefix)


def test_limits_do_not_change_unlimited_users(rec: Recommender) -> None:
    """The same answers as a bundle without any limit, for users who have none."""
    from cinerec.pipeline.types import Request

    saved, rec.limits = rec.limits, None
    try:
        before = [rec.recommend(Request(user_id=u, k=10)).item_ids for u in ("u1", "u2")]
    finally:
        rec.limits = saved
    after = [rec.recommend(Request(user_id=u, k=10)).item_ids for u in ("u1", "u2")]
    assert before == after
    assert np.all([len(ids) == 10 for ids in after])
