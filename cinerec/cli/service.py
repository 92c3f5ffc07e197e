"""The service-side commands: serve, batch-score, events, stream, registry.

Registered on the main ``cinerec`` app by :mod:`cinerec.cli`; kept apart so the offline
commands (data, train, evaluate) stay readable.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cinerec.cli.common import JsonFlag
from cinerec.cli.common import print_summary as _print_summary
from cinerec.console import out_console, print_json
from cinerec.errors import CinerecError

events_app = typer.Typer(help="The durable feedback event log.", no_args_is_help=True)


@events_app.command("export")
def events_export(
    out: Annotated[Path, typer.Option("--out", help="Parquet file for the interactions.")],
    database_url: Annotated[
        str,
        typer.Option("--database-url", envvar="DATABASE_URL", help="SQLAlchemy URL of the log."),
    ] = "sqlite:///events.db",
    since: Annotated[
        str | None, typer.Option("--since", help="Only events at/after this ISO 8601 time.")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Export logged feedback as an interactions table, ready for retraining."""
    from datetime import UTC, datetime

    from cinerec.serving.eventlog import EventLog

    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            raise CinerecError(f"--since: {since!r} is not an ISO 8601 time") from None
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
    log = EventLog(database_url)
    try:
        rows = log.export_parquet(out, since=start)
    finally:
        log.close()
    if json_:
        print_json({"rows": rows, "out": str(out), "database": log.url, "since": since})
    else:
        out_console.print(f"exported {rows} events to {out}", highlight=False, soft_wrap=True)


def serve(
    bundle: Annotated[
        Path | None, typer.Option("--bundle", envvar="CINEREC_BUNDLE", help="Bundle folder.")
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option("--registry", envvar="CINEREC_REGISTRY", help="Serve its promoted version."),
    ] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    log_level: Annotated[str, typer.Option("--log-level")] = "warning",
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Processes (each loads the model).")
    ] = 1,
    pipeline_processes: Annotated[
        int | None,
        typer.Option(
            "--pipeline-processes",
            min=0,
            max=64,
            envvar="CINEREC_PIPELINE_PROCESSES",
            help="Worker processes running the pipeline (0: in the API process; default: "
            "one per core as memory allows).",
        ),
    ] = None,
) -> None:
    """Start the HTTP API (docs at /docs). DATABASE_URL, REDIS_URL switch on PostgreSQL, Redis."""
    # Concurrent requests are the parallelism: OpenMP pools (faiss and its OpenBLAS,
    # LightGBM) would only spin on the other core. Set before faiss loads (it reads this
    # once), for this process, uvicorn's workers and the pipeline worker processes.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import uvicorn

    from cinerec.serving.app import check_source, create_app
    from cinerec.serving.settings import Settings

    if workers > 1:  # one pipeline at a time per process: the processes share the cores
        os.environ.setdefault("CINEREC_PIPELINE_CONCURRENCY", "1")
        os.environ.setdefault("CINEREC_PIPELINE_PROCESSES", "0")  # not a pool per worker
    if pipeline_processes is not None:
        os.environ["CINEREC_PIPELINE_PROCESSES"] = str(pipeline_processes)
    if bundle is not None:
        os.environ["CINEREC_BUNDLE"] = str(bundle)
    if registry is not None:
        os.environ["CINEREC_REGISTRY"] = registry
    show_service_log(log_level)
    if workers > 1 and not Settings().redis_url:
        raise CinerecError(
            "--workers > 1 needs REDIS_URL: in-process state is per process, so feedback taken "
            "by one worker would not reach the next answer from another"
        )
    check_source(Settings())  # a wrong --bundle / --registry: one line, not a failed startup
    if workers > 1:  # each worker process builds its app from the environment
        uvicorn.run(
            "cinerec.serving.app:create_app",
            factory=True,
            host=host,
            port=port,
            log_level=log_level,
            workers=workers,
        )
        return
    uvicorn.run(create_app(Settings()), host=host, port=port, log_level=log_level)


def show_service_log(level: str) -> None:
    """The service's own lines (the start-up choices, hot reloads) on stderr: at INFO, or
    at ``level`` when that is stricter than warning (uvicorn's own follow ``level``)."""
    import logging

    logger = logging.getLogger("cinerec")
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger.addHandler(handler)
    wanted = logging.getLevelName(level.upper())
    strict = isinstance(wanted, int) and wanted > logging.WARNING
    logger.setLevel(wanted if strict else logging.INFO)


