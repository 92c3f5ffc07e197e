"""Neural recommenders (NeuMF, SASRec) against pop, EASE and ALS, full-ranking leave-last-out.

Runs :func:`cinerec.training.protocol.run_protocol` with the ``leave-last:1`` split on
each dataset: the classical models are tuned on a validation carve (``--tune-budget``
seconds each), the neural ones have empty search spaces and train with their defaults
(early stopping on their own leave-last-1 carve, capped by ``--max-seconds`` of training
per fit). Prints one table per dataset (NDCG / Recall / MRR @10 with 95% bootstrap
intervals) plus per-epoch training time of the neural models, and writes JSON, Markdown
and PNG reports to ``reports/benchmarks/neural/<dataset>/``.

    python benchmarks/neural.py [--datasets ml-latest-small,demo] [--models ...] [--json]

SASRec is included when registered (``sasrec``), otherwise skipped with a note.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from rich.console import Console
from rich.table import Table

import cinerec.training.protocol as protocol
import cinerec.training.tuning as tuning
from cinerec.console import print_json
from cinerec.data.loaders import load_dataset
from cinerec.evaluation.report import format_table, write_report
from cinerec.models.base import Model, get_model_class, model_names
from cinerec.models.neural.loop import TrainHistory

MODELS = ("pop", "ease", "als", "neumf", "sasrec")
NEURAL = ("neumf", "sasrec")


def training_summary(model: Model) -> dict[str, Any] | None:
    """Epochs, best epoch and mean seconds per epoch from a fitted neural model's log."""
    history = next(
        (v for v in vars(model).values() if isinstance(v, TrainHistory)),
        None,
    )
    if history is None or not history.epochs:
        return None
    seconds = [log.seconds for log in history.epochs]
    return {
        "epochs": len(seconds),
        "best_epoch": history.best_epoch,
        "best_val_ndcg@10": history.best_val_ndcg,
        "seconds_per_epoch": sum(seconds) / len(seconds),
        "train_seconds": sum(seconds),
    }


def run_dataset(name: str, models: list[str], args: argparse.Namespace, console: Console) -> dict:
    started = time.perf_counter()
    dataset = load_dataset(name, mirror=args.mirror, progress=not args.json)
    console.print(f"{name}: {dataset.summary()} (loaded in {time.perf_counter() - started:.1f}s)")
    fitted: dict[str, Model] = {}

    def capturing(model_name: str, capture: bool = True) -> Any:
        """The model class, with the training cap applied and the instance kept."""
        cls = get_model_class(model_name)
        overrides = {"max_seconds": args.max_seconds} if model_name in NEURAL else {}
        overrides = {k: v for k, v in overrides.items() if k in cls.default_params()}

        def make(**params: Any) -> Model:
            model = cls(**{**params, **overrides})
            if capture:  # the protocol's final fit: keep it for its training log
                fitted[model_name] = model
            return model

        make.search_space = cls.search_space  # type: ignore[attr-defined]
        make.default_params = cls.default_params  # type: ignore[attr-defined]
        return make

    # Both the validation fit (tuning) and the final fit get the cap.
    protocol.get_model_class = capturing
    tuning.get_model_class = lambda model_name: capturing(model_name, capture=False)
    try:
        run = protocol.run_protocol(
            dataset,
            "leave-last:1",
            models,
            seed=args.seed,
            tune_time_budget_s=args.tune_budget,
            progress=not args.json,
        )
    finally:
        protocol.get_model_class = tuning.get_model_class = get_model_class
    training = {m: s for m, s in ((m, training_summary(fitted[m])) for m in fitted) if s}
    context = {**run.context, "tune_budget_s": args.tune_budget, "max_train_s": args.max_seconds}
    for model_name, summary in training.items():
        context[f"{model_name} training"] = (
            f"{summary['epochs']} epochs (best {summary['best_epoch']}), "
            f"{summary['seconds_per_epoch']:.1f} s/epoch"
        )
    files = write_report(
        run.results, args.out / name, title=f"{name} · leave-last:1 · neural", context=context
    )
    console.print(format_table(run.results, k=10))
    if training:
        table = Table("model", "epochs", "best epoch", "best val ndcg@10", "s/epoch", "train s")
        for model_name, s in training.items():
            best = s["best_val_ndcg@10"]
            table.add_row(
                model_name,
                str(s["epochs"]),
                str(s["best_epoch"]),
                "-" if best is None else f"{best:.4f}",
                f"{s['seconds_per_epoch']:.2f}",
                f"{s['train_seconds']:.1f}",
            )
        console.print(table)
    console.print(f"[dim]{run.context} → {files.get('markdown')}[/]")
    return {
        "context": context,
        "results": [r.to_dict() for r in run.results],
        "training": training,
        "search": {n: s.to_dict() for n, s in run.searches.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-latest-small,demo")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--mirror", default=os.environ.get("CINEREC_DATA_MIRROR"))
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/neural"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tune-budget", type=float, default=60.0, help="seconds per model")
    parser.add_argument(
        "--max-seconds", type=float, default=90.0, help="training cap per neural fit"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    console = Console(quiet=args.json, width=None if sys.stdout.isatty() else 160)
    known = set(model_names())
    models, notes = [], []
    for model_name in args.models.split(","):
        if model_name in known:
            models.append(model_name)
        else:
            notes.append(f"{model_name} is not registered: skipped")
            console.print(f"[yellow]{notes[-1]}[/]")
    started = time.perf_counter()
    document: dict[str, Any] = {"models": models, "notes": notes}
    for name in args.datasets.split(","):
        document[name] = run_dataset(name, models, args, console)
    document["seconds"] = time.perf_counter() - started
    if args.json:
        print_json(document)


if __name__ == "__main__":
    main()
