"""Offline accuracy of cinerec's models on MovieLens latest-small.

Runs the same protocol as ``cinerec evaluate`` (split → tune on a validation carve of the
training part → fit → full-ranking evaluation) under a temporal leave-last-out split and a
random 75/25 split, prints one table per split with 95% bootstrap intervals over users, and
writes JSON, Markdown and PNG reports to ``reports/benchmarks/offline_accuracy/``.

    python benchmarks/offline_accuracy.py [--dataset ml-latest-small] [--models pop,ease] [--json]

The dataset comes from ``CINEREC_DATA_MIRROR`` when set, else from GroupLens.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from rich.console import Console

from cinerec.console import print_json
from cinerec.data.loaders import load_dataset
from cinerec.evaluation.coldstart import new_item_protocol, new_user_protocol
from cinerec.evaluation.protocol import DEFAULT_MODELS, run_protocol
from cinerec.evaluation.report import format_table, write_report

SPLITS = ("leave-last:1", "random:0.25")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--splits", default=",".join(SPLITS))
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/offline_accuracy"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start tables")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    console = Console(quiet=args.json, width=None if sys.stdout.isatty() else 160)

    started = time.perf_counter()
    dataset = load_dataset(args.dataset, progress=not args.json)
    load_seconds = time.perf_counter() - started
    console.print(f"{args.dataset}: {dataset.summary()} (loaded in {load_seconds:.1f}s)")

    document: dict[str, object] = {"dataset": args.dataset, "load_seconds": load_seconds}
    for spec in args.splits.split(","):
        run = run_protocol(
            dataset,
            spec,
            args.models.split(","),
            seed=args.seed,
            progress=not args.json,
        )
        folder = args.out / f"{args.dataset}-{spec.replace(':', '-')}"
        files = write_report(
            run.results, folder, title=f"{args.dataset} · {spec}", context=run.context
        )
        console.print(format_table(run.results, k=10))
        console.print(f"[dim]{run.context} → {files.get('markdown')}[/]")
        document[spec] = {
            "context": run.context,
            "results": [r.to_dict() for r in run.results],
            "search": {name: s.to_dict() for name, s in run.searches.items()},
        }
    if not args.no_cold_start:
        for run in (
            new_item_protocol(dataset, seed=args.seed),
            new_user_protocol(dataset, seed=args.seed),
        ):
            folder = args.out / f"{args.dataset}-cold-{run.protocol}"
            files = write_report(
                run.results,
                folder,
                title=f"{args.dataset} · cold start: {run.protocol}",
                context=run.context,
            )
            console.print(f"[bold]cold start: {run.protocol}[/]")
            console.print(format_table(run.results, k=10))
            console.print(f"[dim]{run.context} → {files.get('markdown')}[/]")
            document[f"cold-{run.protocol}"] = {
                "context": run.context,
                "results": [r.to_dict() for r in run.results],
            }
    document["seconds"] = time.perf_counter() - started
    if args.json:
        print_json(document)


if __name__ == "__main__":
    main()
