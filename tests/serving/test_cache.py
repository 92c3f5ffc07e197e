"""RecommendationCache: the same behaviour with Redis and with the local LRU; Redis outages."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from cinerec.serving.cache import RecommendationCache
from tests.services import ThrowawayRedis, drop_prefix, redis_or_skip

Factory = Callable[..., RecommendationCache]


def put(cache: RecommendationCache, user: str, key: str, payload: bytes) -> bool:
    """Store an answer computed from the user's current history (generation read now)."""
    return cache.set(user, key, payload, generation=cache.generation(user))


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
    put(cache, "u1", "k1", payload)
    assert cache.get("u1", "k1") == payload
    assert cache.get("u1", "k2") is None
    assert cache.get("u2", "k1") is None
    assert (cache.hits, cache.misses) == (1, 3)
    assert cache.healthy()


def test_entries_expire(make_cache: Factory) -> None:
    cache = make_cache(ttl_s=0.2)
    put(cache, "u1", "k", b"x")
    assert cache.get("u1", "k") == b"x"
    time.sleep(0.3)
    assert cache.get("u1", "k") is None


def test_invalidate_drops_every_key_of_one_user_only(make_cache: Factory) -> None:
    cache = make_cache()
    for user, key in [("u1", "a"), ("u1", "b"), ("u2", "a")]:
        put(cache, user, key, f"{user}/{key}".encode())
    cache.invalidate("u1")
    assert cache.get("u1", "a") is None and cache.get("u1", "b") is None
    assert cache.get("u2", "a") == b"u2/a"
    put(cache, "u1", "a", b"new")  # caching works again after an invalidation
    assert cache.get("u1", "a") == b"new"


def test_answer_outdated_during_computation_is_not_stored(make_cache: Factory) -> None:
    cache = make_cache()
    payload, generation = cache.lookup("u1", "k")  # a request misses and computes...
    assert payload is None
    cache.invalidate("u1")  # ...while that user's feedback arrives
    assert cache.set("u1", "k", b"stale", generation=generation) is False
    assert cache.get("u1", "k") is None
    _, fresh = cache.lookup("u1", "k")  # the next request's answer is cached
    assert cache.set("u1", "k", b"fresh", generation=fresh) is True
    assert cache.get("u1", "k") == b"fresh"


@pytest.mark.parametrize("stale_first", [True, False])
def test_two_misses_racing_a_feedback_never_cache_the_stale_answer(
    make_cache: Factory, stale_first: bool
) -> None:
    """The interleaving that served a skipped item again: request A misses before the
    feedback, request B (same user, same key) misses after it; whichever stores first,
    A's answer (computed from the history before the feedback) is never cached. Before
    the fix B's miss overwrote the generation A's miss had noted, and A's answer was
    stored."""
    cache = make_cache()
    assert put(cache, "u2", "k", b"other user")
    miss_a = cache.lookup("u1", "k")
    cache.invalidate("u1")  # the feedback, acknowledged
    miss_b = cache.lookup("u1", "k")
    assert miss_a[0] is None and miss_b[0] is None and miss_a[1] != miss_b[1]
    if stale_first:
        assert cache.set("u1", "k", b"stale", generation=miss_a[1]) is False
        assert cache.get("u1", "k") is None
        assert cache.set("u1", "k", b"fresh", generation=miss_b[1]) is True
    else:
        assert cache.set("u1", "k", b"fresh", generation=miss_b[1]) is True
        assert cache.set("u1", "k", b"stale", generation=miss_a[1]) is False
    assert cache.get("u1", "k") == b"fresh"
    assert cache.get("u2", "k") == b"other user"  # another user's invalidation: untouched


