"""What the HTTP endpoints do, without HTTP: recommend, take feedback, similar, history.

:class:`Services` owns the live parts — the served :class:`Recommender` (a fixed bundle or
the registry's promoted version, hot-reloaded), the durable event log, the online state,
the answer cache, the event stream and the metrics — and implements each endpoint as a
plain method, so the logic is tested without a server and the routes stay thin.

Read-after-write: feedback is (1) committed to the event log, (2) added to the user's
online state, (3) published to the stream (aggregates for other replicas), (4) the user's
cached answers are invalidated — all before the 202. The next recommendation reads the
online state, so a skipped item is gone and the sequence model sees the click. A request
reads in the opposite order — the user's cache generation, then the online state — and
stores its answer only under that generation (:mod:`cinerec.serving.cache`), so an answer
computed before a feedback is never cached after it, however requests interleave.

Operator state (the editor picks, :mod:`cinerec.serving.picks`) lives beside the event log,
not on the served model: it outlives hot reloads and restarts.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cinerec.data.signals import EVENT_CONFIDENCE, MIN_POSITIVE_CONFIDENCE, UNKNOWN_WATCH_CONFIDENCE
from cinerec.errors import CinerecError
from cinerec.models.similar import similar_items
from cinerec.pipeline.persist import load_recommender
from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.types import Context, Preferences, RecentEvent, Request
from cinerec.serving import schemas
from cinerec.serving.events import FeedbackEvent
from cinerec.serving.metrics import Metrics
from cinerec.serving.present import CatalogView
from cinerec.serving.workers import PipelineRunner

log = logging.getLogger("cinerec.serving")
#: A request is "plain" (the nightly list can answer it) when these are all defaults.
PLAIN_FIELDS = {"filters", "preferences", "exclude"}
PLAIN_REQUEST = schemas.RecommendationRequest().model_dump(include=PLAIN_FIELDS)
TRENDING_REFRESH_S = 2.0


#: Response fields that differ per request: cached answers are stored without them.
PER_REQUEST_FIELDS = {"request_id", "cached", "source"}
#: Layout of cached entries (part of the key, so entries of another layout are never read).
CACHE_FORMAT = "r3"


def _with_envelope(payload: bytes, request_id: str, source: str) -> bytes:
    """A cached-form answer (JSON object without the per-request fields) with them added."""
    cached = "true" if source == "cache" else "false"
    head = f'{{"request_id":"{request_id}","cached":{cached},"source":"{source}",'
    return head.encode() + payload[1:]


class NotFoundError(CinerecError):
    """A user or item the service does not know (HTTP 404)."""


class UnavailableError(CinerecError):
    """A dependency the request cannot do without is down (HTTP 503)."""


def load_for_serving(folder: Path) -> Recommender:
    """A bundle's recommender, warmed up (see :meth:`Recommender.warm_up`) before it
    takes traffic — at start and on every hot reload."""
    recommender = load_recommender(folder)
    recommender.warm_up()
    return recommender


class StaticHolder:
    """Serves one bundle folder; :meth:`reload` re-reads it (a broken folder is refused)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._value = load_for_serving(self.folder)
        self.last_error: str | None = None

    @property
    def value(self) -> Recommender:
        return self._value

    @property
    def version(self) -> str:
        return self._value.model_version

    def check(self) -> bool:
        try:
            fresh = load_for_serving(self.folder)
        except CinerecError as exc:
            self.last_error = str(exc)
            return False
        if fresh.model_version == self._value.model_version:
            return False
        self._value = fresh  # one reference swap: requests in flight keep the old object
        return True

    def stop(self) -> None:
        return None


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


