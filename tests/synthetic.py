"""Small synthetic datasets with learnable structure, shared by tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cinerec.data.dataset import Dataset


def clustered_dataset(
    n_users: int = 60, n_items: int = 40, n_clusters: int = 4, per_user: int = 12, seed: int = 0
) -> Dataset:
    """Users belong to a taste cluster and mostly rate items of that cluster, over time.

    Items ``i`` with ``i % n_clusters == c`` form cluster ``c``; 5 extra catalog items
    (``cold0`` ..) have no interactions at all.
    """
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for user in range(n_users):
        cluster = user % n_clusters
        own = [i for i in range(n_items) if i % n_clusters == cluster]
        other = [i for i in range(n_items) if i % n_clusters != cluster]
        n_own = min(len(own), per_user - 2)
        picked = list(rng.choice(own, size=n_own, replace=False))
        picked += list(rng.choice(other, size=2, replace=False))
        rng.shuffle(picked)
        for step, item in enumerate(picked):
            rows.append(
                (
                    f"u{user}",
                    f"i{item}",
                    "rating",
                    float(rng.integers(1, 6)),
                    start + pd.Timedelta(hours=user * 100 + step),
                )
            )
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "event", "value", "timestamp"])
    item_ids = [f"i{i}" for i in range(n_items)] + [f"cold{i}" for i in range(5)]
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": [f"Title {i}" for i in item_ids],
            "type": ["movie"] * len(item_ids),
            "genres": [[f"g{idx % n_clusters}"] for idx in range(len(item_ids))],
        }
    )
    return Dataset("synthetic", items, interactions)
