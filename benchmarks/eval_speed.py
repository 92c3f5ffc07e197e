"""How fast is full-ranking evaluation? 100,000 users x 10,000 items by default.

A synthetic problem with structure (so the metrics are not all zero): users and items
belong to one of ``--factors`` taste clusters; each user has ~50 training items and ~5
test items, 80% from the own cluster. The model is a low-rank dot product (noisy cluster
embeddings, ``--factors`` dimensions) — a stand-in for any matrix-factorisation model.
``evaluate_model`` then runs end to end: test encoding, ranking of the whole catalog for
every user with seen items excluded, all metrics at K = 5, 10, 20 and their bootstrap
intervals.

    python benchmarks/eval_speed.py            # prints a summary
    python benchmarks/eval_speed.py --json     # one JSON object

Writes reports/benchmarks/eval_speed.json (``--out``), which docs/benchmarks.md renders.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.evaluator import evaluate_model
from cinerec.models.base import Model


class LowRank(Model):
    """Scores as a dot product of fixed user and item factors (benchmark only)."""

    name: ClassVar[str] = "lowrank-bench"

    def __init__(self, user_factors: np.ndarray, item_factors: np.ndarray) -> None:
        super().__init__()
        self.user_factors = user_factors.astype(np.float32)
        self.item_factors = item_factors.astype(np.float32)

    def _fit(self, data: InteractionMatrix) -> None:
        self.recommend_seconds = 0.0

    def recommend(self, *args, **kwargs) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        """The base recommend, timed, to tell model time from harness time."""
        started = time.perf_counter()
        try:
            return super().recommend(*args, **kwargs)
        finally:
            self.recommend_seconds += time.perf_counter() - started

    def score(
        self,
        user_idx: np.ndarray,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        item_factors = self.item_factors if items is None else self.item_factors[items]
        return self.user_factors[user_idx] @ item_factors.T

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors = arrays["user_factors"]
        self.item_factors = arrays["item_factors"]


def _draw_items(
    rng: np.random.Generator, cluster: np.ndarray, per_user: int, n_items: int, n_clusters: int
) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) pairs: per_user draws each, 80% from the user's cluster."""
    n_users = len(cluster)
    users = np.repeat(np.arange(n_users), per_user)
    own = rng.random(len(users)) < 0.8
    size = n_items // n_clusters
    in_cluster = cluster[users] * size + rng.integers(0, size, len(users))
    anywhere = rng.integers(0, n_items, len(users))
    return users, np.where(own, in_cluster, anywhere)


def build_problem(
    n_users: int, n_items: int, factors: int, train_per_user: int, test_per_user: int, seed: int
) -> tuple[InteractionMatrix, pd.DataFrame, LowRank, float]:
    """The training matrix, the test frame, the fitted model and the seconds it took."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, factors, n_users)
    item_cluster = np.minimum(np.arange(n_items) // (n_items // factors), factors - 1)
    rows, cols = _draw_items(rng, cluster, train_per_user, n_items, factors)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    matrix.data[:] = 1.0  # duplicates were summed
    users = IdIndex(np.array([f"u{u}" for u in range(n_users)], dtype=object))
    items = IdIndex(np.array([f"i{i}" for i in range(n_items)], dtype=object))
    events = pd.DataFrame(
        {"user_idx": rows, "item_idx": cols, "confidence": 1.0, "value": 1.0, "timestamp": 0}
    )
    train = InteractionMatrix(users=users, items=items, matrix=matrix, events=events)

    t_users, t_items = _draw_items(rng, cluster, test_per_user, n_items, factors)
    test = pd.DataFrame(
        {
            "user_id": users.ids[t_users],
            "item_id": items.ids[t_items],
            "event": "watch",
            "value": np.float32(1.0),
            "watch_seconds": np.nan,
            "timestamp": pd.Timestamp("2024-06-01", tz="UTC"),
            "session_id": None,
        }
    )
    eye = np.eye(factors, dtype=np.float32)
    user_factors = eye[cluster] + 0.3 * rng.standard_normal((n_users, factors))
    item_factors = eye[item_cluster] + 0.3 * rng.standard_normal((n_items, factors))
    model = LowRank(user_factors, item_factors).fit(train)
    return train, test, model, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--train-per-user", type=int, default=50)
    parser.add_argument("--test-per-user", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--progress", action="store_true", help="show the progress bar")
    parser.add_argument(
        "--out", type=Path, default=Path("reports/benchmarks/eval_speed.json"), help="JSON file"
    )
    args = parser.parse_args(argv)

    train, test, model, build_seconds = build_problem(
        args.users, args.items, args.factors, args.train_per_user, args.test_per_user, args.seed
    )
    started = time.perf_counter()
    result = evaluate_model(
        model, train, test, ks=(5, 10, 20), chunk_size=args.chunk_size, progress=args.progress
    )
    seconds = time.perf_counter() - started
    summary = {
        "users": args.users,
        "items": args.items,
        "factors": args.factors,
        "train_nnz": int(train.matrix.nnz),
        "test_rows": len(test),
        "evaluated_users": result.n_users,
        "chunk_size": args.chunk_size,
        "build_seconds": round(build_seconds, 2),
        "eval_seconds": round(seconds, 2),
        "users_per_second": round(result.n_users / seconds, 1),
        "recommend_seconds": round(model.recommend_seconds, 2),
        "harness_seconds": round(seconds - model.recommend_seconds, 2),
        "ndcg@10": round(result.metrics["ndcg@10"], 4),
        "recall@20": round(result.metrics["recall@20"], 4),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"evaluate_model: {result.n_users:,} users x {args.items:,} items, "
            f"K = 5/10/20 with 95% bootstrap intervals"
        )
        print(f"  total {seconds:.1f} s  ->  {summary['users_per_second']:,.0f} users/s")
        print(
            f"  of which model.recommend {model.recommend_seconds:.1f} s, "
            f"harness (encoding, metrics, bootstrap) {seconds - model.recommend_seconds:.1f} s"
        )
        print(f"  (problem built in {build_seconds:.1f} s; {os.cpu_count()} CPUs)")
        print(f"  ndcg@10 {summary['ndcg@10']:.4f}, recall@20 {summary['recall@20']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