@dataclass
class Services:
    """The live parts of one API process (see the module docstring)."""

    holder: Any  # StaticHolder | HotReloader[Recommender]: .value, .version, .check()
    events: Any  # EventLog
    state: Any  # OnlineState
    cache: Any  # RecommendationCache
    stream: Any | None  # EventStream when Redis is configured
    metrics: Metrics
    registry: Any | None = None  # ModelRegistry when configured
    batch: Any | None = None  # BatchStore (nightly lists) when configured
    picks: Any = None  # EditorPicks (beside the event log); built from it when None
    recent_limit: int = 200
    pipeline_concurrency: int = 2  # pipeline runs at once; the rest wait their turn
    pipeline_processes: int = 0  # > 0: pipelines run in that many worker processes

    def __post_init__(self) -> None:
        if self.picks is None:
            from cinerec.serving.picks import EditorPicks

            self.picks = EditorPicks(self.events, poll_s=0)
        self.pipelines = PipelineRunner(
            self.holder.value, self.pipeline_processes, self.pipeline_concurrency
        )
        self._catalog: CatalogView | None = None
        self._trending: tuple[float, tuple[tuple[str, float], ...]] = (0.0, ())
        self.note_model()
        self._view(self.holder.value)

    # ----- recommendations ---------------------------------------------------------------
    def cache_key(self, body: schemas.RecommendationRequest) -> str:
        """The answer cache's key of ``body`` under the served model, config and picks."""
        rec: Recommender = self.holder.value
        shape = body.model_dump_json(exclude={"user_id", "session_id"})  # fields in order
        digest = hashlib.sha1(shape.encode()).hexdigest()[:16]
        picks = self.picks.tag
        return f"{CACHE_FORMAT}:{rec.model_version}:{rec.config_hash}:{picks}:{digest}"

    def cached_json(
        self, body: schemas.RecommendationRequest, key: str
    ) -> tuple[bytes | None, str | None]:
        """(the cached answer with this request's id, or None; the user's cache generation
        read with it, None for a visitor). Counts the hit or miss. Hand the generation on to
        :meth:`recommend_json`: its answer is cached only if no feedback came in between."""
        if not body.user_id:
            return None, None
        payload, generation = self.cache.lookup(body.user_id, key)
        self.metrics.cache.labels(result="hit" if payload else "miss").inc()
        if not payload:
            return None, generation
        self.metrics.answers.labels(source="cache").inc()
        return _with_envelope(payload, uuid.uuid4().hex, "cache"), generation

    def recommend_json(
        self,
        body: schemas.RecommendationRequest,
        key: str | None = None,
        generation: str | None = None,
    ) -> bytes:
        """The answer as JSON, serialised once. Cached answers are kept as this JSON minus
        the per-request fields and get them spliced back on a hit, never parsed.
        ``key``, ``generation``: given when the caller already missed in the cache
        (:meth:`cached_json`)."""
        if key is None:
            key = self.cache_key(body)
            hit, generation = self.cached_json(body, key)
            if hit is not None:
                return hit
        elif generation is None and body.user_id:
            generation = self.cache.generation(body.user_id)  # before the state is read
        rec: Recommender = self.holder.value  # one model for the rest of the request
        request_id = uuid.uuid4().hex
        # Only a miss needs the online events: feedback invalidates a user's cached answers.
        online = self.state.recent(body.user_id)[-self.recent_limit :] if body.user_id else []
        batched = self._batch_answer(rec, body, online, request_id)
        if batched is not None:
            return batched.model_dump_json().encode()
        result = self.pipelines.run(rec, self._request(rec, body, online))
        for stage, ms in result.timings_ms.items():
            self.metrics.stage.labels(stage=stage).observe(ms / 1e3)
        for source, count in result.per_source.items():
            self.metrics.candidates.labels(source=source).observe(count)
        known = body.user_id is not None and rec.users.lookup([body.user_id])[0] >= 0
        response = schemas.RecommendationResponse(
            request_id=request_id,
            user_id=body.user_id,
            items=[
                self._view(rec).item(item, item_id)
                for item, item_id in zip(result.items, result.item_ids, strict=True)
            ],
            model_version=result.model_version,
            config_hash=result.config_hash,
            cold_start=not known and not online,
        )
        payload = response.model_dump_json(exclude=PER_REQUEST_FIELDS).encode()
        if body.user_id and generation is not None:  # stored only if still that generation
            self.cache.set(body.user_id, key, payload, generation=generation)
        self.metrics.answers.labels(source="pipeline").inc()
        return _with_envelope(payload, request_id, "pipeline")

    def _request(
        self, rec: Recommender, body: schemas.RecommendationRequest, online: list[FeedbackEvent]
    ) -> Request:
        constraints = body.filters.constraints
        durations = self._view(rec).durations
        index = rec.items.lookup([e.item_id for e in online]) if online else np.zeros(0, int)
        recent = tuple(
            RecentEvent(
                e.item_id,
                e.epoch,
                confidence(e, float(durations[i]) if i >= 0 else None),
                e.action == "skip",
            )
            for e, i in zip(online, index, strict=True)
        )
        context = body.context
        prefs = body.preferences
        return Request(
            live_trending=self._live_trending(),
            user_id=body.user_id,
            k=body.k,
            # Live requests happen now (offline evaluation replays the time of the last
            # event instead): freshness, "new" reasons and continue-watching use it.
            context=Context(context.device, context.time or datetime.now(UTC), context.country),
            constraints=constraints,
            preferences=Preferences(
                tuple(prefs.genres), tuple(prefs.languages), tuple(prefs.countries)
            ),
            exclude_items=tuple(body.exclude),
            recent_events=recent,
            editor_picks=self.picks.current,
        )

    def _live_trending(self) -> tuple[tuple[str, float], ...]:
        """The online last-24h counts, refreshed at most every TRENDING_REFRESH_S."""
        now = time.monotonic()
        expires, value = self._trending
        if now >= expires:
            try:
                value = tuple((str(i), float(c)) for i, c in self.state.trending(n=200))
            except Exception as exc:
                log.warning("online trending unavailable: %s", exc)
                value = ()
            self._trending = (now + TRENDING_REFRESH_S, value)
        return value

    def _batch_answer(
        self,
        rec: Recommender,
        body: schemas.RecommendationRequest,
        online: list[FeedbackEvent],
        request_id: str,
    ) -> schemas.RecommendationResponse | None:
        """The nightly list, for a known user with no activity since and a plain request,
        scored with the picks in force and obeying the user's stored limits."""
        if self.batch is None or not body.user_id or online:
            return None
        if body.model_dump(include=PLAIN_FIELDS) != PLAIN_REQUEST:
            return None
        stored = self.batch.get(rec.model_version, body.user_id, picks=self.picks.tag)
        if stored is None or len(stored) < body.k:
            return None
        limits = rec.constraints_for(Request(user_id=body.user_id))
        if not limits.is_empty():  # the batch job runs the same pipeline; never trust blindly
            index = rec.items.lookup([i["item_id"] for i in stored[: body.k]])
            if not ((index >= 0).all() and rec.facts.allowed(limits)[index].all()):
                log.error("nightly list of %s breaks its stored limits; not served", body.user_id)
                return None
        self.metrics.answers.labels(source="batch").inc()
        return schemas.RecommendationResponse(
            request_id=request_id,
            user_id=body.user_id,
            items=[schemas.RecommendedItem.model_validate(i) for i in stored[: body.k]],
            model_version=rec.model_version,
            config_hash=rec.config_hash,
            cold_start=False,
            source="batch",
        )

    def _view(self, rec: Recommender) -> CatalogView:
        """The item fields of the served model (rebuilt when a new version is served)."""
        view = self._catalog
        if view is None or view.version != rec.model_version:
            view = self._catalog = CatalogView(rec)
        return view

    # ----- feedback ------------------------------------------------------------------------
    def feedback(self, incoming: list[schemas.FeedbackIn]) -> schemas.FeedbackAck:
        now = datetime.now(UTC)
        events = [
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

    # ----- items and users -------------------------------------------------------------------
    def similar(self, item_id: str, k: int) -> list[schemas.SimilarItem]:
        """More like this (:func:`~cinerec.models.similar.similar_items`): content
        neighbours (any title, watched or not), else the first model relating items."""
        rec: Recommender = self.holder.value
        index = rec.items.lookup([item_id])
        if index[0] < 0:
            raise NotFoundError(f"unknown item '{item_id}'")
        frame = similar_items(rec.models, rec.items, [item_id], k)
        view = self._view(rec)
        titles, types = view.titles, view.types
        return [
            schemas.SimilarItem(
                item_id=str(rec.items.ids[i]),
                score=round(float(s), 6),
                rank=r,
                title=titles[i],
                type=types[i],
            )
            for i, s, r in zip(
                rec.items.lookup(frame["similar_id"].to_numpy(object)),
                frame["score"],
                frame["rank"],
                strict=True,
            )
        ]

    def history(self, user_id: str, limit: int) -> list[schemas.HistoryEvent]:
        rec: Recommender = self.holder.value
        user = int(rec.users.lookup([user_id])[0])
        online = self.state.recent(user_id)
        if user < 0 and not online:
            raise NotFoundError(f"unknown user '{user_id}'")
        titles = self._view(rec).titles
        stored = rec.histories.get(user)
        out = [
            schemas.HistoryEvent(
                item_id=str(rec.items.ids[i]),
                action="history",
                source="training",
                timestamp=datetime.fromtimestamp(float(t), tz=UTC),
                title=titles[i],
                value=round(float(w), 4),
            )
            for i, t, w in zip(stored.items, stored.times, stored.weights, strict=True)
        ]
        index = rec.items.lookup([e.item_id for e in online])
        out += [
            schemas.HistoryEvent(
                item_id=e.item_id,
                action=e.action,
                source="online",
                timestamp=e.timestamp,
                value=e.value,
                title=titles[i] if i >= 0 else None,
            )
            for e, i in zip(online, index, strict=True)
        ]
        return out[-limit:]

    # ----- operations ------------------------------------------------------------------------
    def ready(self) -> dict[str, Any]:
        checks = {
            "model": self.holder.value is not None,
            "event_log": bool(self.events.ping()),
            "state": bool(self.state.healthy()),
            "cache": bool(self.cache.healthy()),
        }
        for name, up in checks.items():
            self.metrics.dependency.labels(name=name).set(1 if up else 0)
        return {"ready": checks["model"] and checks["event_log"], "checks": checks}

    def reload(self) -> dict[str, Any]:
        changed = bool(self.holder.check())
        self.metrics.reloads.labels(result="changed" if changed else "unchanged").inc()
        if getattr(self.holder, "last_error", None) and not changed:
            self.metrics.reloads.labels(result="failed").inc()
        self.note_model()
        return {
            "version": self.holder.version,
            "changed": changed,
            "last_error": getattr(self.holder, "last_error", None),
        }

    def note_model(self) -> None:
        rec = self.holder.value
        self.metrics.set_model(rec.model_version, rec.config_hash)

    def set_editor_picks(self, item_ids: list[str] | None) -> dict[str, Any]:
        """Store the operator's picks durably for every version served (None: the bundle's
        own again); the cache key names the picks, so no answer with the old ones is read."""
        rec: Recommender = self.holder.value
        if item_ids is not None:
            index = rec.items.lookup(item_ids)
            unknown = [i for i, j in zip(item_ids, index, strict=True) if j < 0]
            if unknown:
                raise NotFoundError(f"unknown item id(s): {', '.join(unknown[:5])}")
        from cinerec.serving.eventlog import EventLogError

        try:
            if item_ids is None:
                self.picks.reset()
            else:
                self.picks.replace(item_ids)
        except EventLogError as exc:
            raise UnavailableError(f"editor picks not stored: {exc}") from exc
        return self.editor_picks()

    def editor_picks(self) -> dict[str, Any]:
        """The picks in force: the operator's, or the served bundle's own."""
        current = self.picks.current
        source = "bundle" if current is None else "operator"
        picks = self.holder.value.editor_picks if current is None else current
        return {"editor_picks": len(picks), "item_ids": list(picks), "source": source}

    def close(self) -> None:
        self.picks.stop()
        self.holder.stop()
        self.pipelines.close()
        self.events.close()
