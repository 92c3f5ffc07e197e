"""Reliability of the real service process: crashes, Redis outages, hot reloads, fuzzing.

These start ``cinerec serve`` under uvicorn in a subprocess and talk HTTP to it.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cinerec.serving.eventlog import EventLog
from cinerec.serving.registry import ModelRegistry
from tests.services import ThrowawayRedis, skip_or_fail, throwaway_redis
from tests.serving.server import running_server

pytestmark = pytest.mark.integration


def test_kill_9_during_a_feedback_burst_loses_no_acknowledged_event(
    bundle_folder: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    env = {"CINEREC_BUNDLE": str(bundle_folder), "CINEREC_DATABASE_URL": url}
    acknowledged: list[str] = []
    with (
        running_server(env, cwd=tmp_path) as (proc, base),
        httpx.Client(base_url=base, timeout=5) as client,
    ):
        killer = threading.Timer(1.5, lambda: proc.send_signal(signal.SIGKILL))
        killer.start()
        try:
            for n in range(100_000):
                event_id = uuid.uuid4().hex
                body = {"user_id": f"u{n % 7}", "item_id": "i1", "action": "view",
                        "event_id": event_id}  # fmt: skip
                response = client.post("/v1/feedback", json=body)
                if response.status_code == 202:
                    acknowledged.append(event_id)
        except httpx.HTTPError:
            pass  # the server is gone
        killer.cancel()
    assert len(acknowledged) > 20
    log = EventLog(url)
    try:
        stored = {event.event_id for _, event in log.read(after=0, limit=1_000_000)}
    finally:
        log.close()
    assert set(acknowledged) <= stored


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    """A redis-server of the test's own (skips locally, fails in CI, without one)."""
    yield from throwaway_redis(tmp_path)


def test_redis_stopped_and_restarted_under_load(
    bundle_folder: Path, tmp_path: Path, redis_server: ThrowawayRedis
) -> None:
    env = {
        "CINEREC_BUNDLE": str(bundle_folder),
        "CINEREC_DATABASE_URL": f"sqlite:///{tmp_path / 'events.db'}",
        "REDIS_URL": redis_server.url,
    }
    failures: list[str] = []
    try:
        with (
            running_server(env, cwd=tmp_path) as (_, base),
            httpx.Client(base_url=base, timeout=5) as client,
        ):

            def burst(n: int) -> None:
                for i in range(n):
                    user = f"u{i % 9}"
                    got = client.get("/v1/recommendations", params={"user_id": user, "k": 5})
                    sent = client.post(
                        "/v1/feedback", json={"user_id": user, "item_id": "i2", "action": "view"}
                    )
                    for response in (got, sent):
                        if response.status_code >= 500:
                            failures.append(f"{response.status_code} {response.text[:200]}")

            burst(20)
            redis_server.kill()
            started = time.monotonic()
            burst(20)  # Redis down: in-process state, no cache — still answering
            assert time.monotonic() - started < 30
            assert client.get("/ready").json()["checks"]["state"] is False
            redis_server.start()  # the same port again
            deadline = time.monotonic() + 20
            while client.get("/ready").json()["checks"]["state"] is False:
                assert time.monotonic() < deadline, "did not reconnect to Redis"
                burst(2)
                time.sleep(0.3)
            burst(10)
    finally:
        redis_server.kill()
    assert not failures, failures[:3]


def test_hot_reload_under_load_fails_no_request(bundle_folder: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(str(tmp_path / "registry"))
    first = registry.publish(bundle_folder, version="v1")
    second_folder = tmp_path / "bundle2"
    shutil.copytree(bundle_folder, second_folder)
    manifest = json.loads((second_folder / "manifest.json").read_text())
    manifest["created_at"] = "2030-01-01T00:00:00+00:00"  # a later training run
    (second_folder / "manifest.json").write_text(json.dumps(manifest))
    second = registry.publish(second_folder, version="v2")
    registry.promote(first)
    env = {
        "CINEREC_REGISTRY": str(tmp_path / "registry"),
        "CINEREC_REGISTRY_POLL_S": "0.2",
        "CINEREC_DATABASE_URL": f"sqlite:///{tmp_path / 'events.db'}",
    }
    seen_versions: set[str] = set()
    failures: list[str] = []
    with running_server(env, cwd=tmp_path) as (_, base):
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=base, timeout=10) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    params = {"user_id": f"u{n % 20}", "k": 5, "country": f"c{n}"}
                    response = client.get("/v1/recommendations", params=params)
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    else:
                        seen_versions.add(response.json()["model_version"])

        workers = [threading.Thread(target=load) for _ in range(2)]
        for worker in workers:
            worker.start()
        time.sleep(1.0)
        for version in (second, first, second):
            registry.promote(version)
            time.sleep(1.5)
        stop.set()
        for worker in workers:
            worker.join()
    assert not failures, failures[:3]
    assert len(seen_versions) == 2


def test_the_openapi_schema_fuzzed_finds_no_server_error(
    bundle_folder: Path, tmp_path: Path
) -> None:
    try:
        import schemathesis
    except ImportError:
        skip_or_fail("schemathesis is not installed (pip install -e '.[dev]')")
    from fastapi.testclient import TestClient

    from cinerec.serving.app import create_app
    from tests.serving.conftest import make_settings

    app = create_app(make_settings(bundle_folder, tmp_path))
    with TestClient(app):  # runs the lifespan (services)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        failures = []
        for operation in schema.get_all_operations():
            op = operation.ok()
            strategy = op.as_strategy()
            from hypothesis import HealthCheck, given, settings

            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def check(case) -> None:
                response = case.call()
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

            check()
        assert not failures, failures[:5]
