"""The API on the production parts: PostgreSQL event log, Redis state, cache and stream."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cinerec.serving.app import create_app
from cinerec.serving.eventlog import EventLog
from tests.services import POSTGRES_URL, REDIS_URL, postgres_or_skip, redis_or_skip
from tests.serving.conftest import make_settings

pytestmark = pytest.mark.integration
POSTGRES = POSTGRES_URL
REDIS = REDIS_URL


@pytest.fixture()
def services_up() -> None:
    redis_or_skip(REDIS)
    postgres_or_skip(POSTGRES)


def test_read_after_write_through_postgres_and_redis(
    bundle_folder: Path, tmp_path: Path, services_up: None
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        bundle_folder, tmp_path, database_url=POSTGRES, redis_url=REDIS, redis_prefix=prefix,
        batch_scores=False,
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready").json()
        assert ready["ready"] and all(ready["checks"].values()), ready
        first = client.get("/v1/recommendations", params={"user_id": "u7", "k": 8}).json()
        assert (
            client.get("/v1/recommendations", params={"user_id": "u7", "k": 8}).json()["cached"]
            is True
        )
        skipped = first["items"][0]["item_id"]
        event_id = uuid.uuid4().hex
        ack = client.post(
            "/v1/feedback",
            json={"user_id": "u7", "item_id": skipped, "action": "skip", "event_id": event_id},
        )
        assert ack.status_code == 202
        after = client.get("/v1/recommendations", params={"user_id": "u7", "k": 8}).json()
        assert after["cached"] is False and skipped not in [i["item_id"] for i in after["items"]]
        services = client.app.state.services  # type: ignore[attr-defined]
        assert [e.event_id for e in services.state.recent("u7")][-1] == event_id
    log = EventLog(POSTGRES)
    try:
        assert event_id in {e.event_id for e in log.user_events("u7", limit=50)}
    finally:
        log.close()


def stream_client(
    bundle_folder: Path, tmp_path: Path, prefix: str, *, consumer: bool
) -> TestClient:
    """An API client on Redis under ``prefix``, with or without its in-process consumer."""
    settings = make_settings(
        bundle_folder, tmp_path, redis_url=REDIS, redis_prefix=prefix, stream_consumer=consumer
    )
    return TestClient(create_app(settings))


def post_events(client: TestClient, *, users: str, item: str, action: str, n: int) -> None:
    """One batch: ``n`` different users (``users`` + number) each ``action`` on ``item``."""
    events = [{"user_id": f"{users}{k}", "item_id": item, "action": action} for k in range(n)]
    assert client.post("/v1/feedback/batch", json={"events": events}).status_code == 202


def test_the_stream_consumer_maintains_shared_aggregates(
    bundle_folder: Path, tmp_path: Path, services_up: None
) -> None:
    from cinerec.serving.state import RedisState
    from cinerec.serving.stream import consume

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    with stream_client(bundle_folder, tmp_path, prefix, consumer=False) as client:
        post_events(client, users="v", item="i9", action="like", n=12)
    shared = RedisState(REDIS, prefix=prefix)
    processed = consume(
        REDIS, shared, consumer="test", stream=f"{prefix}:events", max_batches=5, block_ms=100
    )
    assert processed == 12
    assert dict(shared.trending(n=10))["i9"] == 12


def test_the_service_runs_its_own_consumer(
    bundle_folder: Path, tmp_path: Path, services_up: None
) -> None:
    import time

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    with stream_client(bundle_folder, tmp_path, prefix, consumer=True) as client:
        post_events(client, users="w", item="i8", action="view", n=7)
        services = client.app.state.services  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while dict(services.state.trending(n=10)).get("i8") != 7:
            assert time.monotonic() < deadline, "the consumer did not fold the events in"
            time.sleep(0.1)
