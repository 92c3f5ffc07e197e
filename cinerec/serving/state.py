"""Online state: each user's recent events and the last hours' per-item counts (trending).

Feedback updates it synchronously, so the very next recommendation sees it. The replica
that receives feedback calls ``record_user`` (read-after-write) and publishes the events to
the stream, whose consumer group maintains the shared aggregates (``record_aggregates``);
without Redis the API calls ``record`` (both). Item counts live in hourly buckets keyed by
the event's own hour, so old buckets fall out of the window and expire.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
import uuid
from abc import abstractmethod
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Sequence
from functools import partialmethod
from itertools import islice
from typing import Protocol

import redis

from cinerec.serving.circuit import Circuit, connect
from cinerec.serving.events import FeedbackEvent

HOUR = 3600
MAX_RECENT = 200
DAY = 86_400.0
#: How long an hourly bucket is kept: the 24-hour window plus the partial oldest hour.
RETENTION_S = 25 * HOUR
USER_TTL_S = 30 * 86_400

Events = Sequence[FeedbackEvent]
Ranked = list[tuple[str, float]]


def _window_hours(window_s: float, now: float | None) -> range:
    """The hourly buckets overlapping ``[now - window_s, now]`` (hour granularity)."""
    now = time.time() if now is None else now
    return range(int((now - window_s) // HOUR), int(now // HOUR) + 1)


def _bucket_counts(events: Iterable[FeedbackEvent]) -> Counter[tuple[int, str]]:
    """Event counts per (hour, item); skips are not interest, so they never trend."""
    return Counter((int(e.epoch // HOUR), e.item_id) for e in events if e.action != "skip")


class OnlineState(Protocol):
    """Recent events per user and windowed item counts, shared by the serving paths.

    ``record_user`` keeps the latest events of each user (what the models condition on);
    ``record_aggregates`` bumps the hourly item counts that ``trending`` sums; ``record`` does
    both (the single-process path, when no stream consumer maintains the aggregates).

    A Protocol, so the service and the stream consumer name what they need of the state,
    not a backend: :class:`MemoryState` (in process), :class:`RedisState` (shared by the
    replicas) and :class:`ResilientState` (Redis, in process during an outage) satisfy it,
    and subclass it to share :meth:`record` and :meth:`healthy`.
    """

    max_recent: int = MAX_RECENT

    @abstractmethod
    def record_user(self, events: Events) -> None:
        """Append to each user's recent list, keeping the latest ``max_recent``."""

    @abstractmethod
    def record_aggregates(self, events: Events) -> None:
        """Bump the per-item hourly counts (skips excluded); no per-user lists."""

    def record(self, events: Events) -> None:
        """Both :meth:`record_user` and :meth:`record_aggregates`."""
        self.record_user(events)
        self.record_aggregates(events)

    @abstractmethod
    def recent(self, user_id: str) -> list[FeedbackEvent]:
        """That user's recent events, oldest first."""

    @abstractmethod
    def trending(self, n: int = 100, window_s: float = DAY, now: float | None = None) -> Ranked:
        """The ``n`` items with most events in the hours overlapping the window, best first
        (ties: item id descending, Redis' sorted-set order, in every backend)."""

    def healthy(self) -> bool:
        """Whether the backend answers now (always, in process)."""
        return True


