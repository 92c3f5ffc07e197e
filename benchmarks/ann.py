"""Recall and latency of the faiss vector indexes (flat, HNSW, IVF) on synthetic items.

Items look like ALS item factors rather than isotropic noise: a mixture of Gaussian
taste clusters with Zipf-sized clusters and log-normal norms (popular items get longer
vectors, which is what makes inner-product search harder than cosine search). Queries
are 1,000 fresh draws from the same distribution, standing in for user factors. With
``--embeddings`` the vectors are instead 384-d and unit length, like sentence
embeddings, searched by cosine.

For every index kind and a few settings it measures recall@k against exact search,
single-query latency (one query at a time, one faiss thread, after a warm-up;
p50/p99 from ``time.perf_counter_ns``), batch throughput (all queries in one call, all
cores), build time and index size. Target: recall@100 >= 0.95 and p99 <= 5 ms at 1M.

    python benchmarks/ann.py                          # 30k and 1M items, d=64
    python benchmarks/ann.py --sizes 30000 --json     # one JSON document on stdout
    python benchmarks/ann.py --embeddings --sizes 30000,200000

Writes results.json (and recall_latency.png) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from cinerec.retrieval import VectorIndex, exact_top_k

#: (kind, build params, [search overrides]) — each build is timed once and then searched
#: with every override, so sweeping ef_search / nprobe costs no extra builds. An IVF
#: override ``nprobe_fraction`` is turned into ``nprobe`` from the built ``nlist``.
CONFIGS: list[tuple[str, dict[str, Any], list[dict[str, float]]]] = [
    ("flat", {}, [{}]),
    (
        "hnsw",
        {"M": 64, "ef_construction": 200, "mips": "native"},
        [{"ef_search": e} for e in (128, 256, 512)],
    ),
    (
        "hnsw",
        {"M": 32, "ef_construction": 80, "mips": "l2"},
        [{"ef_search": e} for e in (400, 800)],
    ),
    ("ivf", {}, [{"nprobe_fraction": f} for f in (0.04, 0.08, 0.16)]),
]


def make_vectors(
    rng: np.random.Generator, n: int, d: int, centers: np.ndarray, unit: bool
) -> np.ndarray:
    """n draws from the cluster mixture: Zipf cluster sizes, log-normal norms."""
    n_clusters = len(centers)
    weights = 1.0 / np.arange(1, n_clusters + 1) ** 0.8
    labels = rng.choice(n_clusters, size=n, p=weights / weights.sum())
    out = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        lab = labels[start : start + step]
        noise = rng.standard_normal((len(lab), d), dtype=np.float32) * (0.8 / np.sqrt(d))
        x = centers[lab] + noise
        if unit:
            x /= np.linalg.norm(x, axis=1, keepdims=True)
        else:
            x *= rng.lognormal(0.0, 0.4, size=(len(lab), 1)).astype(np.float32)
        out[start : start + len(lab)] = x
    return out


def rss_bytes() -> int:
    """Resident memory of this process (Linux), 0 where unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean |found ∩ truth| / |truth| over queries (ids -1 never count)."""
    hits = [
        np.intersect1d(f[f >= 0], t[t >= 0]).size / max(1, (t >= 0).sum())
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


def measure(
    index: VectorIndex,
    queries: np.ndarray,
    truth: np.ndarray,
    k: int,
    raw_override: dict[str, float],
    warmup: int,
) -> dict[str, Any]:
    """Single-query latency percentiles, recall of those answers, batch throughput."""
    override = {key: int(v) for key, v in raw_override.items() if key != "nprobe_fraction"}
    if "nprobe_fraction" in raw_override:
        fraction = raw_override["nprobe_fraction"]
        override["nprobe"] = max(1, round(fraction * index.params["nlist"]))
    for i in range(warmup):
        index.search(queries[i % len(queries)][None], k, threads=1, **override)
    found = np.empty((len(queries), k), dtype=np.int64)
    times = np.empty(len(queries), dtype=np.int64)
    for i in range(len(queries)):
        q = queries[i : i + 1]
        t0 = time.perf_counter_ns()
        ids, _ = index.search(q, k, threads=1, **override)
        times[i] = time.perf_counter_ns() - t0
        found[i] = ids[0]
    t0 = time.perf_counter()
    index.search(queries, k, **override)
    batch_s = time.perf_counter() - t0
    ms = times / 1e6
    return {
        "recall": recall(found, truth),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "batch_qps": len(queries) / batch_s,
        "override": override,
    }


def run_size(args: argparse.Namespace, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    d = 384 if args.embeddings else args.dim
    centers = rng.standard_normal((max(64, n // 2000), d), dtype=np.float32) / np.sqrt(d)
    items = make_vectors(rng, n, d, centers, args.embeddings)
    queries = make_vectors(rng, args.queries, d, centers, args.embeddings)
    t0 = time.perf_counter()
    truth, _ = exact_top_k(items, queries, args.k)
    log(f"n={n:,} d={d}: exact ground truth in {time.perf_counter() - t0:.1f}s")
    rows = []
    for kind, build_params, overrides in CONFIGS:
        if args.kinds and kind not in args.kinds:
            continue
        if kind == "hnsw" and n > args.hnsw_max_n:
            log(f"n={n:,}: skipping hnsw {build_params} (build too slow; see --hnsw-max-n)")
            continue
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        index = VectorIndex.build(items, kind=kind, seed=args.seed, **build_params)
        build_s = time.perf_counter() - t0
        rss_mb = (rss_bytes() - rss0) / 2**20
        size_mb = faiss.serialize_index(index.index).nbytes / 2**20
        for override in overrides:
            m = measure(index, queries, truth, args.k, override, args.warmup)
            shown = {key: v for key, v in index.params.items() if key not in ("max_norm",)}
            shown.update(m.pop("override"))
            row = {
                "n": n,
                "d": d,
                "kind": kind,
                "params": shown,
                "build_s": build_s,
                "index_mb": size_mb,
                "rss_delta_mb": rss_mb,
                **m,
                "meets_target": m["recall"] >= 0.95 and m["p99_ms"] <= 5.0,
            }
            rows.append(row)
            log(format_row(row))
        del index
    return rows


def label(row: dict[str, Any]) -> str:
    p = row["params"]
    if row["kind"] == "hnsw":
        return f"hnsw-{p['mips']} M={p['M']} efC={p['ef_construction']} ef={p['ef_search']}"
    if row["kind"] == "ivf":
        return f"ivf nlist={p['nlist']} nprobe={p['nprobe']}"
    return row["kind"]


def format_row(row: dict[str, Any]) -> str:
    return (
        f"{row['n']:>9,} {label(row):<38} {row['recall']:>7.4f} {row['p50_ms']:>8.3f} "
        f"{row['p99_ms']:>8.3f} {row['batch_qps']:>9.0f} {row['build_s']:>8.1f} "
        f"{row['index_mb']:>8.0f} {'yes' if row['meets_target'] else '':>4}"
    )


def header(k: int) -> str:
    return (
        f"{'items':>9} {'index':<38} {f'R@{k}':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'batch q/s':>9} {'build s':>8} {'MiB':>8} {'ok':>4}"
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def plot(rows: list[dict[str, Any]], path: Path, k: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["n"] for r in rows})
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
    for ax, n in zip(axes[0], sizes, strict=True):
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if r["n"] == n:
                key = r["kind"] + (f"-{r['params']['mips']}" if r["kind"] == "hnsw" else "")
                groups.setdefault(key, []).append(r)
        for key, group in groups.items():
            ax.plot([r["p99_ms"] for r in group], [r["recall"] for r in group], "o-", label=key)
        ax.axhline(0.95, color="grey", lw=0.8, ls="--")
        ax.axvline(5.0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("single-query p99 latency (ms, log)")
        ax.set_ylabel(f"recall@{k}")
        ax.set_title(f"{n:,} items, d={rows[0]['d']}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--sizes", default="30000,1000000", help="comma-separated item counts")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--embeddings", action="store_true", help="384-d unit vectors")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=None)
    parser.add_argument(
        "--hnsw-max-n",
        type=int,
        default=100_000,
        help="skip HNSW above this many items (a 1M-item graph takes 6+ min on 2 cores)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/ann"))
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    log(header(args.k))
    rows: list[dict[str, Any]] = []
    for n in (int(s) for s in args.sizes.split(",")):
        rows.extend(run_size(args, n, rng))
    summary = {
        "benchmark": "ann",
        "k": args.k,
        "queries": args.queries,
        "embeddings": args.embeddings,
        "target": {"recall": 0.95, "p99_ms": 5.0, "n": 1_000_000},
        "hnsw_max_n": args.hnsw_max_n,
        "cpus": os.cpu_count(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "results": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "results_embeddings" if args.embeddings else "results"
    (args.out / f"{name}.json").write_text(json.dumps(summary, indent=2))
    if not args.no_plot:
        plot(rows, args.out / f"{name.replace('results', 'recall_latency')}.png", args.k)
    if args.json:
        print(json.dumps(summary))
    else:
        print(header(args.k))
        for row in rows:
            print(format_row(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
