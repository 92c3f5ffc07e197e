"""Feedback in: the confidence of online events, and the four steps of FeedbackIntake with
the event stream up, down and absent, and with the event log down."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from cinerec.data.signals import EVENT_CONFIDENCE, MIN_POSITIVE_CONFIDENCE, UNKNOWN_WATCH_CONFIDENCE
from cinerec.serving import schemas
from cinerec.serving.cache import RecommendationCache
from cinerec.serving.errors import UnavailableError
from cinerec.serving.eventlog import EventLog, EventLogError
from cinerec.serving.events import FeedbackEvent
from cinerec.serving.feedback import FeedbackIntake, confidence, to_events
from cinerec.serving.metrics import Metrics
from cinerec.serving.state import MemoryState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(action: str, value: float | None = None, watch_s: float | None = None) -> FeedbackEvent:
    return FeedbackEvent("u", "i", action, NOW, value=value, watch_seconds=watch_s)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("online", "duration_min", "expected"),
    [
        (event("rating", 4.0), None, 0.8),
        (event("rating", 0.0), None, MIN_POSITIVE_CONFIDENCE),  # positive: never below
        (event("watch", watch_s=30 * 60), 60.0, 0.5),
        (event("watch", watch_s=90 * 60), 60.0, 1.0),  # capped at a full watch
        (event("watch", watch_s=30 * 60), None, UNKNOWN_WATCH_CONFIDENCE),
        (event("watch", watch_s=30 * 60), 0.0, UNKNOWN_WATCH_CONFIDENCE),
        (event("watch"), 60.0, UNKNOWN_WATCH_CONFIDENCE),
        (event("like"), None, EVENT_CONFIDENCE["like"]),
        (event("click"), 60.0, EVENT_CONFIDENCE["click"]),
        (event("skip"), None, MIN_POSITIVE_CONFIDENCE),
    ],
)
def test_confidence_follows_the_training_signals(
    online: FeedbackEvent, duration_min: float | None, expected: float
) -> None:
    assert confidence(online, duration_min) == pytest.approx(expected)


def test_to_events_dates_undated_events_now_and_keeps_given_ids() -> None:
    dated = datetime(2026, 2, 1, tzinfo=UTC)
    incoming = [
        schemas.FeedbackIn(user_id="u", item_id="a", action="click"),
        schemas.FeedbackIn(
            user_id="u", item_id="b", action="like", timestamp=dated, event_id="given-id-1"
        ),
    ]
    first, second = to_events(incoming, NOW)
    assert (first.timestamp, second.timestamp) == (NOW, dated)
    assert second.event_id == "given-id-1" and len(first.event_id) == 32


class Stream:
    """An event stream that records what it was sent, or fails like Redis down."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.sent: list[FeedbackEvent] = []

    def publish(self, events: Sequence[FeedbackEvent]) -> None:
        if self.down:
            raise RedisConnectionError("connection refused")
        self.sent.extend(events)


@pytest.fixture()
def events(tmp_path: Path) -> Iterator[EventLog]:
    log = EventLog(f"sqlite:///{tmp_path / 'events.db'}")
    yield log
    log.close()


def intake_with(events: EventLog, stream: Stream | None) -> tuple[FeedbackIntake, MemoryState]:
    state = MemoryState()
    cache = RecommendationCache(None)
    return FeedbackIntake(events, state, cache, stream, Metrics()), state  # type: ignore[arg-type]


def cache_of(intake: FeedbackIntake) -> RecommendationCache:
    assert isinstance(intake.cache, RecommendationCache)
    return intake.cache


def likes(user: str, *items: str) -> list[schemas.FeedbackIn]:
    return [schemas.FeedbackIn(user_id=user, item_id=i, action="like") for i in items]


def test_feedback_is_stored_recorded_and_drops_the_users_cached_answers(
    events: EventLog,
) -> None:
    intake, state = intake_with(events, None)
    cache = cache_of(intake)
    generation = cache.generation("u1")
    assert cache.set("u1", "k", b"{}", generation=generation)
    assert cache.set("u2", "k", b"{}", generation=cache.generation("u2"))
    ack = intake.accept(likes("u1", "a", "b"))
    assert (ack.stored, ack.duplicates, len(ack.event_ids)) == (2, 0, 2)
    assert events.count() == 2
    assert [e.item_id for e in state.recent("u1")] == ["a", "b"]
    assert dict(state.trending()) == {"a": 1.0, "b": 1.0}
    assert cache.get("u1", "k") is None and cache.get("u2", "k") == b"{}"  # only that user's
    assert not cache.set("u1", "k", b"{}", generation=generation)  # an answer from before


def test_a_retried_event_is_a_duplicate(events: EventLog) -> None:
    intake, _ = intake_with(events, None)
    again = [schemas.FeedbackIn(user_id="u", item_id="a", action="like", event_id="retry-0001")]
    assert intake.accept(again).stored == 1
    ack = intake.accept(again)
    assert (ack.stored, ack.duplicates, ack.event_ids) == (0, 1, ["retry-0001"])


def test_with_a_stream_the_aggregates_are_left_to_its_consumers(events: EventLog) -> None:
    stream = Stream()
    intake, state = intake_with(events, stream)
    intake.accept(likes("u1", "a"))
    assert [e.item_id for e in stream.sent] == ["a"]
    assert [e.item_id for e in state.recent("u1")] == ["a"]  # read-after-write here
    assert state.trending() == []  # counted by the consumer


def test_with_the_stream_down_the_aggregates_are_counted_here(events: EventLog) -> None:
    intake, state = intake_with(events, Stream(down=True))
    ack = intake.accept(likes("u1", "a"))
    assert ack.stored == 1
    assert dict(state.trending()) == {"a": 1.0}


def test_nothing_is_applied_when_the_event_log_is_down(events: EventLog) -> None:
    class Down:
        def append(self, batch: Sequence[FeedbackEvent]) -> int:
            raise EventLogError("event log: cannot store events: disk I/O error")

    intake, state = intake_with(events, None)
    intake.events = Down()  # type: ignore[assignment]
    with pytest.raises(UnavailableError, match="feedback not stored: event log"):
        intake.accept(likes("u1", "a"))
    assert state.recent("u1") == []
    assert 'kind="event_log"' in intake.metrics.render().decode()