def test_concurrent_fills_and_invalidations_never_leave_a_stale_answer(
    make_cache: Factory,
) -> None:
    """Threads fill one user's entry from a versioned history while another bumps the
    history and invalidates: no read ever returns an answer older than the history was
    when that read started, and the last entry standing is the newest history's."""
    cache = make_cache()
    history = [0]  # the user's history version: feedback bumps it, then invalidates...
    acked = [0]  # ...then acknowledges: every read starting later must see at least this
    lock = threading.Lock()
    stale: list[tuple[int, int]] = []
    stop = threading.Event()

    def fill() -> None:
        while not stop.is_set():
            with lock:
                floor = acked[0]
            payload, generation = cache.lookup("u1", "k")
            if payload is not None:
                if int(payload) < floor:
                    stale.append((int(payload), floor))
                continue
            with lock:
                seen = history[0]  # the answer is computed from this history
            time.sleep(0.0005)
            cache.set("u1", "k", str(seen).encode(), generation=generation)

    def feedback() -> None:
        for _ in range(150):
            with lock:
                history[0] += 1
            cache.invalidate("u1")
            with lock:
                acked[0] = history[0]
            time.sleep(0.001)

    fillers = [threading.Thread(target=fill) for _ in range(4)]
    writer = threading.Thread(target=feedback)
    for thread in [*fillers, writer]:
        thread.start()
    writer.join()
    stop.set()
    for thread in fillers:
        thread.join()
    assert not stale, stale[:5]
    payload, _ = cache.lookup("u1", "k")
    assert payload is None or int(payload) == history[0]


@pytest.mark.integration
def test_replicas_share_invalidations() -> None:
    url = redis_or_skip()
    prefix = f"test-cache-{uuid.uuid4().hex}"
    try:
        first, second = (RecommendationCache(url, prefix=prefix) for _ in range(2))
        put(first, "u1", "k", b"x")
        assert second.get("u1", "k") == b"x"
        second.invalidate("u1")
        assert first.get("u1", "k") is None
    finally:
        drop_prefix(url, prefix)


def test_local_lru_is_bounded() -> None:
    cache = RecommendationCache(None, max_local=2)
    put(cache, "u1", "a", b"1")
    put(cache, "u2", "a", b"2")
    assert cache.get("u1", "a") == b"1"  # u1 is now the most recent
    put(cache, "u3", "a", b"3")
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
    put(cache, "u1", "k", b"before")
    put(cache, "u2", "k", b"kept")
    redis_server.pause()  # requests now time out
    assert _timed(lambda: cache.get("u2", "k")) is None  # no caching during the outage
    _timed(lambda: cache.invalidate("u1"))  # cannot reach Redis
    _timed(lambda: put(cache, "u1", "k", b"during"))
    assert not _timed(cache.healthy)
    redis_server.resume()
    deadline = time.monotonic() + 5
    while not cache.healthy():
        assert time.monotonic() < deadline, "no recovery within 5 s"
        time.sleep(0.05)
    assert cache.get("u1", "k") is None  # the invalidation was sent on recovery...
    assert other.get("u1", "k") is None  # ...so no replica serves the old answer
    assert cache.get("u2", "k") == b"kept"
    put(cache, "u1", "k", b"after")
    assert other.get("u1", "k") == b"after"


@pytest.mark.integration
def test_redis_gone_and_back(redis_server: ThrowawayRedis) -> None:
    cache = RecommendationCache(redis_server.url, backoff_s=0.2, max_backoff_s=0.5)
    put(cache, "u1", "k", b"x")
    redis_server.kill()
    for _ in range(3):
        assert _timed(lambda: cache.get("u1", "k")) is None
        _timed(lambda: put(cache, "u1", "k", b"y"))
        _timed(lambda: cache.invalidate("u2"))
    assert not cache.healthy()
    redis_server.start()
    deadline = time.monotonic() + 5
    while not cache.healthy():
        assert time.monotonic() < deadline, "no recovery within 5 s"
        time.sleep(0.05)
    put(cache, "u1", "k", b"z")
    assert cache.get("u1", "k") == b"z"
