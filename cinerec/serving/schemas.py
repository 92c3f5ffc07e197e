"""Typed request and response bodies of the HTTP API (the OpenAPI schema comes from these)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from cinerec.pipeline.rules import ConstraintError, constraints_from_mapping
from cinerec.pipeline.types import Constraints

Id = Annotated[str, Field(min_length=1, max_length=200)]
Device = Literal["web", "mobile", "tablet", "tv"]
ItemType = Literal["movie", "series"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextIn(_Strict):
    """Where and when: device, request time (default now), the viewer's country."""

    device: Device | None = None
    time: datetime | None = None
    country: Annotated[str, Field(max_length=100)] | None = None


class FiltersIn(_Strict):
    """Hard constraints on what may be shown (parental control, language, …)."""

    max_age_rating: int | str | None = Field(
        default=None, description="A minimum-age number (e.g. 13) or a label such as 'PG-13'."
    )
    languages: list[Annotated[str, Field(max_length=50)]] = Field(default=[], max_length=50)
    countries: list[Annotated[str, Field(max_length=100)]] = Field(default=[], max_length=50)
    genres: list[Annotated[str, Field(max_length=100)]] = Field(default=[], max_length=50)
    types: list[ItemType] = Field(default=[], max_length=2)
    year_min: Annotated[int, Field(ge=1800, le=2100)] | None = None
    year_max: Annotated[int, Field(ge=1800, le=2100)] | None = None
    max_seasons: Annotated[int, Field(ge=0, le=1000)] | None = None
    max_episodes: Annotated[int, Field(ge=0, le=100000)] | None = None
    max_duration_min: Annotated[float, Field(gt=0, le=100000)] | None = None

    _constraints: Constraints = PrivateAttr(default_factory=Constraints)

    @model_validator(mode="after")
    def _as_constraints(self) -> FiltersIn:
        """Meaning is checked once, by the pipeline's rules (age labels, year order, …);
        the fields above only bound the shape and size of what a client may send."""
        given = {k: v for k, v in self.model_dump().items() if v not in (None, [])}
        try:
            self._constraints = constraints_from_mapping(given)
        except ConstraintError as exc:
            raise ValueError(str(exc)) from exc
        return self

    @property
    def constraints(self) -> Constraints:
        """The filters as the pipeline's :class:`~cinerec.pipeline.types.Constraints`."""
        return self._constraints


class PreferencesIn(_Strict):
    """Stated tastes (soft): boost matching items; used for new visitors' first lists."""

    genres: list[Annotated[str, Field(max_length=100)]] = Field(default=[], max_length=50)
    languages: list[Annotated[str, Field(max_length=50)]] = Field(default=[], max_length=50)
    countries: list[Annotated[str, Field(max_length=100)]] = Field(default=[], max_length=50)


class RecommendationRequest(_Strict):
    """``POST /v1/recommendations``: who, where, what is allowed, how many."""

    user_id: Id | None = None
    session_id: Id | None = None
    k: Annotated[int, Field(ge=1, le=100)] = 10
    context: ContextIn = ContextIn()
    filters: FiltersIn = FiltersIn()
    preferences: PreferencesIn = PreferencesIn()
    exclude: list[Id] = Field(default=[], max_length=200)


class Reason(BaseModel):
    code: str
    text: str
    item_id: str | None = None


class RecommendedItem(BaseModel):
    item_id: str
    rank: int
    score: float
    title: str | None = None
    type: str | None = None
    year: int | None = None
    genres: list[str] = []
    reason: Reason
    sources: list[str]


class RecommendationResponse(BaseModel):
    request_id: str
    user_id: str | None
    items: list[RecommendedItem]
    model_version: str
    config_hash: str
    cold_start: bool
    cached: bool = False
    source: Literal["pipeline", "cache", "batch"] = "pipeline"


Action = Literal["view", "click", "like", "skip", "watch", "rating"]


class FeedbackIn(_Strict):
    """One event. ``timestamp`` defaults to now; ``event_id`` makes retries idempotent."""

    user_id: Id
    item_id: Id
    action: Action
    value: Annotated[float, Field(ge=-1000, le=1000)] | None = None
    watch_seconds: Annotated[float, Field(ge=0, le=1e6)] | None = None
    timestamp: datetime | None = None
    session_id: Id | None = None
    event_id: Annotated[str, Field(min_length=8, max_length=64)] | None = None

    @field_validator("timestamp")
    @classmethod
    def _not_in_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value > datetime.now(UTC) + timedelta(days=1):
            raise ValueError("timestamp is more than a day in the future")
        return value

    @model_validator(mode="after")
    def _rating_value(self) -> FeedbackIn:
        if self.action == "rating" and (self.value is None or not 0 <= self.value <= 5):
            raise ValueError("a rating needs a value between 0 and 5")
        return self


class FeedbackBatch(_Strict):
    events: list[FeedbackIn] = Field(min_length=1, max_length=1000)


class FeedbackAck(BaseModel):
    """The events are durably stored (``stored`` new, ``duplicates`` already known)."""

    stored: int
    duplicates: int
    event_ids: list[str]


class SimilarItem(BaseModel):
    item_id: str
    score: float
    rank: int
    title: str | None = None
    type: str | None = None


class HistoryEvent(BaseModel):
    item_id: str
    action: str
    timestamp: datetime
    value: float | None = None
    title: str | None = None
    source: Literal["training", "online"]


class EditorPicks(_Strict):
    item_ids: list[Id] = Field(max_length=500)


class Promote(_Strict):
    version: Annotated[str, Field(min_length=1, max_length=200)]
