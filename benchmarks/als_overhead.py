"""What does the cinerec wrapper cost on top of ``implicit``? ALS and BPR on MovieLens-small.

For each model the same fit runs two ways, alternating, ``--repeats`` times each:

* direct: the confidence transform (ALS: ``1 + alpha · m``; BPR: the matrix as is) and
  ``implicit``'s CPU model fitted on it, with the same parameters and seed;
* wrapper: ``ALS(...).fit(matrix)`` / ``BPR(...).fit(matrix)`` — which adds the base
  class's copy of the seen matrix, the BLAS thread limit and the factor bookkeeping.

It prints the median seconds of each and their ratio (target: wrapper ≤ 1.10 × direct),
and checks that both produce identical factors. Alternating the two keeps slow drifts
of a shared machine from favouring one side.

    python benchmarks/als_overhead.py                # summary
    python benchmarks/als_overhead.py --json         # one JSON document
    python benchmarks/als_overhead.py --out reports/benchmarks/als_overhead.json

The dataset comes from ``--mirror`` or ``$CINEREC_DATA_MIRROR`` (a folder holding
``ml-latest-small/``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit wants single-threaded BLAS

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking

from cinerec.data.loaders import load_dataset
from cinerec.data.matrix import InteractionMatrix
from cinerec.models.als import ALS, BPR

Factors = tuple[np.ndarray, np.ndarray]


def direct_als(matrix: sp.csr_matrix, params: dict[str, Any]) -> Factors:
    C = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    C.data = np.float32(1.0) + np.float32(params["alpha"]) * C.data
    model = AlternatingLeastSquares(
        factors=params["factors"],
        regularization=params["regularization"],
        alpha=1.0,
        dtype=np.float32,
        iterations=params["iterations"],
        num_threads=params["num_threads"],
        random_state=params["seed"],
    )
    model.fit(C, show_progress=False)
    return model.user_factors, model.item_factors


def direct_bpr(matrix: sp.csr_matrix, params: dict[str, Any]) -> Factors:
    model = BayesianPersonalizedRanking(
        factors=params["factors"],
        learning_rate=params["learning_rate"],
        regularization=params["regularization"],
        dtype=np.float32,
        iterations=params["iterations"],
        num_threads=params["num_threads"],
        random_state=params["seed"],
    )
    model.fit(matrix, show_progress=False)
    return model.user_factors, model.item_factors


def compare(
    name: str,
    direct: Callable[[], Factors],
    wrapped: Callable[[], Factors],
    repeats: int,
    warm: np.ndarray,
) -> dict[str, Any]:
    """Alternate the two fits ``repeats`` times each; medians, ratio, factor equality.

    Factors are compared on the ``warm`` items (with training interactions): BPR's wrapper
    replaces the random factors ``implicit`` leaves on the others.
    """
    times: dict[str, list[float]] = {"direct": [], "wrapper": []}
    results: dict[str, Factors] = {}
    direct()  # warm-up: imports, page faults, BLAS initialisation
    for rep in range(repeats):
        order = [("direct", direct), ("wrapper", wrapped)]
        if rep % 2:
            order.reverse()
        for label, fit in order:
            started = time.perf_counter()
            results[label] = fit()
            times[label].append(time.perf_counter() - started)
    medians = {label: statistics.median(values) for label, values in times.items()}
    (du, di), (wu, wi) = results["direct"], results["wrapper"]
    return {
        "model": name,
        "repeats": repeats,
        "direct_median_s": round(medians["direct"], 4),
        "wrapper_median_s": round(medians["wrapper"], 4),
        "ratio": round(medians["wrapper"] / medians["direct"], 4),
        "direct_s": [round(t, 4) for t in times["direct"]],
        "wrapper_s": [round(t, 4) for t in times["wrapper"]],
        "identical_factors": bool(
            np.array_equal(du, wu) and np.array_equal(np.asarray(di)[warm], wi[warm])
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--mirror", default=None, help="dataset mirror folder")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)

    dataset = load_dataset("ml-latest-small", mirror=args.mirror, progress=False)
    data = InteractionMatrix.build(dataset.interactions, items=dataset.items)
    matrix = data.matrix.tocsr()
    als, bpr = ALS(), BPR()
    warm = np.flatnonzero(matrix.getnnz(axis=0) > 0)

    def wrapped(model: ALS | BPR) -> Callable[[], Factors]:
        def fit() -> Factors:
            model.fit(data)
            assert model.user_factors is not None and model.item_factors is not None
            return model.user_factors, model.item_factors

        return fit

    runs = [
        compare("als", lambda: direct_als(matrix, als.params), wrapped(als), args.repeats, warm),
        compare("bpr", lambda: direct_bpr(matrix, bpr.params), wrapped(bpr), args.repeats, warm),
    ]
    for run, model in zip(runs, (als, bpr), strict=True):
        run["params"] = model.params
    report = {
        "benchmark": "als_overhead",
        "dataset": {
            "name": "ml-latest-small",
            "users": data.n_users,
            "items": data.n_items,
            "interactions": int(matrix.nnz),
        },
        "target_ratio": 1.10,
        "runs": runs,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        },
    }
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        for run in runs:
            print(
                f"{run['model']}: direct {run['direct_median_s']:.3f}s, wrapper "
                f"{run['wrapper_median_s']:.3f}s (median of {run['repeats']}), ratio "
                f"{run['ratio']:.3f}, identical factors: {run['identical_factors']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
