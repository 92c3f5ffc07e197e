"""The feedback event stream: API replicas publish, a consumer group keeps the aggregates.

A replica that receives feedback updates the user's recent list itself (read-after-write)
and publishes the events here; :func:`consume` (``cinerec stream consume``) reads them as a
member of a consumer group, applies the per-item counts to the shared state and
acknowledges them, so several API replicas share one set of aggregates. Delivery is
at-least-once: an entry is acknowledged after it is applied, a restarted consumer first
re-reads its own unacknowledged entries, and entries left pending by a consumer that died
are claimed once they have been idle for ``claim_idle_ms``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from cinerec.serving.circuit import REDIS_DOWN, connect
from cinerec.serving.events import FeedbackEvent
from cinerec.serving.state import OnlineState

log = logging.getLogger(__name__)

#: The stream entry's one field: the event as JSON (``FeedbackEvent.to_dict``).
FIELD = "event"

Entries = list[tuple[str, dict[str, str]]]


class EventStream:
    """Publishes feedback events to a Redis stream, capped at about ``maxlen`` entries.

    One MULTI/EXEC pipeline per call, with short socket timeouts; Redis errors propagate so
    the caller can fall back (the API then applies the aggregates itself).
    """

    def __init__(
        self,
        redis_url: str,
        *,
        stream: str = "cinerec:events",
        maxlen: int = 1_000_000,
        timeout_s: float = 0.2,
    ) -> None:
        self.client = connect(redis_url, timeout_s=timeout_s)
        self.stream = stream
        self.maxlen = maxlen

    def publish(self, events: Sequence[FeedbackEvent]) -> None:
        """XADD every event (approximate MAXLEN trim), in one round trip."""
        if not events:
            return
        pipe = self.client.pipeline(transaction=True)
        for event in events:
            fields: dict[FieldT, EncodableT] = {
                FIELD: json.dumps(event.to_dict(), separators=(",", ":"))
            }
            pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
        pipe.execute()


class _Consumer:
    """One consumer's view of the group: read, apply to the state, acknowledge."""

    def __init__(
        self, client: redis.Redis, state: OnlineState, stream: str, group: str, name: str
    ) -> None:
        self.client, self.state = client, state
        self.stream, self.group, self.name = stream, group, name

    def ensure_group(self) -> None:
        """Create the group (reading the stream from its start) unless it exists."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def apply(self, entries: Entries) -> int:
        """Apply the entries' aggregates, then acknowledge them; the number of events."""
        events: list[FeedbackEvent] = []
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending
                continue
            try:
                events.append(FeedbackEvent.from_dict(json.loads(fields[FIELD])))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("event stream: skipping malformed entry %s (%s)", entry_id, exc)
        if events:
            self.state.record_aggregates(events)
        if entries:
            self.client.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])
        return len(events)

    def read(self, last_id: str, count: int, block_ms: int | None = None) -> Entries:
        reply: Any = self.client.xreadgroup(
            self.group, self.name, {self.stream: last_id}, count=count, block=block_ms
        )
        return list(reply[0][1]) if reply else []

    def own_pending(self, count: int) -> int:
        """Re-apply what this consumer read but never acknowledged (it crashed or lost Redis)."""
        done, last_id = 0, "0"
        while entries := self.read(last_id, count):
            done += self.apply(entries)
            last_id = entries[-1][0]
        return done

    def claim_stale(self, count: int, idle_ms: int) -> int:
        """Claim and apply entries other consumers left pending for at least ``idle_ms``."""
        done, start = 0, "0-0"
        while True:
            reply: Any = self.client.xautoclaim(
                self.stream, self.group, self.name, idle_ms, start_id=start, count=count
            )
            done += self.apply(list(reply[1]))
            start = reply[0]
            if start == "0-0":
                return done


def consume(
    redis_url: str,
    state: OnlineState,
    *,
    group: str = "aggregates",
    consumer: str,
    stream: str = "cinerec:events",
    block_ms: int = 1000,
    stop: threading.Event | None = None,
    max_batches: int | None = None,
    count: int = 500,
    claim_idle_ms: int = 60_000,
    retry_s: float = 1.0,
) -> int:
    """Apply the stream's events to ``state``'s aggregates (``record_aggregates``) until
    ``stop`` is set or ``max_batches`` reads of new entries are done; the events applied.

    On start (and after every Redis failure) the group is created if missing, this
    consumer's own pending entries are re-applied and entries idle for ``claim_idle_ms``
    in other consumers are claimed (again every ``claim_idle_ms``). Each read waits up to
    ``block_ms`` for new entries, so ``stop`` is noticed within that. Redis being
    unreachable is logged and retried with a back-off from ``retry_s`` up to 30 s.
    """
    client = connect(redis_url, timeout_s=block_ms / 1000 + 5)
    reader = _Consumer(client, state, stream, group, consumer)
    stop = stop or threading.Event()
    processed = batches = 0
    recovering, delay, next_sweep = True, retry_s, 0.0
    sweep_s = max(claim_idle_ms / 1000, 1.0)
    while not stop.is_set() and (max_batches is None or batches < max_batches):
        try:
            if recovering:
                reader.ensure_group()
                processed += reader.own_pending(count)
                recovering = False
            if time.monotonic() >= next_sweep:
                processed += reader.claim_stale(count, claim_idle_ms)
                next_sweep = time.monotonic() + sweep_s
            entries = reader.read(">", count, block_ms)
            batches += 1
            processed += reader.apply(entries)
            delay = retry_s
        except REDIS_DOWN as exc:
            log.warning("event stream: Redis unreachable (%s); retrying in %.1f s", exc, delay)
            recovering = True
            stop.wait(delay)
            delay = min(delay * 2, 30.0)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            recovering = True  # the stream or group was deleted: create it again
    return processed
