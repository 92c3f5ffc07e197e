"""Online state: one contract for MemoryState and RedisState, and ResilientState's outages."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from cinerec.serving.events import FeedbackEvent
from cinerec.serving.state import (
    MemoryState,
    OnlineState,
    RedisState,
    ResilientState,
    make_state,
)
from tests.services import (
    ThrowawayRedis,
    drop_prefix,
    free_port,
    redis_or_skip,
)

BASE = float(int(time.time() // 3600) * 3600 + 1800)  # the middle of the current hour


def event(user: str, item: str, at: float, action: str = "click") -> FeedbackEvent:
    return FeedbackEvent(user, item, action, datetime.fromtimestamp(at, tz=UTC))  # type: ignore[arg-type]


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def state(request: pytest.FixtureRequest) -> Iterator[OnlineState]:
    if request.param == "memory":
        yield MemoryState(max_recent=5)
        return
    url = redis_or_skip()
    prefix = f"test-state-{uuid.uuid4().hex}"
    try:
        yield RedisState(url, prefix=prefix, max_recent=5)
    finally:
        drop_prefix(url, prefix)


# -- the contract --------------------------------------------------------------------------
def test_recent_is_time_ordered_and_trimmed(state: OnlineState) -> None:
    events = [event("u1", f"m{i}", BASE + i) for i in range(8)]
    state.record([events[2], events[0], events[1]])  # a batch out of order
    state.record(events[3:])
    state.record([event("u2", "x", BASE)])
    assert [e.event_id for e in state.recent("u1")] == [e.event_id for e in events[3:]]
    assert state.recent("u1")[0] == events[3]  # round-trips every field
    assert [e.item_id for e in state.recent("u2")] == ["x"]
    assert state.recent("nobody") == []


def test_trending_counts_and_excludes_skips(state: OnlineState) -> None:
    clicks = [("a", 3), ("b", 2), ("c", 1)]
    state.record([event(f"u{i}", item, BASE) for item, n in clicks for i in range(n)])
    state.record([event(f"u{i}", "d", BASE, action="skip") for i in range(5)])
    assert state.trending(10, now=BASE) == [("a", 3.0), ("b", 2.0), ("c", 1.0)]
    assert state.trending(2, now=BASE) == [("a", 3.0), ("b", 2.0)]
    assert state.trending(0, now=BASE) == []


def test_user_lists_and_aggregates_are_separate(state: OnlineState) -> None:
    state.record_user([event("u1", "a", BASE)])
    assert state.trending(now=BASE) == []
    state.record_aggregates([event("u2", "b", BASE), event("u3", "c", BASE)])
    assert state.recent("u2") == []
    assert [e.item_id for e in state.recent("u1")] == ["a"]
    assert state.trending(now=BASE) == [("c", 1.0), ("b", 1.0)]  # ties: item id descending


def test_trending_window_and_old_buckets(state: OnlineState) -> None:
    state.record([event("u1", "old", BASE - 30 * 3600)])
    state.record([event("u1", "new", BASE - 2 * 3600), event("u2", "new", BASE)])
    assert state.trending(now=BASE) == [("new", 2.0)]
    assert state.trending(now=BASE, window_s=3600) == [("new", 1.0)]
    assert state.trending(now=BASE, window_s=40 * 3600) == [("new", 2.0)]  # "old" expired
    assert state.trending(now=BASE + 26 * 3600) == []


def test_memory_drops_buckets_past_retention() -> None:
    state = MemoryState()
    state.record_aggregates([event("u1", "a", BASE - 40 * 3600)])
    state.record_aggregates([event("u1", "b", BASE)])
    assert sorted(state._buckets) == [int(BASE // 3600)]


def test_memory_keeps_at_most_max_users() -> None:
    state = MemoryState(max_users=2)
    for user in ("u1", "u2", "u1", "u3"):
        state.record_user([event(user, "a", BASE)])
    assert state.recent("u2") == []
    assert len(state.recent("u1")) == 2 and len(state.recent("u3")) == 1


@pytest.mark.integration
def test_redis_keys_expire() -> None:
    url = redis_or_skip()
    prefix = f"test-state-{uuid.uuid4().hex}"
    try:
        RedisState(url, prefix=prefix).record([event("u1", "a", BASE)])
        client = redis.Redis.from_url(url)
        assert 24 * 3600 < client.ttl(f"{prefix}:trend:{int(BASE // 3600)}") <= 26 * 3600
        assert 29 * 86400 < client.ttl(f"{prefix}:recent:u1") <= 30 * 86400
        assert not list(client.scan_iter(match=f"{prefix}:trend:union:*"))
    finally:
        drop_prefix(url, prefix)


# -- ResilientState ------------------------------------------------------------------------
def test_outage_buffer_is_bounded_and_nothing_raises() -> None:
    dead = RedisState(f"redis://127.0.0.1:{free_port()}/0")
    state = ResilientState(dead, buffer_size=3, backoff_s=60)
    for i in range(5):
        state.record([event("u1", f"m{i}", BASE + i)])
    assert not state.healthy()
    assert state.pending_replay == 3 and state.dropped == 2
    assert [e.item_id for e in state.recent("u1")] == [f"m{i}" for i in range(5)]
    assert state.trending(2, now=BASE) == [("m4", 1.0), ("m3", 1.0)]


def test_make_state() -> None:
    assert isinstance(make_state(None), MemoryState)
    state = make_state("redis://127.0.0.1:1/0", prefix="p")
    assert isinstance(state, ResilientState) and state.primary.prefix == "p"


@pytest.mark.integration
def test_resilient_state_outage_and_recovery(redis_server: ThrowawayRedis) -> None:
    state = ResilientState(
        RedisState(redis_server.url, prefix="t"), backoff_s=0.2, max_backoff_s=0.5
    )
    before = event("u1", "a", BASE)
    state.record([before])
    assert state.healthy()
    assert [e.item_id for e in RedisState(redis_server.url, prefix="t").recent("u1")] == ["a"]

    redis_server.kill()
    during = [event("u1", "b", BASE + 1), event("u2", "b", BASE + 2)]
    user_only = event("u3", "c", BASE + 3)
    calls = [
        lambda: state.record([during[0]]),
        lambda: state.record([during[1]]),
        lambda: state.record_user([user_only]),
        lambda: state.recent("u1"),
        lambda: state.trending(now=BASE),
        state.healthy,
    ]
    for call in calls:
        started = time.perf_counter()
        call()
        assert time.perf_counter() - started < 0.5
    assert [e.item_id for e in state.recent("u1")] == ["a", "b"]  # the mirror kept "a"
    assert state.trending(now=BASE) == [("b", 2.0), ("a", 1.0)]
    assert not state.healthy()
    assert state.pending_replay == 3

    redis_server.start()  # empty: the killed server persisted nothing
    deadline = time.monotonic() + 5
    while not state.healthy():
        assert time.monotonic() < deadline, "no recovery within 5 s"
        time.sleep(0.05)
    assert state.pending_replay == 0
    fresh = RedisState(redis_server.url, prefix="t")
    assert [e.event_id for e in fresh.recent("u1")] == [during[0].event_id]
    assert [e.event_id for e in fresh.recent("u3")] == [user_only.event_id]
    assert fresh.trending(now=BASE) == [("b", 2.0)]  # record_user's event does not trend
    state.record([event("u1", "d", BASE + 4)])
    assert [e.item_id for e in fresh.recent("u1")] == ["b", "d"]
