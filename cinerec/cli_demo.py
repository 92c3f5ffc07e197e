"""The demo's parts besides training: its evaluation (now or in the background), its timeline.

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
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cinerec.data.dataset import Dataset
    from cinerec.evaluation.protocol import ProtocolRun

#: The split the demo reports (its README table): each user's last interaction held out.
DEMO_SPLIT: Final = "leave-last:1"
#: Niceness of the background evaluation: the API's requests come first.
EVALUATION_NICENESS: Final = 10


def evaluate_demo(
    data: Dataset, report_dir: Path, *, progress: bool
) -> tuple[ProtocolRun, dict[str, Path]]:
    """The demo's evaluation: every default model and the hybrid on :data:`DEMO_SPLIT`,
    written as a report into ``report_dir``."""
    from cinerec.evaluation.protocol import run_protocol
    from cinerec.evaluation.report import write_report
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