class MemoryState(OnlineState):
    """In-process state for a single replica, tests and the Redis-outage fallback.

    Thread-safe (one lock). Users are kept LRU up to ``max_users`` so memory stays bounded;
    hourly buckets older than ``RETENTION_S`` before the newest bucket are dropped.
    """

    def __init__(self, *, max_recent: int = MAX_RECENT, max_users: int = 100_000) -> None:
        self.max_recent, self.max_users = max_recent, max_users
        self.retention_hours = RETENTION_S // HOUR
        self._lock = threading.Lock()
        self._users: OrderedDict[str, deque[FeedbackEvent]] = OrderedDict()
        self._buckets: dict[int, Counter[str]] = {}

    def record_user(self, events: Events) -> None:
        ordered = sorted(events, key=lambda e: e.epoch)
        with self._lock:
            for event in ordered:
                recent = self._users.get(event.user_id)
                if recent is None:
                    recent = self._users[event.user_id] = deque(maxlen=self.max_recent)
                else:
                    self._users.move_to_end(event.user_id)
                recent.append(event)
            while len(self._users) > self.max_users:
                self._users.popitem(last=False)

    def record_aggregates(self, events: Events) -> None:
        counts = _bucket_counts(events)
        if not counts:
            return
        with self._lock:
            for (hour, item), count in counts.items():
                self._buckets.setdefault(hour, Counter())[item] += count
            oldest = max(self._buckets) - self.retention_hours
            for hour in [h for h in self._buckets if h < oldest]:
                del self._buckets[hour]

    def recent(self, user_id: str) -> list[FeedbackEvent]:
        with self._lock:
            events = list(self._users.get(user_id, ()))
        return sorted(events, key=lambda e: e.epoch)

    def trending(self, n: int = 100, window_s: float = DAY, now: float | None = None) -> Ranked:
        hours = _window_hours(window_s, now)
        total: Counter[str] = Counter()
        with self._lock:
            for hour, counts in self._buckets.items():
                if hour in hours:
                    total.update(counts)
        top = heapq.nlargest(max(n, 0), total.items(), key=lambda kv: (kv[1], kv[0]))
        return [(item, float(count)) for item, count in top]


class RedisState(OnlineState):
    """State in Redis, shared by every API replica and the stream consumers.

    Per user a list ``<prefix>:recent:<user>`` (RPUSH + LTRIM of JSON events, TTL
    ``user_ttl_s``); per hour a sorted set ``<prefix>:trend:<hour>`` (ZINCRBY, expiring
    ``retention_s`` after that hour ends, so late or replayed old events cost no memory).
    Each write is one MULTI/EXEC pipeline: a failed write applied nothing (barring a
    connection lost after EXEC was sent).
    """

    def __init__(
        self,
        client: redis.Redis | str,
        *,
        prefix: str = "cinerec",
        max_recent: int = MAX_RECENT,
        user_ttl_s: int = USER_TTL_S,
        retention_s: int = RETENTION_S,
    ) -> None:
        self.client = connect(client) if isinstance(client, str) else client
        self.prefix, self.max_recent = prefix, max_recent
        self.user_ttl_s, self.retention_s = user_ttl_s, retention_s

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}:recent:{user_id}"

    def _trend_key(self, hour: int) -> str:
        return f"{self.prefix}:trend:{hour}"

    def apply(self, user_events: Events, aggregate_events: Events) -> None:
        """Write per-user lists for ``user_events`` and counts for ``aggregate_events``."""
        pipe = self.client.pipeline(transaction=True)
        by_user: dict[str, list[str]] = {}
        for event in sorted(user_events, key=lambda e: e.epoch):
            payload = json.dumps(event.to_dict(), separators=(",", ":"))
            by_user.setdefault(event.user_id, []).append(payload)
        for user_id, payloads in by_user.items():
            key = self._user_key(user_id)
            pipe.rpush(key, *payloads)
            pipe.ltrim(key, -self.max_recent, -1)
            pipe.expire(key, self.user_ttl_s)
        hours: set[int] = set()
        for (hour, item), count in _bucket_counts(aggregate_events).items():
            pipe.zincrby(self._trend_key(hour), count, item)
            hours.add(hour)
        for hour in hours:  # an hour's bucket lives until retention_s after the hour ends
            pipe.expireat(self._trend_key(hour), (hour + 1) * HOUR + self.retention_s)
        if len(pipe):
            pipe.execute()

    def record_user(self, events: Events) -> None:
        self.apply(events, ())

    def record_aggregates(self, events: Events) -> None:
        self.apply((), events)

    def record(self, events: Events) -> None:
        self.apply(events, events)

    def recent(self, user_id: str) -> list[FeedbackEvent]:
        raw = self.client.lrange(self._user_key(user_id), 0, -1)
        events = [FeedbackEvent.from_dict(json.loads(item)) for item in raw]  # type: ignore[union-attr]  # redis-py: sync results typed Awaitable | Any
        return sorted(events, key=lambda e: e.epoch)

    def trending(self, n: int = 100, window_s: float = DAY, now: float | None = None) -> Ranked:
        if n <= 0:
            return []
        keys = [self._trend_key(h) for h in _window_hours(window_s, now)]
        scratch = f"{self.prefix}:trend:union:{uuid.uuid4().hex}"
        pipe = self.client.pipeline(transaction=True)
        pipe.zunionstore(scratch, keys)
        pipe.zrevrange(scratch, 0, n - 1, withscores=True)
        pipe.delete(scratch)
        _, top, _ = pipe.execute()
        return [(item, float(score)) for item, score in top]

    def healthy(self) -> bool:
        try:
            self.client.ping()
        except redis.RedisError:
            return False
        return True


