"""Talking to Redis without waiting on it: a fail-fast client and a circuit breaker.

Every Redis user of the service (the online state, the answer cache, the event stream)
must answer a request even while Redis is down, and never wait longer than a socket
timeout for it. :func:`connect` gives a client that fails fast; :class:`Circuit` stops
calling Redis after a failure, answers from the caller's fallback meanwhile and lets one
caller probe again after a back-off, catching up on what the outage deferred. Kept apart
from :mod:`cinerec.serving.state` because the cache and the stream need it as much.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

log = logging.getLogger(__name__)

#: The errors that mean "Redis is unreachable now" (anything else is a bug or bad data).
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)

T = TypeVar("T")


def connect(url: str, *, timeout_s: float = 0.2, decode: bool = True) -> redis.Redis:
    """A Redis client that fails fast: short socket timeouts, one immediate reconnect.

    redis-py's default (three retries, back-off up to 10 s) would hold a request for seconds
    in an outage; one retry on connection errors only (a timeout may have applied the
    command) still replaces a stale pooled connection.
    """
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    kwargs = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    return redis.Redis.from_url(url, retry=retry, decode_responses=decode, **kwargs)


class Circuit:
    """Whether to call Redis now: yes while it works; after a failure, not until a back-off
    (doubling per failed probe, capped). Then one caller at a time runs ``probe`` (ping, catch
    up on what the outage deferred, :meth:`close`); the others keep using their fallback."""

    def __init__(
        self, name: str, probe: Callable[[], bool], *, backoff_s: float, max_backoff_s: float
    ) -> None:
        self.name, self.probe = name, probe
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self._lock = threading.Lock()
        self._down = self._probing = False
        self._retry_at, self._delay = 0.0, backoff_s

    def allow(self) -> bool:
        with self._lock:
            if not self._down:
                return True
            if self._probing or time.monotonic() < self._retry_at:
                return False
            self._probing = True
        try:
            return self.probe()
        except REDIS_DOWN as exc:
            self.fail(exc)
            return False
        finally:
            with self._lock:
                self._probing = False

    def call(self, redis_call: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``redis_call()`` when allowed and Redis answers, else ``fallback()``."""
        if self.allow():
            try:
                return redis_call()
            except REDIS_DOWN as exc:
                self.fail(exc)
        return fallback()

    def fail(self, exc: Exception) -> None:
        with self._lock:
            if self._down:
                self._delay = min(self._delay * 2, self.max_backoff_s)
            else:
                self._down, self._delay = True, self.backoff_s
                log.warning("%s: Redis unreachable (%s); degraded", self.name, exc)
            self._retry_at = time.monotonic() + self._delay

    def close(self) -> None:
        with self._lock:
            if self._down:
                log.warning("%s: Redis is back", self.name)
            self._down, self._delay = False, self.backoff_s

    def reopen(self) -> None:
        """Mark down with the next call probing at once (there is work to catch up on)."""
        with self._lock:
            if not self._down:
                self._down, self._retry_at = True, 0.0
