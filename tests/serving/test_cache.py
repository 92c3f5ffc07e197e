"""RecommendationCache: the same behaviour with Redis and with the local LRU; Redis outages."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from cinerec.serving.cache import RecommendationCache
from tests.services import ThrowawayRedis, drop_prefix, redis_or_skip

Factory = Callable[..., RecommendationCache]


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.integration)])
def make_cache(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Builds caches on one backend; the Redis ones share a fresh key prefix."""
    if request.param == "local":
        yield lambda **kw: RecommendationCache(None, **kw)
        return
    url = redis_or_skip()
    prefix = f"test-cache-{uuid.uuid4().hex}"
    try:
        yield lambda **kw: RecommendationCache(url, prefix=prefix, **kw)
    finally:
        drop_prefix(url, prefix)


def test_set_get_and_counters(make_cache: Factory) -> None:
    cache = make_cache()
    assert cache.get("u1", "k1") is None
    payload = b'{"items": [1, 2]}\xff\x00'
    cache.set("u1", "k1", payload)
    assert cache.get("u1", "k1") == payload
    assert cache.get("u1", "k2") is None
    assert cache.get("u2", "k1") is None
    assert (cache.hits, cache.misses) == (1, 3)
    assert cache.healthy()


def test_entries_expire(make_cache: Factory) -> None:
    cache = make_cache(ttl_s=0.2)
    cache.set("u1", "k", b"x")
    assert cache.get("u1", "k") == b"x"
    time.sleep(0.3)
    assert cache.get("u1", "k") is None


def test_invalidate_drops_every_key_of_one_user_only(make_cache: Factory) -> None:
    cache = make_cache()
    for user, key in [("u1", "a"), ("u1", "b"), ("u2", "a")]:
        cache.set(user, key, f"{user}/{key}".encode())
    cache.invalidate("u1")
    assert cache.get("u1", "a") is None and cache.get("u1", "b") is None
    assert cache.get("u2", "a") == b"u2/a"
    cache.set("u1", "a", b"new")  # caching works again after an invalidation
    assert cache.get("u1", "a") == b"new"


def test_answer_outdated_during_computation_is_not_stored(make_cache: Factory) -> None:
    cache = make_cache()
    assert cache.get("u1", "k") is None  # a request misses and computes...
    cache.invalidate("u1")  # ...while that user's feedback arrives
    cache.set("u1", "k", b"stale")
    assert cache.get("u1", "k") is None
    cache.set("u1", "k", b"fresh")  # the next request's answer is cached
    assert cache.get("u1", "k") == b"fresh"


@pytest.mark.integration
def test_replicas_share_invalidations() -> None:
    url = redis_or_skip()
    prefix = f"test-cache-{uuid.uuid4().hex}"
    try:
        first, second = (RecommendationCache(url, prefix=prefix) for _ in range(2))
        first.set("u1", "k", b"x")
        assert second.get("u1", "k") == b"x"
        second.invalidate("u1")
        assert first.get("u1", "k") is None
    finally:
        drop_prefix(url, prefix)


def test_local_lru_is_bounded() -> None:
    cache = RecommendationCache(None, max_local=2)
    cache.set("u1", "a", b"1")
    cache.set("u2", "a", b"2")
    assert cache.get("u1", "a") == b"1"  # u1 is now the most recent
    cache.set("u3", "a", b"3")
    assert cache.get("u2", "a") is None
    assert cache.get("u1", "a") == b"1" and cache.get("u3", "a") == b"3"


def _timed(call: Callable[[], object]) -> object:
    started = time.perf_counter()
    result = call()
    assert time.perf_counter() - started < 0.5
    return result


@pytest.mark.integration
def test_partition_never_serves_an_answer_invalidated_meanwhile(
    redis_server: ThrowawayRedis,
) -> None:
    cache = RecommendationCache(redis_server.url, backoff_s=0.2, max_backoff_s=0.5)
    other = RecommendationCache(redis_server.url)  # another replica
    cache.set("u1", "k", b"before")
    cache.set("u2", "k", b"kept")
    redis_server.pause()  # requests now time out
    assert _timed(lambda: cache.get("u2", "k")) is None  # no caching during the outage
    _timed(lambda: cache.invalidate("u1"))  # cannot reach Redis
    _timed(lambda: cache.set("u1", "k", b"during"))
    assert not _timed(cache.healthy)
    redis_server.resume()
    deadline = time.monotonic() + 5
    while not cache.healthy():
        assert time.monotonic() < deadline, "no recovery within 5 s"
        time.sleep(0.05)
    assert cache.get("u1", "k") is None  # the invalidation was sent on recovery...
    assert other.get("u1", "k") is None  # ...so no replica serves the old answer
    assert cache.get("u2", "k") == b"kept"
    cache.set("u1", "k", b"after")
    assert other.get("u1", "k") == b"after"


@pytest.mark.integration
def test_redis_gone_and_back(redis_server: ThrowawayRedis) -> None:
    cache = RecommendationCache(redis_server.url, backoff_s=0.2, max_backoff_s=0.5)
    cache.set("u1", "k", b"x")
    redis_server.kill()
    for _ in range(3):
        assert _timed(lambda: cache.get("u1", "k")) is None
        _timed(lambda: cache.set("u1", "k", b"y"))
        _timed(lambda: cache.invalidate("u2"))
    assert not cache.healthy()
    redis_server.start()
    deadline = time.monotonic() + 5
    while not cache.healthy():
        assert time.monotonic() < deadline, "no recovery within 5 s"
        time.sleep(0.05)
    cache.set("u1", "k", b"z")
    assert cache.get("u1", "k") == b"z"
