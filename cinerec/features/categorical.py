"""Categorical item features: multi-hot encodings of list or scalar columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.matrix import IdIndex


def multi_hot(
    items: pd.DataFrame, column: str, item_index: IdIndex
) -> tuple[sp.csr_matrix, list[str]]:
    """A binary (n_items, n_values) CSR of ``column`` in ``item_index`` order, and its vocabulary.

    ``column`` may hold lists (genres, country) or scalars (type, language); missing
    values give an all-zero row. Items of ``item_index`` absent from ``items`` are zero rows.
    A catalog without ``column`` at all (ids alone) is all missing: zero columns, no error.
    """
    rows = item_index.lookup(items["item_id"])
    present = rows >= 0
    if column in items.columns:
        values = items[column][present]
    else:
        values = pd.Series([None] * int(present.sum()), dtype=object)
    row_ids = rows[present]
    exploded = pd.DataFrame({"row": row_ids, "value": values.to_numpy(dtype=object)})
    exploded = exploded.explode("value").dropna(subset=["value"])
    exploded["value"] = exploded["value"].astype(str)
    exploded = exploded[exploded["value"] != ""]
    vocabulary = sorted(exploded["value"].unique())
    codes = pd.Index(vocabulary).get_indexer(exploded["value"])
    matrix = sp.csr_matrix(
        (np.ones(len(exploded), dtype=np.float32), (exploded["row"].to_numpy(), codes)),
        shape=(len(item_index), len(vocabulary)),
    )
    matrix.data[:] = 1.0  # duplicates summed by the constructor become 1 again
    return matrix, vocabulary
