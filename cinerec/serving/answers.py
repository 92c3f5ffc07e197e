"""The recommendation path: cache key, cached answer, nightly list, pipeline answer.

An answer comes from the first of these that can give it:

1. the answer cache (:mod:`cinerec.serving.cache`), for a known user asking the same thing
   under the same model, config and editor picks — the hot path, answered without parsing;
2. the nightly list (:mod:`cinerec.serving.batch`), for a known user with no activity
   since and a plain request (no filters, preferences or exclusions);
3. the pipeline (:class:`~cinerec.serving.workers.PipelineRunner`), on a :class:`Request`
   built here from the API body, the user's online events and the live trending counts.

Answers are serialised to JSON once. Cached ones are kept as that JSON without the
per-request fields (:data:`PER_REQUEST_FIELDS`), which are spliced back on a hit.

Read-after-write (see :mod:`cinerec.serving.feedback` for the write side): a request reads
the user's cache generation first, then the online state, and stores its answer only under
that generation, so an answer computed before a feedback is never cached after it, however
requests interleave.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.types import Context, Preferences, RecentEvent, Request
from cinerec.serving import schemas
from cinerec.serving.events import FeedbackEvent
from cinerec.serving.feedback import confidence
from cinerec.serving.holders import ModelHolder
from cinerec.serving.metrics import Metrics
from cinerec.serving.present import LiveCatalog
from cinerec.serving.workers import PipelineRunner

if TYPE_CHECKING:  # the backends' modules load their clients (SQLAlchemy, redis-py)
    from cinerec.serving.batch import BatchStore
    from cinerec.serving.cache import AnswerCache
    from cinerec.serving.picks import EditorPicks
    from cinerec.serving.state import OnlineState

log = logging.getLogger("cinerec.serving")

#: A request is "plain" (the nightly list can answer it) when these are all defaults.
PLAIN_FIELDS = {"filters", "preferences", "exclude"}
PLAIN_REQUEST = schemas.RecommendationRequest().model_dump(include=PLAIN_FIELDS)
TRENDING_REFRESH_S = 2.0
#: Response fields that differ per request: cached answers are stored without them.
PER_REQUEST_FIELDS = {"request_id", "cached", "source"}
#: Layout of cached entries (part of the key, so entries of another layout are never read).
CACHE_FORMAT = "r3"

#: Online item counts of the last 24 hours, best first.
Trending = tuple[tuple[str, float], ...]


def _with_envelope(payload: bytes, request_id: str, source: str) -> bytes:
    """A cached-form answer (JSON object without the per-request fields) with them added."""
    cached = "true" if source == "cache" else "false"
    head = f'{{"request_id":"{request_id}","cached":{cached},"source":"{source}",'
    return head.encode() + payload[1:]


class Answers:
    """Answers ``/v1/recommendations`` (see the module docstring).

    ``recent_limit``: at most this many of the user's latest online events condition an
    answer. ``batch``: the nightly lists, when configured.
    """

    def __init__(
        self,
        *,
        holder: ModelHolder,
        state: OnlineState,
        cache: AnswerCache,
        picks: EditorPicks,
        pipelines: PipelineRunner,
        views: LiveCatalog,
        metrics: Metrics,
        batch: BatchStore | None = None,
        recent_limit: int = 200,
    ) -> None:
        self.holder = holder
        self.state = state
        self.cache = cache
        self.picks = picks
        self.pipelines = pipelines
        self.views = views
        self.metrics = metrics
        self.batch = batch
        self.recent_limit = recent_limit
        #: (monotonic time it expires, the counts): see :meth:`live_trending`.
        self.trending_memo: tuple[float, Trending] = (0.0, ())

    def cache_key(self, body: schemas.RecommendationRequest) -> str:
        """The answer cache's key of ``body`` under the served model, config and picks."""
        rec = self.holder.value
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
        rec = self.holder.value  # one model for the rest of the request
        request_id = uuid.uuid4().hex
        # Only a miss needs the online events: feedback invalidates a user's cached answers.
        online = self.state.recent(body.user_id)[-self.recent_limit :] if body.user_id else []
        batched = self.batch_answer(rec, body, online, request_id)
        if batched is not None:
            return batched.model_dump_json().encode()
        result = self.pipelines.run(rec, self.request(rec, body, online))
        for stage, ms in result.timings_ms.items():
            self.metrics.stage.labels(stage=stage).observe(ms / 1e3)
        for source, count in result.per_source.items():
            self.metrics.candidates.labels(source=source).observe(count)
        known = body.user_id is not None and rec.users.lookup([body.user_id])[0] >= 0
        view = self.views.of(rec)
        response = schemas.RecommendationResponse(
            request_id=request_id,
            user_id=body.user_id,
            items=[
                view.item(item, item_id)
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

    def request(
        self, rec: Recommender, body: schemas.RecommendationRequest, online: list[FeedbackEvent]
    ) -> Request:
        """The pipeline's request for ``body``: the user's ``online`` events weighted by
        :func:`~cinerec.serving.feedback.confidence`, the live trending counts, the picks
        in force, and the time now."""
        constraints = body.filters.constraints
        durations = self.views.of(rec).durations
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
            live_trending=self.live_trending(),
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

    def live_trending(self) -> Trending:
        """The online last-24h counts, refreshed at most every TRENDING_REFRESH_S."""
        now = time.monotonic()
        expires, value = self.trending_memo
        if now >= expires:
            try:
                value = tuple((str(i), float(c)) for i, c in self.state.trending(n=200))
            except Exception as exc:
                log.warning("online trending unavailable: %s", exc)
                value = ()
            self.trending_memo = (now + TRENDING_REFRESH_S, value)
        return value

    def batch_answer(
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
