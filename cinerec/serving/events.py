"""Feedback events: the one record the API, the event log, the stream and the state share."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Action = Literal["view", "click", "like", "skip", "watch", "rating"]
ACTIONS: tuple[str, ...] = ("view", "click", "like", "skip", "watch", "rating")


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class FeedbackEvent:
    """One thing a user did with an item.

    ``event_id`` makes writes idempotent (a retried request is stored once);
    ``timestamp`` is timezone-aware UTC; ``value`` is the rating for "rating", else None
    or 1; ``watch_seconds`` for "watch". ``action`` maps 1:1 to the interactions table's
    ``event`` column, so exported events retrain the models directly.
    """

    user_id: str
    item_id: str
    action: Action
    timestamp: datetime
    value: float | None = None
    watch_seconds: float | None = None
    session_id: str | None = None
    event_id: str = field(default_factory=_new_id)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r} (expected one of {ACTIONS})")
        if self.timestamp.tzinfo is None:
            object.__setattr__(self, "timestamp", self.timestamp.replace(tzinfo=UTC))

    @property
    def epoch(self) -> float:
        return self.timestamp.timestamp()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["timestamp"] = self.timestamp.astimezone(UTC).isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedbackEvent:
        values = dict(data)
        stamp = values["timestamp"]
        if isinstance(stamp, str):
            values["timestamp"] = datetime.fromisoformat(stamp)
        elif isinstance(stamp, int | float):
            values["timestamp"] = datetime.fromtimestamp(float(stamp), tz=UTC)
        for key in ("value", "watch_seconds"):
            if values.get(key) is not None:
                values[key] = float(values[key])
        return cls(**values)
