"""The HTTP API end to end (in-process TestClient, SQLite event log, in-process state)."""

from __future__ import annotations

import inspect
import uuid
from pathlib import Path

import pandas as pd
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cinerec.serving import schemas
from cinerec.serving.app import create_app, telemetry_options
from tests.serving.conftest import ADMIN_KEY, make_settings

TELEMETRY_PARTS = ("tracing", "metrics", "logs", "operation_spans")


def _recs(client: TestClient, **params: object) -> dict:
    response = client.get("/v1/recommendations", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_recommendations_carry_scores_reasons_sources_and_versions(client: TestClient) -> None:
    body = _recs(client, user_id="u1", k=5)
    assert len(body["items"]) == 5
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    for item in body["items"]:
        assert item["reason"]["text"] and item["sources"] and item["title"]
    assert body["model_version"] and body["config_hash"] and body["request_id"]
    assert body["cold_start"] is False and body["source"] == "pipeline"
    again = _recs(client, user_id="u1", k=5)
    assert again["cached"] is True and again["request_id"] != body["request_id"]
    assert [i["item_id"] for i in again["items"]] == [i["item_id"] for i in body["items"]]


def test_unknown_users_get_the_cold_start_path(client: TestClient) -> None:
    body = _recs(client, user_id=f"new-{uuid.uuid4().hex}", k=5, country="India", device="tv")
    assert body["cold_start"] is True and len(body["items"]) == 5
    anonymous = _recs(client, k=3)
    assert len(anonymous["items"]) == 3


def test_filters_are_applied(client: TestClient, bundle_folder) -> None:
    catalog = pd.read_parquet(bundle_folder / "catalog.parquet").set_index("item_id")
    response = client.post(
        "/v1/recommendations",
        json={"user_id": "u2", "k": 8, "filters": {"max_age_rating": "PG-13", "types": ["movie"]}},
    )
    assert response.status_code == 200, response.text
    items = [i["item_id"] for i in response.json()["items"]]
    assert items
    assert (catalog.loc[items, "min_age"] <= 13).all()
    assert (catalog.loc[items, "type"] == "movie").all()


def test_feedback_changes_the_very_next_answer(client: TestClient) -> None:
    before = _recs(client, user_id="u3", k=10)
    skipped = before["items"][0]["item_id"]
    ack = client.post("/v1/feedback", json={"user_id": "u3", "item_id": skipped, "action": "skip"})
    assert ack.status_code == 202 and ack.json()["stored"] == 1
    after = _recs(client, user_id="u3", k=10)
    assert after["cached"] is False
    assert skipped not in [i["item_id"] for i in after["items"]]
    history = client.get("/v1/users/u3/history").json()
    assert history[-1]["item_id"] == skipped and history[-1]["source"] == "online"


def test_feedback_batches_are_idempotent(client: TestClient) -> None:
    events = [
        {"user_id": "u4", "item_id": f"i{n}", "action": "watch", "watch_seconds": 1200.0,
         "event_id": uuid.uuid4().hex}
        for n in (1, 2, 3)
    ]  # fmt: skip
    first = client.post("/v1/feedback/batch", json={"events": events})
    assert first.status_code == 202 and first.json()["stored"] == 3
    again = client.post("/v1/feedback/batch", json={"events": events})
    assert again.json() == {**again.json(), "stored": 0, "duplicates": 3}


def test_bad_input_gets_a_4xx_with_a_reason(client: TestClient) -> None:
    cases = [
        client.get("/v1/recommendations", params={"k": 0}),
        client.get("/v1/recommendations", params={"k": 1000}),
        client.post("/v1/feedback", json={"user_id": "u1", "item_id": "i1", "action": "dance"}),
        client.post("/v1/feedback", json={"user_id": "u1", "item_id": "i1", "action": "rating"}),
        client.post("/v1/recommendations", json={"user_id": "u1", "filterz": {}}),
        client.post("/v1/recommendations", json={"filters": {"max_age_rating": "XYZ"}}),
        client.post("/v1/recommendations", json={"filters": {"year_min": 2020, "year_max": 2000}}),
        client.post("/v1/recommendations", json={"filters": {"max_age_rating": 30}}),
        client.post("/v1/feedback/batch", json={"events": []}),
    ]
    # filters are checked once, by the pipeline's rules, and the reason names the field
    assert "max_age_rating" in str(cases[5].json()["detail"])
    assert "year_min" in str(cases[6].json()["detail"])
    for response in cases:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["detail"]
    big = client.post(
        "/v1/feedback", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert big.status_code == 413
    streamed = client.post(  # no content-length: the limit counts the chunks as they come
        "/v1/feedback",
        content=iter([b"x" * 600_000, b"x" * 600_000]),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413 and "body larger" in streamed.json()["detail"]


def test_similar_and_history(client: TestClient) -> None:
    similar = client.get("/v1/items/i4/similar", params={"k": 5})
    assert similar.status_code == 200 and len(similar.json()) == 5
    assert "i4" not in [s["item_id"] for s in similar.json()]
    assert client.get("/v1/items/nope/similar").status_code == 404
    history = client.get("/v1/users/u1/history")
    assert history.status_code == 200 and history.json()[0]["source"] == "training"
    assert client.get("/v1/users/nobody-at-all/history").status_code == 404


def test_operations_endpoints(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    _recs(client, user_id="u5", k=3)
    metrics = client.get("/metrics").text
    for name in (
        "cinerec_http_request_seconds_bucket",
        "cinerec_pipeline_stage_seconds_bucket",
        "cinerec_cache_requests_total",
        "cinerec_candidates_bucket",
        "cinerec_model_info",
    ):
        assert name in metrics
    route_label = 'route="/v1/recommendations",status="200"'
    assert route_label in metrics  # the route template, not the raw path
    assert client.get("/openapi.json").status_code == 200


def test_admin_needs_the_key(client: TestClient) -> None:
    assert client.post("/v1/admin/reload").status_code == 401
    wrong = client.post("/v1/admin/reload", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    headers = {"X-API-Key": ADMIN_KEY}
    reload = client.post("/v1/admin/reload", headers=headers)
    assert reload.status_code == 200 and reload.json()["changed"] is False
    picks = client.put("/v1/admin/editor-picks", json={"item_ids": ["cold1"]}, headers=headers)
    assert picks.status_code == 200
    unknown = client.put("/v1/admin/editor-picks", json={"item_ids": ["zzz"]}, headers=headers)
    assert unknown.status_code == 404
    assert (
        client.post("/v1/admin/promote", json={"version": "x"}, headers=headers).status_code == 409
    )


def test_admin_is_disabled_without_a_configured_key(bundle_folder, tmp_path) -> None:
    from cinerec.serving.app import create_app
    from tests.serving.conftest import make_settings

    app = create_app(make_settings(bundle_folder, tmp_path, admin_api_key=None))
    with TestClient(app) as client:
        response = client.post("/v1/admin/reload", headers={"X-API-Key": "anything"})
        assert response.status_code == 403


def test_feedback_feeds_the_online_trending_counts(client: TestClient) -> None:
    events = [{"user_id": f"fan{n}", "item_id": "cold3", "action": "like"} for n in range(30)]
    events += [{"user_id": f"fan{n}", "item_id": "cold4", "action": "skip"} for n in range(40)]
    assert client.post("/v1/feedback/batch", json={"events": events}).status_code == 202
    services = client.app.state.services  # type: ignore[attr-defined]
    services.answers.trending_memo = (0.0, ())  # skip the 2 s refresh interval
    live = dict(services.answers.live_trending())
    assert live["cold3"] == 30 and "cold4" not in live  # skips do not trend
    request = services.answers.request(services.holder.value, schemas.RecommendationRequest(), [])
    rec = services.holder.value
    history, stored = rec.history_for(request)
    cands = rec.score_candidates(history, request, stored=stored).candidates
    row = list(cands.items).index(int(rec.items.lookup(["cold3"])[0]))
    assert cands.source_ranks[row, cands.source_names.index("trending")] == 1


def test_fastapi_telemetry_is_off_unless_asked_for(bundle_folder: Path, tmp_path: Path) -> None:
    assert telemetry_options(True) == {}
    off = telemetry_options(False)
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        assert off == {"telemetry": dict.fromkeys(TELEMETRY_PARTS, False)}
    else:  # a FastAPI without built-in telemetry gets no such argument
        assert off == {}
    settings = make_settings(bundle_folder, tmp_path, opentelemetry=True)
    with TestClient(create_app(settings)) as traced:  # FastAPI's own spans on: still serves
        assert traced.get("/v1/recommendations", params={"user_id": "u1"}).status_code == 200