class ResilientState(OnlineState):
    """Redis first; while Redis is unreachable, served by an in-process fallback.

    Writes also go to the fallback, so an outage keeps the history this replica saw. On a
    connection error or timeout the call is answered from the fallback, ``healthy()`` turns
    False and Redis is left alone for a back-off (doubling, capped); the next call after it
    probes Redis, replays the writes made meanwhile (a bounded buffer, oldest dropped first)
    and, once they are all in, routes to Redis again. No call raises because Redis is down,
    and none waits longer than the client's socket timeouts.
    """

    def __init__(
        self,
        primary: RedisState,
        fallback: MemoryState | None = None,
        *,
        backoff_s: float = 1.0,
        max_backoff_s: float = 5.0,
        buffer_size: int = 10_000,
    ) -> None:
        self.primary = primary
        self.fallback = fallback or MemoryState(max_recent=primary.max_recent, max_users=20_000)
        self.max_recent = primary.max_recent
        self.dropped = 0  # outage writes lost to the full buffer (never replayed)
        self.circuit = Circuit(
            "online state", self._recover, backoff_s=backoff_s, max_backoff_s=max_backoff_s
        )
        self._lock = threading.Lock()
        self._buffer: deque[tuple[int, str, FeedbackEvent]] = deque(maxlen=buffer_size)
        self._seq = 0

    def _recover(self) -> bool:
        """Ping, replay the outage's writes in order, then let calls reach Redis again."""
        self.primary.client.ping()
        while True:
            with self._lock:
                batch = list(islice(self._buffer, 500))
                if not batch:
                    self.circuit.close()  # under the lock: no write slips in unbuffered
                    return True
            users = [e for _, kind, e in batch if kind != "aggregates"]
            aggregates = [e for _, kind, e in batch if kind != "user"]
            self.primary.apply(users, aggregates)
            with self._lock:  # drop what was replayed (the buffer may have moved on)
                while self._buffer and self._buffer[0][0] <= batch[-1][0]:
                    self._buffer.popleft()

    def _write(self, kind: str, events: Events) -> None:
        events = list(events)
        if not events:
            return
        users = events if kind != "aggregates" else []
        aggregates = events if kind != "user" else []
        self.fallback.record_user(users)
        self.fallback.record_aggregates(aggregates)
        def send() -> bool:
            self.primary.apply(users, aggregates)
            return True

        if self.circuit.call(send, lambda: False):
            return
        with self._lock:
            for event in events:
                if len(self._buffer) == self._buffer.maxlen:
                    self.dropped += 1
                self._seq += 1
                self._buffer.append((self._seq, kind, event))
            self.circuit.reopen()  # if Redis recovered meanwhile, the next call replays this

    record_user = partialmethod(_write, "user")
    record_aggregates = partialmethod(_write, "aggregates")
    record = partialmethod(_write, "both")

    def recent(self, user_id: str) -> list[FeedbackEvent]:
        primary, fallback = self.primary, self.fallback
        return self.circuit.call(lambda: primary.recent(user_id), lambda: fallback.recent(user_id))

    def trending(self, n: int = 100, window_s: float = DAY, now: float | None = None) -> Ranked:
        return self.circuit.call(
            lambda: self.primary.trending(n, window_s, now),
            lambda: self.fallback.trending(n, window_s, now),
        )

    def healthy(self) -> bool:
        return self.circuit.call(lambda: bool(self.primary.client.ping()), lambda: False)

    @property
    def pending_replay(self) -> int:
        """Events written during an outage that are not in Redis yet."""
        with self._lock:
            return len(self._buffer)


def make_state(redis_url: str | None, prefix: str = "cinerec") -> OnlineState:
    """In-process state without a URL; Redis with an in-memory fallback otherwise."""
    if redis_url is None:
        return MemoryState()
    return ResilientState(RedisState(redis_url, prefix=prefix))
