"""The ``cinerec`` command: data, train, recommend, evaluate and the demo, in one entry point.

Every command that prints results takes ``--json`` and then writes one JSON document to
stdout. Errors are one line on stderr (exit status 2), never a traceback.
"""

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cinerec.console import out_console, print_error, print_json
from cinerec.errors import CinerecError

app = typer.Typer(
    help="cinerec — a hybrid recommender for movies and TV series.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Fetch, import and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
MirrorOpt = Annotated[
    str | None,
    typer.Option(
        "--mirror",
        envvar="CINEREC_DATA_MIRROR",
        help="Local folder or base URL mirroring the public datasets.",
    ),
]
CacheOpt = Annotated[
    Path | None, typer.Option("--cache", envvar="CINEREC_CACHE", help="Download cache folder.")
]
MapOpt = Annotated[
    str | None,
    typer.Option("--map", help="Column mapping, e.g. 'user_id=userId,item_id=movieId'."),
]
LenientOpt = Annotated[
    bool, typer.Option("--lenient", help="Drop and count bad rows instead of stopping.")
]
PipelineOpt = Annotated[
    Path | None,
    typer.Option("--pipeline", help="Pipeline config (.toml / .yaml), e.g. configs/pipeline.toml."),
]
ModelsOpt = Annotated[
    str | None, typer.Option("--models", help="Comma-separated model names (default: baselines).")
]


def _split_names(names: str | None) -> list[str] | None:
    return [n.strip() for n in names.split(",") if n.strip()] if names else None


def _load(
    dataset: str | None,
    interactions: Path | None,
    items: Path | None,
    mapping: str | None,
    lenient: bool,
    mirror: str | None,
    cache: Path | None,
    progress: bool,
):
    """A Dataset from a dataset name / folder, or from a user's own files."""
    if interactions is not None:
        from cinerec.data.importer import import_dataset

        return import_dataset(interactions, items_path=items, mapping=mapping, strict=not lenient)
    if dataset is None:
        raise CinerecError("give --dataset NAME|FOLDER or --interactions FILE")
    from cinerec.data.loaders import load_dataset

    return load_dataset(dataset, mirror=mirror, cache=cache, progress=progress)


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="ml-latest-small, ml-100k, ml-1m, …, or demo.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the Parquet tables.")],
    mirror: MirrorOpt = None,
    cache: CacheOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Download (or read from the mirror), check and store a public dataset as Parquet."""
    started = time.perf_counter()
    dataset = _load(name, None, None, None, False, mirror, cache, not json_)
    dataset.save(out)
    summary = {**dataset.summary(), "out": str(out), "seconds": time.perf_counter() - started}
    _print_summary(summary, json_)


@data_app.command("import")
def data_import(
    interactions: Annotated[Path, typer.Option("--interactions", help="CSV or Parquet file.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the Parquet tables.")],
    items: Annotated[Path | None, typer.Option("--items", help="Catalog file.")] = None,
    mapping: MapOpt = None,
    lenient: LenientOpt = False,
    json_: JsonFlag = False,
) -> None:
    """Import your own interactions (and catalog) with a column mapping, validated."""
    dataset = _load(None, interactions, items, mapping, lenient, None, None, not json_)
    dataset.save(out)
    _print_summary({**dataset.summary(), "out": str(out)}, json_)


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="Bundle folder to write.")],
    dataset: Annotated[str | None, typer.Option("--dataset", help="Name or folder.")] = None,
    interactions: Annotated[Path | None, typer.Option("--interactions")] = None,
    items: Annotated[Path | None, typer.Option("--items")] = None,
    mapping: MapOpt = None,
    lenient: LenientOpt = False,
    models: ModelsOpt = None,
    validation: Annotated[
        str, typer.Option("--validation", help="Validation split carved from the data.")
    ] = "leave-last:5",
    pipeline: PipelineOpt = None,
    mirror: MirrorOpt = None,
    cache: CacheOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Tune every model, train the hybrid pipeline's ranker, refit on all data, write a bundle."""
    from cinerec.training.train import DEFAULT_TRAIN_MODELS, train_bundle

    config = _pipeline_config(pipeline)
    data = _load(dataset, interactions, items, mapping, lenient, mirror, cache, not json_)
    report = train_bundle(
        data,
        out,
        model_names=_split_names(models) or DEFAULT_TRAIN_MODELS,
        validation_spec=validation,
        progress=not json_,
        pipeline=config,
    )
    if json_:
        print_json(report.to_dict())
        return
    pipeline_info = report.pipeline or {}
    _print_summary(
        report.to_dict()["validation"]
        | {"default": report.default_model, "pipeline ranker": pipeline_info.get("ranker")},
        False,
    )


