"""Nightly batch scoring into Parquet and Redis, and the API's fast path that reads it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from cinerec.pipeline.persist import load_recommender
from cinerec.serving.app import create_app
from cinerec.serving.batch import BatchStore, batch_score, batch_similar
from tests.services import REDIS_URL, redis_or_skip
from tests.serving.conftest import make_settings

pytestmark = pytest.mark.integration


@pytest.fixture()
def redis_up() -> str:
    return redis_or_skip(REDIS_URL)


def test_batch_scores_land_in_parquet_and_redis(
    bundle_folder: Path, tmp_path: Path, redis_up: str
) -> None:
    rec = load_recommender(bundle_folder)
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    summary = batch_score(
        rec, k=12, out=tmp_path / "batch.parquet", redis_url=redis_up, prefix=prefix
    )
    frame = pd.read_parquet(tmp_path / "batch.parquet")
    assert summary["users"] == len(rec.users) and summary["rows"] == len(frame)
    assert frame.groupby("user_id")["rank"].max().eq(12).all()
    stored = BatchStore(redis_up, prefix=prefix).get(rec.model_version, "u1", picks="bundle")
    assert stored is not None and len(stored) == 12
    assert [s["item_id"] for s in stored] == frame[frame.user_id == "u1"]["item_id"].tolist()

    settings = make_settings(bundle_folder, tmp_path, redis_url=redis_up, redis_prefix=prefix)
    app = create_app(settings)
    with TestClient(app) as client:
        fast = client.get("/v1/recommendations", params={"user_id": "u1", "k": 10}).json()
        assert fast["source"] == "batch"
        assert [i["item_id"] for i in fast["items"]] == [s["item_id"] for s in stored[:10]]
        filtered = client.post(
            "/v1/recommendations", json={"user_id": "u1", "k": 5, "filters": {"types": ["movie"]}}
        ).json()
        assert filtered["source"] == "pipeline"
        client.post("/v1/feedback", json={"user_id": "u1", "item_id": "i3", "action": "click"})
        after = client.get("/v1/recommendations", params={"user_id": "u1", "k": 10}).json()
        assert after["source"] == "pipeline"  # activity since the batch: live answer


def test_batch_similar_lists_match_the_api(bundle_folder: Path, tmp_path: Path) -> None:
    """Every item's more-like-this list in Parquet equals what the API answers for it."""
    rec = load_recommender(bundle_folder)
    summary = batch_similar(rec, tmp_path / "similar.parquet", k=5, chunk=7)
    frame = pd.read_parquet(tmp_path / "similar.parquet")
    assert summary["items"] == len(rec.items) and summary["rows"] == len(frame)
    assert set(frame["model_version"]) == {rec.model_version}
    settings = make_settings(bundle_folder, tmp_path)
    with TestClient(create_app(settings)) as client:
        for item in ("i4", "i17"):
            api = client.get(f"/v1/items/{item}/similar", params={"k": 5}).json()
            stored = frame[frame.item_id == item].sort_values("rank")
            assert [s["item_id"] for s in api] == stored["similar_id"].tolist()
