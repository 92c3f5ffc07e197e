"""``cinerec demo``: demo data, a trained bundle, the API, and the evaluation beside it.

Why in the background: the demo's evaluation re-tunes every model on another split and
took minutes before the API answered. ``cinerec demo`` now starts the API as soon as the
bundle is written and runs the evaluation meanwhile in a lower-priority process
(:class:`BackgroundEvaluation`), which prints the same table when it is ready and writes
the same report (``reports/demo/``). With ``--no-serve`` it runs in the foreground, as
before. The demo also writes ``reports/demo/demo.json``: the dataset summary, the training
report and the timeline of its phases (:func:`phase_offsets`), which
``benchmarks/demo_timeline.py`` reads.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from cinerec.cli.common import CacheOpt, JsonFlag, MirrorOpt
from cinerec.cli.common import print_summary as _print_summary
from cinerec.cli.service import serve
from cinerec.console import out_console, print_json

if TYPE_CHECKING:
    from cinerec.data.dataset import Dataset
    from cinerec.training.protocol import ProtocolRun

#: The split the demo reports (its README table): each user's last interaction held out.
DEMO_SPLIT: Final = "leave-last:1"
#: Niceness of the background evaluation: the API's requests come first.
EVALUATION_NICENESS: Final = 10


def evaluate_demo(
    data: Dataset, report_dir: Path, *, progress: bool
) -> tuple[ProtocolRun, dict[str, Path]]:
    """The demo's evaluation: every default model and the hybrid on :data:`DEMO_SPLIT`,
    written as a report into ``report_dir``."""
    from cinerec.evaluation.report import write_report
    from cinerec.training.protocol import run_protocol
    from cinerec.training.train import DEFAULT_TRAIN_MODELS

    run = run_protocol(data, DEMO_SPLIT, (*DEFAULT_TRAIN_MODELS, "hybrid"), progress=progress)
    files = write_report(run.results, report_dir, title=f"demo · {DEMO_SPLIT}", context=run.context)
    return run, files


class BackgroundEvaluation:
    """:func:`evaluate_demo` of the saved dataset in ``data_dir``, in a niced process.

    It prints the evaluation table and the report's path on stdout when done (nothing
    with ``quiet``); its progress goes nowhere. :meth:`stop` ends it if still running.
    """

    def __init__(self, data_dir: Path, report_dir: Path, *, quiet: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.report_dir = Path(report_dir)
        self.quiet = quiet
        self._process: mp.process.BaseProcess | None = None

    def start(self) -> BackgroundEvaluation:
        context = mp.get_context("spawn")  # the parent holds BLAS and server threads
        self._process = context.Process(
            target=_evaluate_in_background,
            args=(str(self.data_dir), str(self.report_dir), self.quiet),
            name="cinerec-demo-evaluation",
        )
        self._process.start()
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def join(self, timeout: float | None = None) -> int | None:
        """Wait for the evaluation; its exit code (None while it still runs)."""
        if self._process is None:
            raise RuntimeError("the evaluation was not started")
        self._process.join(timeout)
        return self._process.exitcode

    def stop(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(5.0)


def _evaluate_in_background(data_dir: str, report_dir: str, quiet: bool) -> None:
    """The background process: niced, evaluate, print the table (unless ``quiet``)."""
    if hasattr(os, "nice"):
        os.nice(EVALUATION_NICENESS)
    from cinerec.console import out_console
    from cinerec.data.dataset import Dataset
    from cinerec.evaluation.report import format_table

    run, files = evaluate_demo(Dataset.load(data_dir), Path(report_dir), progress=False)
    if not quiet:
        out_console.print(format_table(run.results, k=10))
        out_console.print(f"evaluation report: {files.get('markdown')}")


def phase_offsets(
    begun: float, phases: Mapping[str, tuple[float, float]]
) -> dict[str, list[float]]:
    """Each phase's (start, end) wall-clock epochs as seconds since ``begun``, by start."""
    spans = {name: [round(a - begun, 2), round(b - begun, 2)] for name, (a, b) in phases.items()}
    return dict(sorted(spans.items(), key=lambda item: item[1][0]))


def write_document(document: Mapping[str, Any], path: Path) -> Path:
    """The demo's JSON document (as ``--json`` prints it), written to ``path``."""
    from cinerec.evaluation.result import json_safe

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(dict(document)), indent=2, allow_nan=False) + "\n")
    return path


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
    """The quick start: demo data, a trained hybrid bundle, then the API.

    The evaluation table comes once the API is up (it runs in the background and is
    printed when ready); with ``--no-serve`` it comes first, as the last step.
    """
    from cinerec.data.loaders import load_dataset
    from cinerec.evaluation.report import format_table
    from cinerec.training.train import train_bundle

    begun = time.time()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    data = load_dataset("demo", mirror=mirror, cache=cache, progress=not json_)
    data_dir = data.save(workdir / "data" / "demo")
    timings["data"] = time.perf_counter() - started
    if not json_:
        _print_summary(data.summary(), False)

    started = time.perf_counter()
    bundle = workdir / "bundles" / "demo"
    trained = train_bundle(data, bundle, progress=not json_)
    timings["train"] = time.perf_counter() - started
    document: dict[str, Any] = {"dataset": data.summary(), "bundle": trained.to_dict()}
    report_dir = workdir / "reports" / "demo"
    if evaluate_ and not serve_:
        started = time.perf_counter()
        run, files = evaluate_demo(data, report_dir, progress=not json_)
        timings["evaluate"] = time.perf_counter() - started
        document["results"] = [r.to_dict() for r in run.results]
        document["report"] = {n: str(p) for n, p in files.items()}
        if not json_:
            out_console.print(format_table(run.results, k=10))
            out_console.print(f"report: {files.get('markdown')}")
    document["seconds"] = timings
    document["started_at"] = begun
    data_span = (begun, begun + timings["data"])
    document["timeline"] = phase_offsets(begun, {"data": data_span, **trained.phases})
    write_document(document, report_dir / "demo.json")
    if json_:
        print_json(document)
    else:
        out_console.print(f"bundle: {trained.bundle}")
        out_console.print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    if serve_:
        evaluation = None
        if evaluate_:
            evaluation = BackgroundEvaluation(data_dir, report_dir, quiet=json_).start()
        if not json_:
            out_console.print(
                f"serving http://{host}:{port}/docs (Ctrl-C stops; events in data/events.db)"
            )
            if evaluation is not None:
                out_console.print(
                    "evaluation: running in the background; its table is printed here when "
                    f"ready (report in {report_dir})"
                )
        try:
            serve(
                bundle=bundle, registry=None, host=host, port=port, log_level="warning",
                workers=1,
            )  # fmt: skip
        finally:
            if evaluation is not None:
                evaluation.stop()
