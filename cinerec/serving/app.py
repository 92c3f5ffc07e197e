"""The FastAPI application: ``create_app()`` wires settings, services and routes.

Run it with ``cinerec serve`` (uvicorn). Errors come back as ``{"detail": reason}`` with a
4xx status naming what was wrong; nothing but a bug gives a 5xx.
"""

from __future__ import annotations

import gc
import inspect
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from cinerec import __version__
from cinerec.errors import CinerecError, IntegrityError, ModelError
from cinerec.pipeline.rules import ConstraintError
from cinerec.serving.errors import NotFoundError, UnavailableError
from cinerec.serving.holders import StaticHolder, load_for_serving
from cinerec.serving.metrics import Metrics
from cinerec.serving.middleware import LimitsAndMetrics
from cinerec.serving.routes import admin, api, ops
from cinerec.serving.service import Services
from cinerec.serving.settings import Settings
from cinerec.serving.web import web

if TYPE_CHECKING:
    from cinerec.pipeline.recommender import Recommender
    from cinerec.serving.registry import HotReloader

log = logging.getLogger("cinerec.serving")


def check_source(settings: Settings) -> None:
    """Raise a CinerecError when ``settings`` name nothing to serve.

    That is: no bundle folder, a folder that is no bundle, or a registry without a
    promoted version. ``cinerec serve`` runs this before the server starts, so such a
    mistake is one line on the terminal, not a failed startup that uvicorn logs with a
    traceback; :func:`build_services` runs it too (for ``uvicorn --factory`` workers).
    """
    if settings.registry:
        from cinerec.serving.registry import ModelRegistry, RegistryError

        registry = ModelRegistry(settings.registry)
        if registry.current() is None:
            raise RegistryError(
                f"{registry.root}: no version has been promoted (cinerec registry promote)"
            )
        return
    if settings.bundle is None or not Path(settings.bundle).exists():
        raise CinerecError(
            f"no bundle at {settings.bundle}: train one (cinerec train / make demo) or "
            "set CINEREC_BUNDLE / CINEREC_REGISTRY"
        )
    if not (Path(settings.bundle) / "manifest.json").is_file():
        raise IntegrityError(f"{settings.bundle} is not a cinerec bundle (no manifest.json)")


def build_services(settings: Settings) -> Services:
    """The live parts for ``settings``: model holder, event log, state, cache, stream."""
    from cinerec.serving.cache import RecommendationCache
    from cinerec.serving.eventlog import EventLog
    from cinerec.serving.picks import EditorPicks
    from cinerec.serving.state import make_state
    from cinerec.serving.workers import default_processes, process_rss

    check_source(settings)
    registry = None
    holder: StaticHolder | HotReloader[Recommender]
    if settings.registry:
        from cinerec.serving.registry import HotReloader, ModelRegistry

        registry = ModelRegistry(settings.registry)
        holder = HotReloader(registry, poll_s=settings.registry_poll_s, loader=load_for_serving)
        holder.start()
    else:
        holder = StaticHolder(Path(settings.bundle or ""))
    stream = None
    batch = None
    if settings.redis_url:
        from cinerec.serving.batch import BatchStore
        from cinerec.serving.stream import EventStream

        prefix = settings.redis_prefix
        stream = EventStream(settings.redis_url, stream=f"{prefix}:events")
        batch = BatchStore(settings.redis_url, prefix=prefix) if settings.batch_scores else None
    processes = settings.pipeline_processes
    if processes is None:  # the bundle is loaded: this process's RSS ≈ what a worker costs
        processes, why = default_processes(process_rss())
        log.info("pipeline worker processes: %d (%s; CINEREC_PIPELINE_PROCESSES=N sets it)",
                 processes, why)  # fmt: skip
    events = EventLog(settings.database_url)
    picks = EditorPicks(events, poll_s=settings.editor_picks_poll_s)
    picks.start()
    return Services(
        holder=holder,
        events=events,
        state=make_state(settings.redis_url, prefix=settings.redis_prefix),
        cache=RecommendationCache(
            settings.redis_url, ttl_s=settings.cache_ttl_s, prefix=settings.redis_prefix
        ),
        stream=stream,
        metrics=Metrics(),
        registry=registry,
        batch=batch,
        picks=picks,
        recent_limit=settings.recent_events,
        pipeline_concurrency=settings.pipeline_concurrency,
        pipeline_processes=processes,
    )


def start_consumer(settings: Settings, services: Services, stop: threading.Event) -> Any:
    """A daemon thread folding the event stream into the shared last-24h aggregates."""
    from cinerec.serving.stream import consume

    name = f"{socket.gethostname()}-{os.getpid()}"

    def run() -> None:
        consume(
            settings.redis_url or "",
            services.state,
            consumer=name,
            stream=f"{settings.redis_prefix}:events",
            stop=stop,
            block_ms=500,
        )

    thread = threading.Thread(target=run, name="stream-consumer", daemon=True)
    thread.start()
    return thread


def telemetry_options(enabled: bool) -> dict[str, Any]:
    """FastAPI's built-in OpenTelemetry (from 0.16x) opens spans for each request, its
    dependencies, endpoint and serialisation even with no exporter configured — about a
    tenth of a small request's CPU here. The service exports Prometheus metrics of its
    own, so that is off unless ``CINEREC_OPENTELEMETRY`` asks for it (an OpenTelemetry SDK
    configured in the process)."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}  # an older FastAPI: no built-in telemetry to switch
    if enabled:
        return {}
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"telemetry": off}


STATUS = {
    NotFoundError: 404,
    UnavailableError: 503,
    ConstraintError: 422,
    IntegrityError: 409,
    ModelError: 409,
}


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The app; ``services`` may be given (tests), else built from ``settings`` at startup."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.services = services or build_services(settings)
        # The model is millions of long-lived objects; without this every full collection
        # walks them all and stalls requests for hundreds of milliseconds.
        gc.collect()
        gc.freeze()
        stop = threading.Event()
        consumer = None
        if services is None and settings.redis_url and settings.stream_consumer:
            consumer = start_consumer(settings, app.state.services, stop)
        try:
            yield
        finally:
            stop.set()
            if consumer is not None:
                consumer.join(timeout=5)
            if services is None:
                app.state.services.close()

    app = FastAPI(
        title="cinerec",
        version=__version__,
        summary="Hybrid movie & TV-series recommendations with real-time feedback.",
        lifespan=lifespan,
        **telemetry_options(settings.opentelemetry),
    )
    app.include_router(api)
    app.include_router(ops)
    app.include_router(admin)
    app.include_router(web)

    app.add_middleware(LimitsAndMetrics, max_body_bytes=settings.max_body_bytes)

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> JSONResponse:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(CinerecError)
    async def cinerec_error(request: Request, exc: CinerecError) -> JSONResponse:
        code = next((c for kind, c in STATUS.items() if isinstance(exc, kind)), 400)
        svc = getattr(request.app.state, "services", None)
        if svc is not None:
            svc.metrics.errors.labels(route=request.url.path, kind=type(exc).__name__).inc()
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return app
