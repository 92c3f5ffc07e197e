"""Read-after-write under concurrency: after a skip is acknowledged, no answer to a later
request holds the skipped title — whatever the user's other requests were doing meanwhile.

The race it guards against: a request misses the cache and computes from the history as it
was *before* a feedback; the feedback invalidates; another request of the same user misses
and computes the fresh answer; then the first one stores its stale answer, which the cache
served until the next invalidation (the cache now carries each request's generation;
:mod:`cinerec.serving.cache`). Checked with the embedded cache and with Redis.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.types import Recommendations, Request
from cinerec.serving import schemas
from cinerec.serving.app import create_app
from cinerec.serving.service import Services
from tests.services import REDIS_URL, drop_prefix, redis_or_skip
from tests.serving.conftest import make_settings
from tests.serving.server import running_server


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.integration)])
def redis_url(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str]]:
    """(REDIS_URL or None for the in-process cache and state, a fresh key prefix)."""
    prefix = f"test-raw-{uuid.uuid4().hex[:8]}"
    if request.param == "embedded":
        yield None, prefix
        return
    url = redis_or_skip(REDIS_URL)
    try:
        yield url, prefix
    finally:
        drop_prefix(url, prefix)


def test_an_answer_computed_before_a_skip_is_never_cached_after_it(
    bundle_folder: Path, tmp_path: Path, redis_url: tuple[str | None, str]
) -> None:
    """Forces the interleaving: request A computes, pauses before storing; the skip is
    acknowledged; request B (same user, same key) answers fresh; A stores; then ask again."""
    url, prefix = redis_url
    settings = make_settings(
        bundle_folder, tmp_path, redis_url=url, redis_prefix=prefix, batch_scores=False
    )
    with TestClient(create_app(settings)) as client:
        services: Services = client.app.state.services  # type: ignore[attr-defined]
        computed, release = threading.Event(), threading.Event()
        held: list[Recommendations] = []
        run = services.pipelines.run

        def pausing(rec: Recommender, request: Request) -> Recommendations:
            result = run(rec, request)
            if threading.current_thread().name == "request-a":
                held.append(result)
                computed.set()
                assert release.wait(30)
            return result

        services.pipelines.run = pausing  # type: ignore[method-assign]
        body = schemas.RecommendationRequest(user_id="u7", k=8)
        answers: list[bytes] = []
        request_a = threading.Thread(
            target=lambda: answers.append(services.answers.recommend_json(body)), name="request-a"
        )
        request_a.start()
        assert computed.wait(30)
        skipped = held[0].item_ids[0]  # A's answer holds it: computed before the skip
        skip = {"user_id": "u7", "item_id": skipped, "action": "skip"}
        assert client.post("/v1/feedback", json=skip).status_code == 202
        fresh = client.get("/v1/recommendations", params={"user_id": "u7", "k": 8}).json()
        assert not fresh["cached"] and skipped not in [i["item_id"] for i in fresh["items"]]
        release.set()
        request_a.join(30)
        assert answers and skipped.encode() in answers[0]  # A answered its own request
        again = client.get("/v1/recommendations", params={"user_id": "u7", "k": 8}).json()
        assert again["cached"] is True  # B's answer, not A's
        assert skipped not in [i["item_id"] for i in again["items"]]


def stress(base: str, users: list[str], *, threads_per_user: int, rounds: int) -> tuple[int, list]:
    """Each thread: ask, skip the top title, ask again; the threads of one user overlap.
    Every answer to a request sent after a skip was acknowledged must not hold that title
    (any thread's skip of the same user). Returns (checks made, violations)."""
    acked: dict[str, set[str]] = {user: set() for user in users}
    lock = threading.Lock()
    violations: list[tuple[str, set[str]]] = []
    checks = [0]
    errors: list[BaseException] = []

    def ask(http: httpx.Client, user: str) -> list[str]:
        with lock:
            banned = set(acked[user])  # acknowledged before this request was sent
        answer = http.get("/v1/recommendations", params={"user_id": user, "k": 5})
        answer.raise_for_status()
        items = [i["item_id"] for i in answer.json()["items"]]
        with lock:
            checks[0] += 1
            if banned & set(items):
                violations.append((user, banned & set(items)))
        return items

    def client_thread(user: str) -> None:
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                for _ in range(rounds):
                    items = ask(http, user)
                    if not items:
                        return
                    skip = {"user_id": user, "item_id": items[0], "action": "skip"}
                    assert http.post("/v1/feedback", json=skip).status_code == 202
                    with lock:
                        acked[user].add(items[0])
                    ask(http, user)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [
        threading.Thread(target=client_thread, args=(user,))
        for user in acked
        for _ in range(threads_per_user)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not errors, errors[:3]
    return checks[0], violations


def test_concurrent_clients_never_see_an_acknowledged_skip(
    bundle_folder: Path, tmp_path: Path, redis_url: tuple[str | None, str]
) -> None:
    """Client threads against the real server (uvicorn, its thread pool): 8 threads on 4
    users (the reported pattern), then 8 threads on one user (the most overlap; this
    phase found the race in about one run of three before the fix)."""
    url, prefix = redis_url
    env = {
        "CINEREC_BUNDLE": str(bundle_folder),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'events.db'}",
        "CINEREC_BATCH_SCORES": "false",
    }
    if url is not None:
        env |= {"REDIS_URL": url, "CINEREC_REDIS_PREFIX": prefix}
    with running_server(env, cwd=tmp_path) as (_, base):
        spread = stress(base, ["u0", "u1", "u2", "u3"], threads_per_user=2, rounds=6)
        piled = stress(base, ["u10"], threads_per_user=8, rounds=3)
    for (checks, violations), expected in ((spread, 4 * 2 * 6 * 2), (piled, 8 * 3 * 2)):
        assert checks == expected  # every round ran (lists never ran dry)
        assert not violations, violations
