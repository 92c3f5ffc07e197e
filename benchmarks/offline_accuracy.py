"""Offline accuracy of cinerec: single models, the hybrid pipeline and its ablation.

For each dataset and split, the base models are tuned on a validation carve of the
training part and fitted (the ``cinerec evaluate`` protocol), then the hybrid pipeline is
evaluated stage by stage — recall only, + ranker, + re-ranking (the default hybrid) —
and with each recall source removed in turn (:mod:`cinerec.training.ablation`).
Every row is a full-ranking evaluation with 95% bootstrap intervals over users; the
candidate recall column is the share of held-out items recall put among the candidates
(the ceiling for ranking); the hybrid's NDCG@10 gain over the best single model comes
with a paired bootstrap interval. Cold-start tables (new items, new users) follow.
Reports (JSON, Markdown, PNG) go to ``reports/benchmarks/offline_accuracy/``; afterwards
``python benchmarks/render_docs.py`` rewrites the tables in docs/benchmarks.md from them.

    python benchmarks/offline_accuracy.py [--datasets ml-latest-small,demo]
        [--splits leave-last:1,leave-last:10,random:0.25] [--no-sources] [--no-cold-start] [--json]

ml-latest-small runs every split; the demo dataset (same users, the streaming catalogs
added) runs the first. Data come from ``CINEREC_DATA_MIRROR`` when set, else GroupLens.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from doc_tables import ablation_rows, gain_sentence
from rich.console import Console
from rich.table import Table

from cinerec.console import print_json
from cinerec.data.loaders import load_dataset
from cinerec.evaluation.report import format_table, write_report
from cinerec.training.ablation import DEFAULT_BASE, AblationRun, run_ablation
from cinerec.training.coldstart import new_item_protocol, new_user_protocol

SPLITS = ("leave-last:1", "leave-last:10", "random:0.25")


def ablation_table(run: AblationRun) -> Table:
    """Variant rows with the headline metrics, their intervals and candidate recall (the
    cells of the docs' tables: :func:`doc_tables.ablation_rows`)."""
    table = Table(title=f"{run.dataset} · {run.split}")
    header, rows = ablation_rows(run.results, run.candidate_recall)
    for position, column in enumerate(header):
        table.add_column(column, justify="right" if 0 < position < len(header) - 1 else "left")
    for row in rows:
        table.add_row(*row)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-latest-small,demo")
    parser.add_argument("--models", default=",".join(DEFAULT_BASE), help="base models")
    parser.add_argument("--splits", default=",".join(SPLITS))
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/offline_accuracy"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tune-budget", type=float, default=None, help="seconds per model")
    parser.add_argument("--no-sources", action="store_true", help="skip the per-source rows")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start tables")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    console = Console(quiet=args.json, width=None if sys.stdout.isatty() else 180)
    started = time.perf_counter()
    document: dict[str, object] = {}
    for position, name in enumerate(args.datasets.split(",")):
        dataset = load_dataset(name, progress=not args.json)
        console.print(f"{name}: {dataset.summary()}")
        splits = args.splits.split(",") if position == 0 else args.splits.split(",")[:1]
        for spec in splits:
            run = run_ablation(
                dataset,
                spec,
                tuple(args.models.split(",")),
                sources=not args.no_sources,
                ks=(5, 10, 20),
                seed=args.seed,
                tune_time_budget_s=args.tune_budget,
                progress=not args.json,
            )
            context = {
                **run.context,
                "candidate_recall": run.candidate_recall,
                "hybrid_gain": run.gain,
            }
            folder = args.out / f"{name}-{spec.replace(':', '-')}"
            files = write_report(run.results, folder, title=f"{name} · {spec}", context=context)
            console.print(ablation_table(run))
            console.print(
                f"{gain_sentence(run.gain, run.context['seconds'])} → {files.get('markdown')}"
            )
            document[f"{name}/{spec}"] = {
                "context": context,
                "results": [r.to_dict() for r in run.results],
            }
        if position == 0 and not args.no_cold_start:
            for cold in (
                new_item_protocol(dataset, seed=args.seed),
                new_user_protocol(dataset, seed=args.seed),
            ):
                folder = args.out / f"{name}-cold-{cold.protocol}"
                files = write_report(
                    cold.results,
                    folder,
                    title=f"{name} · cold start: {cold.protocol}",
                    context=cold.context,
                )
                console.print(f"[bold]cold start: {cold.protocol}[/]")
                console.print(format_table(cold.results, k=10))
                document[f"{name}/cold-{cold.protocol}"] = {
                    "context": cold.context,
                    "results": [r.to_dict() for r in cold.results],
                }
    document["seconds"] = time.perf_counter() - started
    if args.json:
        print_json(document)


if __name__ == "__main__":
    main()