@app.command()
def recommend(
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder.")],
    out: Annotated[Path, typer.Option("--out", help="CSV or Parquet file to write.")],
    k: Annotated[int, typer.Option("--k", min=1, max=1000)] = 10,
    users: Annotated[
        Path | None, typer.Option("--users", help="File with a user_id column (or one id a line).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="One model of the bundle (default: hybrid).")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Write user_id,item_id,score,rank,reason for every (or the given) user.

    By default the whole hybrid pipeline answers (recall, ranker, re-ranking, reasons);
    ``--model`` ranks with one model of the bundle instead. Seen items are excluded.
    """
    from cinerec.data.tables import read_ids, write_table
    from cinerec.training.bundle import load_bundle

    loaded = load_bundle(bundle)
    user_ids = None
    if users is not None:
        user_ids = read_ids(users, "user_id")
    started = time.perf_counter()
    if model is None:
        from cinerec.pipeline.offline import recommend_users
        from cinerec.pipeline.persist import load_recommender

        recommender = load_recommender(loaded)
        recs = recommend_users(recommender, user_ids, k, progress=not json_)
        used = f"hybrid ({recommender.ranker.kind if recommender.ranker else 'model order'})"
    else:
        recs = loaded.recommend(user_ids, k=k, model=model)
        used = model
    write_table(recs, out)
    summary = {
        "out": str(out),
        "model": used,
        "users": int(recs["user_id"].nunique()),
        "rows": len(recs),
        "seconds": time.perf_counter() - started,
    }
    if user_ids is not None:
        known = set(str(u) for u in loaded.users.ids)
        summary["unknown_users"] = len(set(user_ids) - known)
    _print_summary(summary, json_)


@app.command()
def similar(
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder.")],
    item: Annotated[list[str], typer.Option("--item", help="Item id (repeat for several).")],
    k: Annotated[int, typer.Option("--k", min=1, max=1000)] = 10,
    model: Annotated[str, typer.Option("--model", help="Model with item vectors.")] = "content",
    json_: JsonFlag = False,
) -> None:
    """More like this: the items most similar to each given item (cold items included)."""
    from cinerec.training.bundle import load_bundle

    frame = load_bundle(bundle).similar(item, k=k, model=model)
    if json_:
        print_json(frame.to_dict(orient="records"))
        return
    from rich.table import Table

    table = Table(*frame.columns)
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    out_console.print(table)


@app.command()
def evaluate(
    dataset: Annotated[str | None, typer.Option("--dataset", help="Name or folder.")] = None,
    interactions: Annotated[Path | None, typer.Option("--interactions")] = None,
    items: Annotated[Path | None, typer.Option("--items")] = None,
    mapping: MapOpt = None,
    split: Annotated[
        list[str] | None,
        typer.Option("--split", help="leave-last:N, temporal:F, random:F, random-item:F."),
    ] = None,
    models: ModelsOpt = None,
    predictions: Annotated[
        Path | None, typer.Option("--predictions", help="Another system's recommendations.")
    ] = None,
    truth: Annotated[Path | None, typer.Option("--truth", help="Held-out interactions.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=1000)] = 10,
    report: Annotated[Path, typer.Option("--report", help="Report folder.")] = Path("reports"),
    pipeline: PipelineOpt = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    mirror: MirrorOpt = None,
    cache: CacheOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Evaluate models on a dataset + split, or score external predictions against truth."""
    from cinerec.evaluation.report import format_table, write_report

    ks = tuple(sorted({1, 5, k, 20} if k <= 20 else {1, 5, 10, k}))
    if predictions is not None or truth is not None:
        if predictions is None or truth is None:
            raise CinerecError("--predictions and --truth go together")
        from cinerec.data.tables import read_scored, read_table
        from cinerec.evaluation.evaluator import evaluate_predictions

        result = evaluate_predictions(
            read_scored(predictions), read_table(truth), k=k, ks=ks, name=predictions.stem
        )
        results, context = [result], {"predictions": str(predictions), "truth": str(truth)}
        files = write_report(results, report, title="External predictions", context=context)
        if json_:
            print_json(
                {
                    "context": context,
                    "results": [r.to_dict() for r in results],
                    "report": {n: str(p) for n, p in files.items()},
                }
            )
        else:
            out_console.print(format_table(results, k=k))
        return

    from cinerec.evaluation.protocol import DEFAULT_MODELS, run_protocol

    config = _pipeline_config(pipeline)
    data = _load(dataset, interactions, items, mapping, False, mirror, cache, not json_)
    runs = {}
    all_files = {}
    for spec in split or ["leave-last:1"]:
        run = run_protocol(
            data,
            spec,
            _split_names(models) or DEFAULT_MODELS,
            ks=ks,
            seed=seed,
            progress=not json_,
            pipeline=config,
        )
        folder = report / f"{data.name}-{spec.replace(':', '-')}"
        files = write_report(
            run.results, folder, title=f"{data.name} · {spec}", context=run.context
        )
        runs[spec] = run
        all_files[spec] = files
        if not json_:
            out_console.print(format_table(run.results, k=k))
            out_console.print(f"report: {files.get('markdown', folder)}")
    if json_:
        print_json(
            {
                spec: {
                    "context": run.context,
                    "results": [r.to_dict() for r in run.results],
                    "report": {n: str(p) for n, p in all_files[spec].items()},
                }
                for spec, run in runs.items()
            }
        )


@app.command()
def demo(
    mirror: MirrorOpt = None,
    cache: CacheOpt = None,
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Where data/bundles/reports go.")
    ] = Path("."),
    evaluate_: Annotated[
        bool, typer.Option("--evaluate/--no-evaluate", help="Print the evaluation table.")
    ] = True,
    serve_: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the API on the new bundle.")
    ] = True,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    json_: JsonFlag = False,
) -> None:
    """The quick start: demo data, a trained hybrid bundle, its evaluation, then the API."""
    from cinerec.data.loaders import load_dataset
    from cinerec.evaluation.protocol import run_protocol
    from cinerec.evaluation.report import format_table, write_report
    from cinerec.training.train import DEFAULT_TRAIN_MODELS, train_bundle

    timings: dict[str, float] = {}
    started = time.perf_counter()
    data = load_dataset("demo", mirror=mirror, cache=cache, progress=not json_)
    data.save(workdir / "data" / "demo")
    timings["data"] = time.perf_counter() - started
    if not json_:
        _print_summary(data.summary(), False)

    started = time.perf_counter()
    bundle = workdir / "bundles" / "demo"
    trained = train_bundle(data, bundle, progress=not json_)
    timings["train"] = time.perf_counter() - started
    document: dict[str, Any] = {"dataset": data.summary(), "bundle": trained.to_dict()}
    if evaluate_:
        started = time.perf_counter()
        models = (*DEFAULT_TRAIN_MODELS, "hybrid")
        run = run_protocol(data, "leave-last:1", models, progress=not json_)
        files = write_report(
            run.results, workdir / "reports" / "demo", title="demo · leave-last:1",
            context=run.context,
        )  # fmt: skip
        timings["evaluate"] = time.perf_counter() - started
        document["results"] = [r.to_dict() for r in run.results]
        document["report"] = {n: str(p) for n, p in files.items()}
        if not json_:
            out_console.print(format_table(run.results, k=10))
            out_console.print(f"report: {files.get('markdown')}")
    document["seconds"] = timings
    if json_:
        print_json(document)
    else:
        out_console.print(f"bundle: {trained.bundle}")
        out_console.print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    if serve_:
        if not json_:
            out_console.print(
                f"serving http://{host}:{port}/docs (Ctrl-C stops; events in data/events.db)"
            )
        serve(bundle=bundle, registry=None, host=host, port=port, log_level="warning")


events_app = typer.Typer(help="The durable feedback event log.", no_args_is_help=True)
app.add_typer(events_app, name="events")


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


@app.command()
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
) -> None:
    """Start the HTTP API (docs at /docs). DATABASE_URL, REDIS_URL switch on PostgreSQL, Redis."""
    import uvicorn

    from cinerec.serving.app import create_app
    from cinerec.serving.settings import Settings

    overrides: dict[str, Any] = {}
    if bundle is not None:
        overrides["bundle"] = bundle
    if registry is not None:
        overrides["registry"] = registry
    settings = Settings(**overrides)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)


