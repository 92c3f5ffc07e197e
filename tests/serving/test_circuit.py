"""Circuit: the fallback while Redis is down, back-off between probes, one prober at a time.

(The Redis users' outage behaviour end to end is in test_state.py and test_cache.py.)
"""

from __future__ import annotations

import threading
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cinerec.serving.circuit import Circuit


class Redis:
    """Stands in for Redis: up or down, counting calls and probes."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0
        self.probes = 0
        self.circuit = Circuit("test", self.probe, backoff_s=0.3, max_backoff_s=0.6)

    def probe(self) -> bool:
        self.probes += 1
        if not self.up:
            raise RedisTimeoutError("timed out")
        self.circuit.close()
        return True

    def get(self) -> str:
        self.calls += 1
        if not self.up:
            raise RedisConnectionError("connection refused")
        return "redis"

    def ask(self) -> str:
        return self.circuit.call(self.get, lambda: "fallback")


def test_down_redis_is_left_alone_for_a_doubling_capped_back_off() -> None:
    redis = Redis()
    assert redis.ask() == "redis"
    redis.up = False
    assert redis.ask() == "fallback" and redis.calls == 2  # failed once: circuit open
    assert redis.ask() == "fallback" and (redis.calls, redis.probes) == (2, 0)  # not yet
    time.sleep(0.35)
    assert redis.ask() == "fallback" and (redis.calls, redis.probes) == (2, 1)  # probe failed
    assert redis.ask() == "fallback" and redis.probes == 1  # back-off doubled to 0.6 s
    time.sleep(0.35)
    assert redis.ask() == "fallback" and redis.probes == 1
    time.sleep(0.3)
    assert redis.ask() == "fallback" and redis.probes == 2  # failed again: capped at 0.6 s
    redis.up = True
    time.sleep(0.65)
    assert redis.ask() == "redis" and redis.probes == 3  # the probe closed the circuit
    assert redis.ask() == "redis" and redis.probes == 3  # no probing while it works


def test_one_caller_probes_while_the_others_use_the_fallback() -> None:
    entered, release = threading.Event(), threading.Event()
    probes: list[str] = []

    def slow_probe() -> bool:
        probes.append(threading.current_thread().name)
        entered.set()
        assert release.wait(10)
        circuit.close()
        return True

    circuit = Circuit("test", slow_probe, backoff_s=0.0, max_backoff_s=0.0)
    circuit.fail(RedisConnectionError("connection refused"))
    answers: list[str] = []
    prober = threading.Thread(
        target=lambda: answers.append(circuit.call(lambda: "redis", lambda: "fallback")),
        name="prober",
    )
    prober.start()
    assert entered.wait(10)
    assert circuit.call(lambda: "redis", lambda: "fallback") == "fallback"  # not a 2nd probe
    release.set()
    prober.join(10)
    assert answers == ["redis"] and probes == ["prober"]
    assert circuit.call(lambda: "redis", lambda: "fallback") == "redis"


def test_reopen_has_the_next_call_probe_at_once() -> None:
    redis = Redis()
    redis.circuit.reopen()  # e.g. a write was buffered: catch up before calling Redis again
    assert redis.ask() == "redis" and redis.probes == 1


def test_other_errors_are_bugs_not_outages() -> None:
    redis = Redis()

    def broken() -> str:
        raise ValueError("bad reply")

    with pytest.raises(ValueError, match="bad reply"):
        redis.circuit.call(broken, lambda: "fallback")
    assert redis.ask() == "redis" and redis.probes == 0  # the circuit stayed closed