def batch_score_command(
    bundle: Annotated[Path, typer.Option("--bundle", envvar="CINEREC_BUNDLE")],
    out: Annotated[Path | None, typer.Option("--out", help="Parquet file to write.")] = None,
    redis_url: Annotated[str | None, typer.Option("--redis-url", envvar="REDIS_URL")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=500)] = 50,
    similar_out: Annotated[
        Path | None,
        typer.Option("--similar-out", help="Also write every item's more-like-this list here."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="DATABASE_URL",
            help="The API's event-log database: score with the editor picks stored there "
            "(without it, the bundle's own; the API serves lists made with its picks only).",
        ),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Nightly bulk scoring of every user into Redis (the API's fast path) and/or Parquet."""
    from cinerec.pipeline.persist import load_recommender
    from cinerec.serving.batch import batch_score, batch_similar

    if out is None and redis_url is None and similar_out is None:
        raise CinerecError("give --out, --redis-url (REDIS_URL) and/or --similar-out")
    picks = None
    if database_url:
        from cinerec.serving.eventlog import EventLog
        from cinerec.serving.picks import EditorPicks

        with EventLog(database_url) as events:
            picks = EditorPicks(events, poll_s=0).current
    started = time.perf_counter()
    rec = load_recommender(bundle)
    summary: dict[str, Any] = {}
    if out is not None or redis_url is not None:
        summary = batch_score(
            rec, k=k, out=out, redis_url=redis_url, progress=not json_, editor_picks=picks
        )
    if similar_out is not None:
        summary["similar"] = batch_similar(rec, similar_out, k=k, progress=not json_)
    summary["seconds"] = time.perf_counter() - started
    _print_summary(summary, json_)


registry_app = typer.Typer(help="Versioned model bundles: publish, promote, roll back.")
RegistryOpt = Annotated[
    str, typer.Option("--registry", envvar="CINEREC_REGISTRY", help="Folder or fsspec URL.")
]


@registry_app.command("publish")
def registry_publish(
    registry: RegistryOpt,
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder to publish.")],
    version: Annotated[str | None, typer.Option("--version")] = None,
    promote_: Annotated[bool, typer.Option("--promote", help="Promote it too.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Verify a bundle and add it to the registry as a new version."""
    from cinerec.serving.registry import ModelRegistry

    reg = ModelRegistry(registry)
    published = reg.publish(bundle, version)
    if promote_:
        reg.promote(published)
    _print_summary({"version": published, "current": reg.current()}, json_)


@registry_app.command("promote")
def registry_promote(
    registry: RegistryOpt,
    version: Annotated[str, typer.Option("--version")],
    json_: JsonFlag = False,
) -> None:
    """Make a version the one servers load (atomic; running servers hot-reload it)."""
    from cinerec.serving.registry import ModelRegistry

    reg = ModelRegistry(registry)
    reg.promote(version)
    _print_summary({"current": reg.current()}, json_)


@registry_app.command("rollback")
def registry_rollback(registry: RegistryOpt, json_: JsonFlag = False) -> None:
    """Promote the previously promoted version again."""
    from cinerec.serving.registry import ModelRegistry

    _print_summary({"current": ModelRegistry(registry).rollback()}, json_)


@registry_app.command("list")
def registry_list(registry: RegistryOpt, json_: JsonFlag = False) -> None:
    """The complete versions, newest first, and the promoted one."""
    from cinerec.serving.registry import ModelRegistry

    reg = ModelRegistry(registry)
    rows = [vars(v) for v in reg.versions()]
    if json_:
        print_json({"current": reg.current(), "versions": rows})
        return
    from rich.table import Table

    table = Table("version", "created_at", "config_hash", "current")
    for row in rows:
        current = "*" if row["version"] == reg.current() else ""
        table.add_row(row["version"], str(row["created_at"]), str(row["config_hash"]), current)
    out_console.print(table)


stream_app = typer.Typer(help="The feedback event stream and its consumers.", no_args_is_help=True)


@stream_app.command("consume")
def stream_consume(
    redis_url: Annotated[
        str,
        typer.Option("--redis-url", envvar="REDIS_URL", help="Redis holding stream and state."),
    ],
    group: Annotated[str, typer.Option("--group", help="Consumer group.")] = "aggregates",
    consumer: Annotated[
        str | None, typer.Option("--consumer", help="Consumer name (default: hostname-pid).")
    ] = None,
    max_batches: Annotated[
        int | None, typer.Option("--max-batches", help="Stop after N reads (default: Ctrl-C).")
    ] = None,
    stream: Annotated[str, typer.Option("--stream", help="Stream key.")] = "cinerec:events",
    prefix: Annotated[str, typer.Option("--prefix", help="Online state key prefix.")] = "cinerec",
    json_: JsonFlag = False,
) -> None:
    """Apply the feedback stream to the shared trending counts, as one consumer of a group."""
    import signal
    import socket
    import threading

    from cinerec.serving.state import RedisState
    from cinerec.serving.stream import consume

    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    try:
        state = RedisState(redis_url, prefix=prefix)
    except ValueError as exc:
        raise CinerecError(f"--redis-url: {exc}") from None
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:  # first Ctrl-C / SIGTERM: finish the batch
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.perf_counter()
    events: int | None = None
    try:
        events = consume(
            redis_url,
            state,
            group=group,
            consumer=name,
            stream=stream,
            stop=stop,
            max_batches=max_batches,
        )
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop now (unacknowledged entries are re-read next time)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = {"consumer": name, "group": group, "stream": stream, "events": events}
    _print_summary({**summary, "seconds": time.perf_counter() - started}, json_)
