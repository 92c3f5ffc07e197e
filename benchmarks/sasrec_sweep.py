"""SASRec settings on ml-latest-small, leave-last:1, full ranking, against popularity.

Each configuration trains SASRec (early stopping on its own leave-last-1 carve) and
evaluates NDCG@10 / Recall@10 with 95% bootstrap intervals; popularity is evaluated on the
same split as the bar to clear. Prints one JSON line per configuration and writes
``reports/benchmarks/sasrec_sweep.json``.

    python benchmarks/sasrec_sweep.py [--configs '[{"dropout": 0.5, "max_len": 200}]']
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from cinerec.data.loaders import load_dataset
from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.evaluator import evaluate_model
from cinerec.evaluation.splits import make_split
from cinerec.models.popularity import MostPopular
from cinerec.models.sasrec import SASRec

CONFIGS = [
    {"dropout": 0.2, "max_len": 50, "patience": 3},
    {"dropout": 0.5, "max_len": 50, "patience": 8},
    {"dropout": 0.5, "max_len": 200, "patience": 8},
    {"dropout": 0.5, "max_len": 200, "patience": 6, "use_genres": True, "weight_decay": 0.1},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--configs", default=json.dumps(CONFIGS))
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/sasrec_sweep.json"))
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, progress=False)
    split = make_split("leave-last:1", dataset.interactions, seed=0)
    index = IdIndex.from_ids(dataset.items["item_id"])
    train = InteractionMatrix.build(split.train, items=dataset.items, item_index=index)
    rows = []
    pop = evaluate_model(MostPopular().fit(train), train, split.test, ks=(10,), progress=False)
    rows.append({"model": "pop", "ndcg@10": pop.metrics["ndcg@10"],
                 "ci": pop.intervals["ndcg@10"]})  # fmt: skip
    print(json.dumps(rows[-1]), flush=True)
    for config in json.loads(args.configs):
        started = time.perf_counter()
        model = SASRec(**{"epochs": 40, **config}).fit(train)
        result = evaluate_model(model, train, split.test, ks=(10,), progress=False)
        history = model.history_
        rows.append(
            {
                "model": "sasrec",
                "params": config,
                "ndcg@10": result.metrics["ndcg@10"],
                "recall@10": result.metrics["recall@10"],
                "ci": result.intervals["ndcg@10"],
                "best_epoch": history.best_epoch if history else None,
                "epochs": len(history.epochs) if history else None,
                "seconds_per_epoch": (
                    sum(e.seconds for e in history.epochs) / len(history.epochs)
                    if history and history.epochs
                    else None
                ),
                "seconds": time.perf_counter() - started,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