@app.command("batch-score")
def batch_score_command(
    bundle: Annotated[Path, typer.Option("--bundle", envvar="CINEREC_BUNDLE")],
    out: Annotated[Path | None, typer.Option("--out", help="Parquet file to write.")] = None,
    redis_url: Annotated[str | None, typer.Option("--redis-url", envvar="REDIS_URL")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=500)] = 50,
    json_: JsonFlag = False,
) -> None:
    """Nightly bulk scoring of every user into Redis (the API's fast path) and/or Parquet."""
    from cinerec.pipeline.persist import load_recommender
    from cinerec.serving.batch import batch_score

    if out is None and redis_url is None:
        raise CinerecError("give --out and/or --redis-url (REDIS_URL)")
    started = time.perf_counter()
    summary = batch_score(
        load_recommender(bundle), k=k, out=out, redis_url=redis_url, progress=not json_
    )
    summary["seconds"] = time.perf_counter() - started
    _print_summary(summary, json_)


registry_app = typer.Typer(help="Versioned model bundles: publish, promote, roll back.")
app.add_typer(registry_app, name="registry")
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


def _pipeline_config(path: Path | None) -> Any:
    """The pipeline config from a TOML / YAML / JSON file, or None for the default."""
    if path is None:
        return None
    from cinerec.pipeline.config import load_config

    return load_config(path)


stream_app = typer.Typer(help="The feedback event stream and its consumers.", no_args_is_help=True)
app.add_typer(stream_app, name="stream")


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


def _print_summary(summary: dict, json_: bool) -> None:
    if json_:
        print_json(summary)
        return
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in summary.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        table.add_row(str(key), shown)
    out_console.print(table)


def main() -> None:
    """Entry point: run the app, turning cinerec errors into one line and exit status 2."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        app()
    except CinerecError as exc:
        print_error(str(exc))
        raise SystemExit(2) from None
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print_error(f"{exc.filename}: {exc.strerror}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
