"""Single-request latency of SASRec's real-time path, ``SASRec.score_sequences``.

One request = one user's last ``max_len`` events scored against the whole catalog, as a
recommendation API would do on every click. After a warm-up, 1,000 requests are timed
one at a time with one torch thread (``time.perf_counter_ns``); p50/p99/mean are in ms.
Target: p99 <= 5 ms for ~10k items at d = 64.

By default the model is SASRec at its default size fitted for a few epochs on
ml-latest-small (``--epochs``); ``--random`` skips training and uses a randomly
initialised network of the same size over a synthetic 10k-item catalog (latency does not
depend on the weights). Request sequences are random tails of real users' histories
(or random items with ``--random``). ml-latest-small is read like every other command
reads it: from ``--mirror``, else ``$CINEREC_DATA_MIRROR``, else downloaded from GroupLens.

    python benchmarks/sequence_latency.py                 # ml-latest-small, 3 epochs
    python benchmarks/sequence_latency.py --random --json # one JSON document on stdout

Writes reports/benchmarks/sequence_latency.json (``--out``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cinerec.data.matrix import InteractionMatrix
from cinerec.models.sasrec import SASRec


def fitted_model(args: argparse.Namespace) -> tuple[SASRec, list[np.ndarray], dict[str, Any]]:
    """The model to time, the pool of request sequences and a description of both."""
    params: dict[str, Any] = {"epochs": args.epochs, "patience": args.epochs, "threads": 2}
    if args.random:
        rng = np.random.default_rng(0)
        n_items = args.items
        users = np.repeat(np.arange(200), 10)
        frame = pd.DataFrame(
            {
                "user_id": users.astype(str),
                "item_id": rng.integers(n_items, size=len(users)).astype(str),
                "event": "like",
                "value": 1.0,
                "timestamp": pd.Timestamp("2024-01-01", tz="UTC")
                + pd.to_timedelta(np.arange(len(users)), unit="s"),
            }
        )
        catalog = pd.DataFrame({"item_id": np.arange(n_items).astype(str)})
        data = InteractionMatrix.build(frame, items=catalog)
        model = SASRec(**{**params, "epochs": 1, "patience": 1, "lr": 0.0}).fit(data)
        pool = [rng.integers(n_items, size=int(rng.integers(1, 200))) for _ in range(500)]
        source = f"random init (lr=0), synthetic catalog of {n_items} items"
    else:
        from cinerec.data.loaders import load_dataset

        dataset = load_dataset("ml-latest-small", mirror=args.mirror)
        data = InteractionMatrix.build(dataset.interactions, items=dataset.items)
        t0 = time.perf_counter()
        model = SASRec(**params).fit(data)
        fit_s = time.perf_counter() - t0
        pool = [s for s in model.sequences or [] if len(s)]
        source = f"ml-latest-small, {args.epochs} epochs ({fit_s:.1f} s)"
    info = {
        "model": source,
        "n_items": data.n_items,
        "params": {k: model.params[k] for k in ("dim", "blocks", "heads", "max_len")},
    }
    return model, pool, info


def measure(model: SASRec, pool: list[np.ndarray], n: int, warmup: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    picks = rng.integers(len(pool), size=n + warmup)
    times = []
    for i, pick in enumerate(picks):
        seq = pool[pick]
        t0 = time.perf_counter_ns()
        model.score_sequences([seq])
        if i >= warmup:
            times.append((time.perf_counter_ns() - t0) / 1e6)
    ms = np.asarray(times)
    return {
        "requests": n,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", action="store_true", help="untrained model, 10k items")
    parser.add_argument("--items", type=int, default=10_000, help="catalog size with --random")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--mirror", default=None, help="default: $CINEREC_DATA_MIRROR")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    model, pool, info = fitted_model(args)
    torch.set_num_threads(1)
    result = {
        **info,
        "torch_threads": 1,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "latency": measure(model, pool, args.requests, args.warmup),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sequence_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        lat = result["latency"]
        print(f"{info['model']}: {info['n_items']} items, {info['params']}")
        print(
            f"score_sequences, 1 request, 1 thread: p50 {lat['p50_ms']:.2f} ms · "
            f"p99 {lat['p99_ms']:.2f} ms · mean {lat['mean_ms']:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
