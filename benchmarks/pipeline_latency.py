"""Per-request latency of the whole hybrid pipeline, one user at a time.

Loads a bundle (or trains one on ``--dataset`` first), raises every recall quota so each
request carries about ``--candidates`` candidates (default 1000, the issue's figure), and
times :meth:`Recommender.recommend` for ``--requests`` requests on one thread: known users
with their stored history, known users with a click made seconds ago (the request-time
path: ALS fold-in, new sequence), and new visitors. Prints p50 / p95 / p99 per stage and
in total, the mean candidate count, and writes JSON to
``reports/benchmarks/pipeline_latency.json``.

    python benchmarks/pipeline_latency.py --bundle bundles/demo [--requests 1000]
    python benchmarks/pipeline_latency.py --dataset ml-latest-small   # trains first
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from cinerec.models.bundle import load_bundle
from cinerec.pipeline.config import PipelineConfig
from cinerec.pipeline.persist import load_recommender
from cinerec.pipeline.recommender import Request
from cinerec.pipeline.types import Context

OUT = Path("reports/benchmarks/pipeline_latency.json")
STAGES = ("recall", "features", "rank", "rerank", "explain", "total")


def widened(config: PipelineConfig, candidates: int) -> PipelineConfig:
    """``config`` with quotas raised so the union reaches about ``candidates`` items."""
    data = config.model_dump()
    for source in data["recall"]["sources"]:
        if source["kind"] not in ("editor",):
            source["quota"] = max(source["quota"], candidates // 2)
    data["recall"]["max_candidates"] = candidates
    return PipelineConfig.model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--dataset", default="ml-latest-small", help="trained when no --bundle")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 160)
    torch.set_num_threads(1)

    bundle = args.bundle
    if bundle is None:
        from cinerec.data.loaders import load_dataset
        from cinerec.training.train import train_bundle

        bundle = Path("bundles") / f"latency-{args.dataset}"
        if not (bundle / "manifest.json").exists():
            train_bundle(load_dataset(args.dataset), bundle)
    started = time.perf_counter()
    loaded = load_bundle(bundle)
    stored = load_recommender(loaded).config
    recommender = load_recommender(loaded, config=widened(stored, args.candidates))
    console.print(
        f"bundle {bundle}: {len(recommender.users)} users × {len(recommender.items)} items, "
        f"ranker {recommender.ranker.kind if recommender.ranker else 'none'}, "
        f"loaded in {time.perf_counter() - started:.1f}s"
    )
    rng = np.random.default_rng(args.seed)
    users = recommender.users.ids
    items = recommender.items.ids
    requests = []
    for i in range(args.requests):
        kind = ("stored", "click", "new")[i % 3] if i % 10 else "new"
        user = str(users[rng.integers(len(users))])
        if kind == "stored":
            requests.append((kind, Request(user_id=user, k=args.k)))
        elif kind == "click":
            click = str(items[rng.integers(len(items))])
            requests.append((kind, Request(user_id=user, k=args.k, recent_items=(click,))))
        else:
            click = str(items[rng.integers(len(items))])
            context = Context(device="tv", country="India")
            request = Request(user_id=None, k=args.k, recent_items=(click,), context=context)
            requests.append((kind, request))
    for _, request in requests[:20]:  # warm-up: Faiss indexes, caches
        recommender.recommend(request)
    timings: dict[str, dict[str, list[float]]] = {}
    candidates: list[int] = []
    for kind, request in requests:
        result = recommender.recommend(request)
        candidates.append(result.n_candidates)
        for stage, ms in result.timings_ms.items():
            timings.setdefault(kind, {}).setdefault(stage, []).append(ms)
            timings.setdefault("all", {}).setdefault(stage, []).append(ms)
    table = Table(title=f"pipeline latency, ms (k={args.k}, one thread)")
    table.add_column("requests")
    table.add_column("n", justify="right")
    for stage in STAGES:
        table.add_column(f"{stage} p50", justify="right")
    table.add_column("total p95", justify="right")
    table.add_column("total p99", justify="right")
    summary: dict[str, dict[str, float]] = {}
    for kind, stages in timings.items():
        row = {f"{s}_p50": float(np.percentile(stages[s], 50)) for s in STAGES}
        row |= {
            "total_p95": float(np.percentile(stages["total"], 95)),
            "total_p99": float(np.percentile(stages["total"], 99)),
            "n": len(stages["total"]),
        }
        summary[kind] = row
        table.add_row(
            kind,
            str(row["n"]),
            *(f"{row[f'{s}_p50']:.2f}" for s in STAGES),
            f"{row['total_p95']:.2f}",
            f"{row['total_p99']:.2f}",
        )
    console.print(table)
    console.print(f"mean candidates per request: {np.mean(candidates):.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "bundle": str(bundle),
        "n_items": len(items),
        "ranker": recommender.ranker.kind if recommender.ranker else None,
        "mean_candidates": float(np.mean(candidates)),
        "latency_ms": summary,
        "load_average": os.getloadavg(),
    }
    args.out.write_text(json.dumps(document, indent=2))
    console.print(f"→ {args.out}")


if __name__ == "__main__":
    main()
