"""The ``cinerec`` command: data, train, recommend, evaluate and the demo, in one entry point.

Every command that prints results takes ``--json`` and then writes one JSON document to
stdout. Errors are one line on stderr (exit status 2), never a traceback.
"""

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cinerec.cli.common import CacheOpt, JsonFlag, MirrorOpt
from cinerec.cli.common import print_summary as _print_summary
from cinerec.cli.demo import demo
from cinerec.cli.service import (
    batch_score_command,
    events_app,
    registry_app,
    serve,
    stream_app,
)
from cinerec.console import err_console, out_console, print_error, print_json
from cinerec.errors import CinerecError

app = typer.Typer(
    help="cinerec — a hybrid recommender for movies and TV series.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Fetch, import and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(events_app, name="events")
app.add_typer(stream_app, name="stream")
app.add_typer(registry_app, name="registry")
app.command()(serve)
app.command("batch-score")(batch_score_command)
app.command()(demo)

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
        model_names=_split_names(models) or _defaults_for(data, DEFAULT_TRAIN_MODELS),
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
    from cinerec.models.bundle import load_bundle

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
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model that relates items (default: content, else kNN)."),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """More like this: the items most similar to each given item (cold items included)."""
    from cinerec.models.bundle import load_bundle

    frame = load_bundle(bundle).similar(item, k=k, model=model)
    if json_:
        print_json(frame.to_dict(orient="records"))
        return
    from rich.table import Table

    table = Table(*frame.columns)
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    out_console.print(table)


def _cell(value: Any) -> str:
    """A table cell: floats to 3 places, a missing value (no title in the catalog) blank."""
    import pandas as pd

    if pd.api.types.is_scalar(value) and pd.isna(value):
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


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

    from cinerec.training.protocol import DEFAULT_MODELS, run_protocol

    config = _pipeline_config(pipeline)
    data = _load(dataset, interactions, items, mapping, False, mirror, cache, not json_)
    model_names = _split_names(models) or _defaults_for(data, DEFAULT_MODELS)
    runs = {}
    all_files = {}
    for spec in split or ["leave-last:1"]:
        run = run_protocol(
            data,
            spec,
            model_names,
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
            if run.context.get("skipped"):
                out_console.print(run.context["skipped"], highlight=False)
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


def _defaults_for(data: Any, defaults: tuple[str, ...]) -> tuple[str, ...]:
    """The default models this dataset can feed; says on stderr which were left out."""
    from cinerec.training.protocol import default_models_for

    names, note = default_models_for(data.items, defaults)
    if note:
        err_console.print(f"note: {note}", highlight=False, soft_wrap=True)
    return names


def _pipeline_config(path: Path | None) -> Any:
    """The pipeline config from a TOML / YAML / JSON file, or None for the default."""
    if path is None:
        return None
    from cinerec.pipeline.config import load_config

    return load_config(path)


def main() -> None:
    """Entry point: run the app, turning cinerec errors into one line and exit status 2.

    Anything else is a bug and keeps its traceback: tests/cli runs every command so that
    none is left. (Ctrl-C needs nothing here: typer ends it with status 130, quietly.)
    """
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
