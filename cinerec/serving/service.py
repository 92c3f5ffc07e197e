"""What the HTTP endpoints do, without HTTP: one :class:`Services` per API process.

:class:`Services` owns the live parts — the model holder (a fixed bundle or the registry's
promoted version, hot-reloaded; :mod:`cinerec.serving.holders`), the durable event log, the
online state, the answer cache, the event stream, the nightly lists and the metrics — and
builds from them the request paths, each in its own module and each given only the parts
it uses, so the logic is tested without a server and the routes stay thin:

* :class:`~cinerec.serving.answers.Answers`: recommendations (cache, nightly list, pipeline);
* :class:`~cinerec.serving.feedback.FeedbackIntake`: feedback, read-after-write;
* :class:`~cinerec.serving.lookups.Lookups`: similar items and user histories;
* :class:`~cinerec.serving.admin.Admin`: reloads, versions and editor picks.

The routes take the path they need as a dependency (:mod:`cinerec.serving.deps`); the
methods here give the same calls on the whole, for tests and scripts. Operator state (the
editor picks, :mod:`cinerec.serving.picks`) lives beside the event log, not on the served
model: it outlives hot reloads and restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.types import Request
from cinerec.serving import schemas
from cinerec.serving.admin import Admin
from cinerec.serving.answers import Answers, Trending
from cinerec.serving.errors import NotFoundError, UnavailableError
from cinerec.serving.events import FeedbackEvent
from cinerec.serving.feedback import FeedbackIntake, confidence
from cinerec.serving.holders import ModelHolder, StaticHolder, load_for_serving
from cinerec.serving.lookups import Lookups
from cinerec.serving.metrics import Metrics
from cinerec.serving.present import LiveCatalog
from cinerec.serving.workers import PipelineRunner

if TYPE_CHECKING:  # the backends' modules load their clients (SQLAlchemy, redis-py, fsspec)
    from cinerec.serving.batch import BatchStore
    from cinerec.serving.cache import AnswerCache
    from cinerec.serving.eventlog import EventLog
    from cinerec.serving.picks import EditorPicks
    from cinerec.serving.registry import ModelRegistry
    from cinerec.serving.state import OnlineState
    from cinerec.serving.stream import EventStream

#: Names this module defined before the request paths moved out (imported from here still).
__all__ = [
    "NotFoundError",
    "Services",
    "StaticHolder",
    "UnavailableError",
    "confidence",
    "load_for_serving",
]


class Services:
    """The live parts of one API process and the request paths built on them.

    ``stream``: the Redis event stream, when configured; ``registry``: the model registry
    the holder follows, when configured; ``batch``: the nightly lists, when configured;
    ``picks``: the editor picks (built beside the event log when None, not polled);
    ``recent_limit``: the user's latest online events an answer conditions on;
    ``pipeline_concurrency``: pipeline runs at once (the rest wait their turn);
    ``pipeline_processes``: > 0 runs pipelines in that many worker processes.
    """

    def __init__(
        self,
        holder: ModelHolder,
        events: EventLog,
        state: OnlineState,
        cache: AnswerCache,
        stream: EventStream | None,
        metrics: Metrics,
        registry: ModelRegistry | None = None,
        batch: BatchStore | None = None,
        picks: EditorPicks | None = None,
        recent_limit: int = 200,
        pipeline_concurrency: int = 2,
        pipeline_processes: int = 0,
    ) -> None:
        if picks is None:
            from cinerec.serving.picks import EditorPicks

            picks = EditorPicks(events, poll_s=0)
        self.holder = holder
        self.events = events
        self.state = state
        self.cache = cache
        self.stream = stream
        self.metrics = metrics
        self.registry = registry
        self.batch = batch
        self.picks: EditorPicks = picks
        self.recent_limit = recent_limit
        self.pipeline_concurrency = pipeline_concurrency
        self.pipeline_processes = pipeline_processes
        self.pipelines = PipelineRunner(holder.value, pipeline_processes, pipeline_concurrency)
        self.views = LiveCatalog()
        self.answers = Answers(
            holder=holder,
            state=state,
            cache=cache,
            picks=picks,
            pipelines=self.pipelines,
            views=self.views,
            metrics=metrics,
            batch=batch,
            recent_limit=recent_limit,
        )
        self.intake = FeedbackIntake(events, state, cache, stream, metrics)
        self.lookups = Lookups(holder, state, self.views)
        self.admin = Admin(holder, picks, metrics, registry)
        self.admin.note_model()
        self.views.of(holder.value)  # built before the first request needs it

    # ----- the request paths, on the whole ---------------------------------------------------
    def cache_key(self, body: schemas.RecommendationRequest) -> str:
        """See :meth:`Answers.cache_key`."""
        return self.answers.cache_key(body)

    def cached_json(
        self, body: schemas.RecommendationRequest, key: str
    ) -> tuple[bytes | None, str | None]:
        """See :meth:`Answers.cached_json`."""
        return self.answers.cached_json(body, key)

    def recommend_json(
        self,
        body: schemas.RecommendationRequest,
        key: str | None = None,
        generation: str | None = None,
    ) -> bytes:
        """See :meth:`Answers.recommend_json`."""
        return self.answers.recommend_json(body, key, generation)

    def feedback(self, incoming: list[schemas.FeedbackIn]) -> schemas.FeedbackAck:
        """See :meth:`FeedbackIntake.accept`."""
        return self.intake.accept(incoming)

    def similar(self, item_id: str, k: int) -> list[schemas.SimilarItem]:
        """See :meth:`Lookups.similar`."""
        return self.lookups.similar(item_id, k)

    def history(self, user_id: str, limit: int) -> list[schemas.HistoryEvent]:
        """See :meth:`Lookups.history`."""
        return self.lookups.history(user_id, limit)

    def reload(self) -> dict[str, Any]:
        """See :meth:`Admin.reload`."""
        return self.admin.reload()

    def note_model(self) -> None:
        """See :meth:`Admin.note_model`."""
        self.admin.note_model()

    def set_editor_picks(self, item_ids: list[str] | None) -> dict[str, Any]:
        """See :meth:`Admin.set_editor_picks`."""
        return self.admin.set_editor_picks(item_ids)

    def editor_picks(self) -> dict[str, Any]:
        """See :meth:`Admin.editor_picks`."""
        return self.admin.editor_picks()

    # ----- operations ------------------------------------------------------------------------
    def ready(self) -> dict[str, Any]:
        """Readiness: a model is served and the event log answers (the online state and
        the cache are reported, not required: the service answers, degraded, without them)."""
        checks = {
            "model": self.holder.value is not None,
            "event_log": bool(self.events.ping()),
            "state": bool(self.state.healthy()),
            "cache": bool(self.cache.healthy()),
        }
        for name, up in checks.items():
            self.metrics.dependency.labels(name=name).set(1 if up else 0)
        return {"ready": checks["model"] and checks["event_log"], "checks": checks}

    def close(self) -> None:
        """Stop the background work and release the event log (at shutdown)."""
        self.picks.stop()
        self.holder.stop()
        self.pipelines.close()
        self.events.close()

    # ----- the recommendation path's internals, as tests reach them ---------------------------
    @property
    def _trending(self) -> tuple[float, Trending]:
        return self.answers.trending_memo

    @_trending.setter
    def _trending(self, value: tuple[float, Trending]) -> None:
        self.answers.trending_memo = value

    def _live_trending(self) -> Trending:
        return self.answers.live_trending()

    def _request(
        self, rec: Recommender, body: schemas.RecommendationRequest, online: list[FeedbackEvent]
    ) -> Request:
        return self.answers.request(rec, body, online)
