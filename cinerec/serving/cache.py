"""Cached recommendation answers for hot users, dropped by that user's feedback.

An answer depends on the user, the model version, the config and the request shape, so
the caller builds ``key`` from those; the user's history is the one input that changes
between requests, so :meth:`RecommendationCache.invalidate` drops every answer of a user at
once. With Redis, each user has a generation token (``<prefix>:gen:<user>``) that is part of
every stored key: invalidating replaces the token (O(1)) and the old entries are never read
again, expiring on their TTL. The Lua scripts build the entry's key from the token, so they
need a single Redis (or a proxy that allows undeclared keys), not Redis Cluster.

Read-after-write under concurrency: an answer computed from a user's history must not be
stored after feedback that outdated it. So every lookup returns the user's *generation* as
it was before the caller read anything else, the caller carries that value through its own
computation and hands it to :meth:`RecommendationCache.set`, which stores only if the
generation is still the same — checked and stored atomically (under a lock in process, in
one Lua script in Redis). The generation travels with the request, never in shared
per-key memory, so two requests of one user racing a feedback cannot pass each other's.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol, cast

from cinerec.serving.circuit import Circuit, connect

if TYPE_CHECKING:
    from redis.typing import EncodableT

#: The generation given while Redis is unusable for a user: set() with it stores nothing.
_NO_STORE = "!"

# GET: the user's generation and the entry stored under it, in one round trip.
_GET = """
local g = redis.call('GET', KEYS[1]) or '0'
return {g, redis.call('GET', ARGV[1] .. g .. ARGV[2])}
"""
# SET under the current generation, unless it moved since the caller read it (ARGV[4]).
_SET = """
local g = redis.call('GET', KEYS[1]) or '0'
if ARGV[4] ~= g then return 0 end
redis.call('SET', ARGV[1] .. g .. ARGV[2], ARGV[3], 'PX', ARGV[5])
return 1
"""


class _LocalLRU:
    """An in-process LRU with a TTL, indexed by user so one user's entries drop at once."""

    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._entries: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self._by_user: dict[str, set[str]] = {}

    def get(self, user_id: str, key: str) -> bytes | None:
        found = self._entries.get((user_id, key))
        if found is None:
            return None
        if found[0] <= time.monotonic():
            self._drop(user_id, key)
            return None
        self._entries.move_to_end((user_id, key))
        return found[1]

    def set(self, user_id: str, key: str, payload: bytes) -> None:
        self._entries[(user_id, key)] = (time.monotonic() + self.ttl_s, payload)
        self._entries.move_to_end((user_id, key))
        self._by_user.setdefault(user_id, set()).add(key)
        while len(self._entries) > self.max_entries:
            (old_user, old_key), _ = self._entries.popitem(last=False)
            self._forget(old_user, old_key)

    def invalidate(self, user_id: str) -> None:
        for key in self._by_user.pop(user_id, ()):
            self._entries.pop((user_id, key), None)

    def _drop(self, user_id: str, key: str) -> None:
        self._entries.pop((user_id, key), None)
        self._forget(user_id, key)

    def _forget(self, user_id: str, key: str) -> None:
        keys = self._by_user.get(user_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_user[user_id]


class AnswerCache(Protocol):
    """What the service needs of an answer cache: conditional stores under the user's
    generation and per-user invalidation (see the module docstring). Named as a Protocol so
    the request paths depend on the contract, not on a backend: :class:`RecommendationCache`
    satisfies it in both its modes, Redis (shared by the replicas) and in process."""

    @property
    def in_process(self) -> bool:
        """True when a lookup never blocks (nothing to wait on over the network)."""
        ...

    def lookup(self, user_id: str, key: str) -> tuple[bytes | None, str]:
        """(the cached answer or None, the user's generation read with it)."""
        ...

    def generation(self, user_id: str) -> str:
        """The user's generation now (read before the history an answer uses)."""
        ...

    def set(self, user_id: str, key: str, payload: bytes, *, generation: str) -> bool:
        """Store ``payload`` if ``generation`` is still the user's; True when stored."""
        ...

    def invalidate(self, user_id: str) -> None:
        """Drop every cached answer of ``user_id``."""
        ...

    def healthy(self) -> bool:
        """Whether the cache's backend answers now."""
        ...


class RecommendationCache:
    """Cached answers keyed by user, model version, config hash and request shape.

    Redis when a URL is given (shared by the replicas), an in-process LRU with TTL otherwise.
    No call raises because Redis is down: during an outage nothing is cached or served (a
    replica-local copy could miss another replica's invalidation) and Redis is probed again
    after a back-off. An invalidation that could not reach Redis is sent on recovery, and
    until then (or until the entries it covers have expired) that user's answers are not
    read, so an answer from before the feedback is never served.

    Storing is conditional (see the module docstring): :meth:`lookup` (or
    :meth:`generation`) gives the user's generation, read *before* the caller reads the
    user's history; :meth:`set` stores the answer computed from it only while that is still
    the user's generation, so an answer that predates a feedback is never cached after it.
    """

    def __init__(
        self,
        redis_url: str | None,
        *,
        ttl_s: float = 300,
        prefix: str = "cinerec",
        max_local: int = 10_000,
        timeout_s: float = 0.2,
        backoff_s: float = 1.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.ttl_s, self.prefix, self.max_local = ttl_s, prefix, max_local
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._local = _LocalLRU(max_local, ttl_s) if redis_url is None else None
        self._client = (
            None if redis_url is None else connect(redis_url, timeout_s=timeout_s, decode=False)
        )
        if self._client is not None:
            self._get = self._client.register_script(_GET)
            self._set = self._client.register_script(_SET)
        self.circuit = Circuit(
            "recommendation cache", self._recover, backoff_s=backoff_s, max_backoff_s=max_backoff_s
        )
        # Local mode: a generation is the number of invalidations so far (all users); each
        # user's latest one is kept (LRU), and the newest number dropped from that map.
        self._invalidations = 0
        self._invalidated_at: OrderedDict[str, int] = OrderedDict()
        self._forgotten = 0
        # Invalidations that did not reach Redis: user -> when the entries it covers expire.
        self._unsent: OrderedDict[str, float] = OrderedDict()
        self._unsent_all_until = 0.0

    @property
    def in_process(self) -> bool:
        """True when entries live in this process (no Redis): a lookup never blocks."""
        return self._local is not None

    def lookup(self, user_id: str, key: str) -> tuple[bytes | None, str]:
        """(the cached answer or None, the user's generation read with it).

        Pass the generation to :meth:`set` with the answer computed after this call; one
        round trip to Redis for both.
        """
        if self._local is not None:
            with self._lock:
                payload = self._local.get(user_id, key)
                generation = str(self._invalidations)
        else:
            payload, generation = self._lookup_redis(user_id, key)
        with self._lock:
            if payload is None:
                self.misses += 1
            else:
                self.hits += 1
        return payload, generation

    def get(self, user_id: str, key: str) -> bytes | None:
        """The cached answer, or None (a miss)."""
        return self.lookup(user_id, key)[0]

    def generation(self, user_id: str) -> str:
        """The user's generation now (read it before reading the history an answer uses)."""
        if self._local is not None:
            with self._lock:
                return str(self._invalidations)
        client = self._client
        assert client is not None
        with self._lock:
            if self._is_blocked(user_id):
                return _NO_STORE
        found = self.circuit.call(lambda: client.get(self._gen_key(user_id)) or b"0", _nothing)
        return _NO_STORE if found is None else cast(bytes, found).decode()

    def set(self, user_id: str, key: str, payload: bytes, *, generation: str) -> bool:
        """Cache ``payload`` for ``ttl_s`` if ``generation`` (from :meth:`lookup` or
        :meth:`generation`, read before the answer's inputs) is still the user's; True
        when stored. Checked and stored atomically."""
        if self._local is not None:
            with self._lock:
                if not generation.isdigit() or self._invalidated_since(user_id, int(generation)):
                    return False
                self._local.set(user_id, key, payload)
                return True
        with self._lock:
            if generation == _NO_STORE or self._is_blocked(user_id):
                return False
        base, suffix = self._key_parts(user_id, key)
        args: list[EncodableT] = [base, suffix, payload, generation]
        args.append(max(1, int(self.ttl_s * 1000)))
        stored = self.circuit.call(
            lambda: self._set(keys=[self._gen_key(user_id)], args=args), _nothing
        )
        return bool(stored)

    def invalidate(self, user_id: str) -> None:
        """Drop every cached answer of ``user_id`` (all keys), and only of that user."""
        if self._local is not None:
            with self._lock:
                self._local.invalidate(user_id)
                self._invalidations += 1
                self._invalidated_at[user_id] = self._invalidations
                self._invalidated_at.move_to_end(user_id)
                while len(self._invalidated_at) > self.max_local:
                    self._forgotten = self._invalidated_at.popitem(last=False)[1]
            return
        def bump() -> bool:
            self._bump(user_id)
            return True

        if self.circuit.call(bump, lambda: False):
            return
        with self._lock:
            self._unsent[user_id] = time.monotonic() + self.ttl_s
            self._unsent.move_to_end(user_id)
            if len(self._unsent) > self.max_local:  # too many to track: read no user for now
                self._unsent_all_until = max(self._unsent_all_until, *self._unsent.values())
                self._unsent.clear()
            self.circuit.reopen()  # if Redis recovered meanwhile, the next call sends it

    def healthy(self) -> bool:
        """True without Redis; else whether Redis answers (probing it after the back-off)."""
        client = self._client
        if client is None:
            return True
        return self.circuit.call(lambda: bool(client.ping()), lambda: False)

    # -- local mode ----------------------------------------------------------------------
    def _invalidated_since(self, user_id: str, seen: int) -> bool:
        """Whether ``user_id`` was invalidated after generation ``seen`` (under the lock)."""
        if seen < self._forgotten:
            return True  # unknown: assume it was
        return self._invalidated_at.get(user_id, -1) > seen

    # -- Redis mode ----------------------------------------------------------------------
    def _gen_key(self, user_id: str) -> str:
        return f"{self.prefix}:gen:{user_id}"

    def _key_parts(self, user_id: str, key: str) -> tuple[str, str]:
        """``<prefix>:rec:<user>:`` + generation + ``:<hash of key>`` (parsed from the right)."""
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return f"{self.prefix}:rec:{user_id}:", f":{digest}"

    def _bump(self, user_id: str, client: Any = None) -> None:
        # A fresh random token rather than INCR: the key may expire (after every entry it
        # covers has) without a later counter ever meeting a still-live entry of that value.
        px = int(self.ttl_s * 1000) + 60_000
        target = client or self._client
        assert target is not None  # Redis mode
        target.set(self._gen_key(user_id), uuid.uuid4().hex[:16], px=px)

    def _lookup_redis(self, user_id: str, key: str) -> tuple[bytes | None, str]:
        with self._lock:
            blocked = self._is_blocked(user_id)
        found = None if blocked else self.circuit.call(lambda: self._fetch(user_id, key), _nothing)
        if found is None:  # an answer computed now might miss an invalidation Redis never saw
            return None, _NO_STORE
        generation, payload = found
        return payload, generation.decode()

    def _fetch(self, user_id: str, key: str) -> tuple[bytes, bytes | None]:
        base, suffix = self._key_parts(user_id, key)
        generation, payload = self._get(keys=[self._gen_key(user_id)], args=[base, suffix])
        return generation, payload

    def _is_blocked(self, user_id: str) -> bool:
        """Whether the user has an invalidation Redis has not seen (call under the lock)."""
        now = time.monotonic()
        if now < self._unsent_all_until:
            return True
        until = self._unsent.get(user_id)
        if until is None:
            return False
        if until <= now:  # the entries it should have dropped have expired by now
            del self._unsent[user_id]
            return False
        return True

    def _recover(self) -> bool:
        """Ping, send the outage's invalidations, then let calls reach Redis again."""
        assert self._client is not None
        self._client.ping()
        while True:
            with self._lock:
                now = time.monotonic()
                chunk = [(u, t) for u, t in self._unsent.items() if t > now][:500]
                if not chunk:
                    self._unsent.clear()  # what is left has expired
                    self.circuit.close()  # under the lock: no invalidation slips in unsent
                    return True
            pipe = self._client.pipeline(transaction=False)
            for user_id, _ in chunk:
                self._bump(user_id, pipe)
            pipe.execute()
            with self._lock:
                for user_id, until in chunk:
                    if self._unsent.get(user_id) == until:
                        del self._unsent[user_id]


def _nothing() -> None:
    return None
