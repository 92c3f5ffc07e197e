"""Feedback in: store it durably, make the next answer see it, tell the other replicas.

Read-after-write: feedback is (1) committed to the event log, (2) added to the user's
online state, (3) published to the stream (aggregates for other replicas), (4) the user's
cached answers are invalidated — all before the 202. The next recommendation reads the
online state, so a skipped item is gone and the sequence model sees the click.

:func:`confidence` is how much an online event counts when a request conditions on it
(the recommendation path, :mod:`cinerec.serving.answers`, weighs the user's recent events
with it), computed as training computes it from the same kind of event.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cinerec.data.signals import EVENT_CONFIDENCE, MIN_POSITIVE_CONFIDENCE, UNKNOWN_WATCH_CONFIDENCE
from cinerec.errors import CinerecError
from cinerec.serving import schemas
from cinerec.serving.errors import UnavailableError
from cinerec.serving.events import FeedbackEvent
from cinerec.serving.metrics import Metrics

if TYPE_CHECKING:  # the backends' modules load their clients (SQLAlchemy, redis-py)
    from cinerec.serving.cache import AnswerCache
    from cinerec.serving.eventlog import EventLog
    from cinerec.serving.state import OnlineState
    from cinerec.serving.stream import EventStream

log = logging.getLogger("cinerec.serving")


def confidence(event: FeedbackEvent, duration_min: float | None) -> float:
    """Implicit confidence of an online event (as ``cinerec.data.signals`` computes it)."""
    if event.action == "rating":
        value = (event.value or 0.0) / 5.0
    elif event.action == "watch":
        if event.watch_seconds is not None and duration_min and duration_min > 0:
            value = event.watch_seconds / (duration_min * 60.0)
        else:
            value = UNKNOWN_WATCH_CONFIDENCE
    else:
        value = EVENT_CONFIDENCE.get(event.action, 0.2)
    return float(min(max(value, MIN_POSITIVE_CONFIDENCE), 1.0))


def to_events(incoming: Sequence[schemas.FeedbackIn], now: datetime) -> list[FeedbackEvent]:
    """The API's feedback as events; one without a timestamp happened ``now``, one without
    an id gets a fresh one (a client retry that sends its id again is a duplicate)."""
    return [
        FeedbackEvent(
            user_id=e.user_id,
            item_id=e.item_id,
            action=e.action,
            timestamp=e.timestamp or now,
            value=e.value,
            watch_seconds=e.watch_seconds,
            session_id=e.session_id,
            **({"event_id": e.event_id} if e.event_id else {}),
        )
        for e in incoming
    ]


class FeedbackIntake:
    """Takes feedback through the four steps of the module docstring.

    ``stream``: the Redis event stream when configured; then this replica records only the
    users' recent events and the stream's consumers count the aggregates (counted here
    instead while the stream is down). Without one, both are recorded here.
    """

    def __init__(
        self,
        events: EventLog,
        state: OnlineState,
        cache: AnswerCache,
        stream: EventStream | None,
        metrics: Metrics,
    ) -> None:
        self.events = events
        self.state = state
        self.cache = cache
        self.stream = stream
        self.metrics = metrics

    def accept(self, incoming: Sequence[schemas.FeedbackIn]) -> schemas.FeedbackAck:
        """Store ``incoming`` (one transaction) and apply it; raises
        :class:`~cinerec.serving.errors.UnavailableError` when the event log is down, as
        nothing was acknowledged then."""
        events = to_events(incoming, datetime.now(UTC))
        try:
            stored = self.events.append(events)  # durable when it returns
        except CinerecError as exc:
            self.metrics.errors.labels(route="feedback", kind="event_log").inc()
            raise UnavailableError(f"feedback not stored: {exc}") from exc
        if self.stream is not None:
            self.state.record_user(events)
            try:
                self.stream.publish(events)
            except Exception as exc:
                log.warning("event stream unavailable: %s", exc)
                self.state.record_aggregates(events)
        else:
            self.state.record(events)
        for user in {e.user_id for e in events}:
            self.cache.invalidate(user)
        for event in events:
            self.metrics.feedback.labels(action=event.action).inc()
        return schemas.FeedbackAck(
            stored=stored, duplicates=len(events) - stored, event_ids=[e.event_id for e in events]
        )
