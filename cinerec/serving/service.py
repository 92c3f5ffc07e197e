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

from cinerec.serving.admin import Admin
from cinerec.serving.answers import Answers
from cinerec.serving.feedback import FeedbackIntake
from cinerec.serving.holders import ModelHolder
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
