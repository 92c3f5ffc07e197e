"""Event stream: publish, consume into the aggregates, at-least-once and crash recovery."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from typer.testing import CliRunner

from cinerec.cli import app
from cinerec.serving.state import MemoryState, RedisState
from cinerec.serving.stream import EventStream, consume
from tests.services import drop_prefix, free_port, redis_or_skip
from tests.serving.test_state import BASE, event

pytestmark = pytest.mark.integration


@dataclass
class Setup:
    url: str
    stream: str  # also the key prefix of everything the test writes
    client: redis.Redis

    def publish(self, *items: str) -> None:
        events = [event(f"u{i}", item, BASE + i) for i, item in enumerate(items)]
        EventStream(self.url, stream=self.stream).publish(events)

    def consume(self, state: MemoryState | RedisState, consumer: str = "c1", **kw: object) -> int:
        kw = {"group": "g", "block_ms": 50, "max_batches": 1, **kw}
        return consume(self.url, state, consumer=consumer, stream=self.stream, **kw)  # type: ignore[arg-type]

    def read_without_ack(self, consumer: str) -> int:
        self.client.xgroup_create(self.stream, "g", id="0", mkstream=True)
        reply = self.client.xreadgroup("g", consumer, {self.stream: ">"}, count=100)
        return len(reply[0][1])

    def pending(self) -> int:
        return int(self.client.xpending(self.stream, "g")["pending"])


@pytest.fixture
def setup() -> Iterator[Setup]:
    url = redis_or_skip()
    stream = f"test-stream-{uuid.uuid4().hex}"
    try:
        yield Setup(url, stream, redis.Redis.from_url(url, decode_responses=True))
    finally:
        drop_prefix(url, stream)


def test_publish_then_consume_updates_trending_once(setup: Setup) -> None:
    setup.publish("a", "a", "b", "a", "b")
    assert setup.client.xlen(setup.stream) == 5
    state = MemoryState()
    assert setup.consume(state) == 5
    assert state.trending(now=BASE) == [("a", 3.0), ("b", 2.0)]
    assert state.recent("u0") == []  # aggregates only
    assert setup.pending() == 0
    assert setup.consume(state) == 0  # acknowledged entries are not read again
    setup.publish("b", "b")
    assert setup.consume(state) == 2
    assert state.trending(now=BASE) == [("b", 4.0), ("a", 3.0)]


def test_publish_trims_approximately(setup: Setup) -> None:
    stream = EventStream(setup.url, stream=setup.stream, maxlen=10)
    for start in range(0, 1000, 100):
        stream.publish([event("u", f"m{i}", BASE) for i in range(start, start + 100)])
    assert setup.client.xlen(setup.stream) < 300
    stream.publish([])


def test_crashed_consumers_pending_entries_are_claimed(setup: Setup) -> None:
    setup.publish("a", "b", "c", "d")
    assert setup.read_without_ack("crashed") == 4
    state = MemoryState()
    assert setup.consume(state, consumer="fresh") == 0  # not idle long enough (60 s default)
    assert setup.pending() == 4
    assert setup.consume(state, consumer="fresh", claim_idle_ms=0) == 4
    assert sorted(item for item, _ in state.trending(now=BASE)) == ["a", "b", "c", "d"]
    assert setup.pending() == 0


def test_restarted_consumer_rereads_its_own_pending(setup: Setup) -> None:
    setup.publish("a", "a", "b")
    assert setup.read_without_ack("c1") == 3
    state = MemoryState()
    assert setup.consume(state, consumer="c1") == 3
    assert state.trending(now=BASE) == [("a", 2.0), ("b", 1.0)]
    assert setup.pending() == 0


def test_malformed_entries_are_skipped_and_acknowledged(setup: Setup) -> None:
    setup.client.xadd(setup.stream, {"event": "not json"})
    setup.client.xadd(setup.stream, {"other": "x"})
    setup.publish("a")
    state = MemoryState()
    assert setup.consume(state) == 1
    assert state.trending(now=BASE) == [("a", 1.0)]
    assert setup.pending() == 0


def test_consume_until_stopped(setup: Setup) -> None:
    state = MemoryState()
    stop = threading.Event()
    done: list[int] = []
    worker = threading.Thread(
        target=lambda: done.append(setup.consume(state, stop=stop, max_batches=None))
    )
    worker.start()
    setup.publish("a", "b")
    deadline = time.monotonic() + 5
    while len(state.trending(now=BASE)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    stop.set()
    worker.join(timeout=2)
    assert not worker.is_alive() and done == [2]


def test_cli_consume_into_redis_state(setup: Setup) -> None:
    setup.publish("a", "b", "b")
    args = ["stream", "consume", "--redis-url", setup.url, "--stream", setup.stream]
    args += ["--prefix", setup.stream, "--consumer", "cli", "--max-batches", "1", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["events"] == 3 and summary["consumer"] == "cli"
    state = RedisState(setup.url, prefix=setup.stream)
    assert state.trending(now=BASE) == [("b", 2.0), ("a", 1.0)]


def test_consumer_waits_out_an_unreachable_redis() -> None:
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert consume(url, MemoryState(), consumer="c", stop=stop, retry_s=0.05) == 0
    assert time.monotonic() - started < 2
