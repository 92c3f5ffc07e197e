""" "More like this" over a set of fitted models: one function for the CLI, the API and batch.

Every model that relates items (``Model.relates_items``) answers
:meth:`~cinerec.models.base.Model.similar_items`; this module picks which one answers
(the one asked for, else the first of :data:`PREFERENCE` present) and turns item ids into
a tidy frame. Content comes first because it relates every title, watched or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cinerec.data.matrix import IdIndex
from cinerec.errors import ModelError
from cinerec.models.base import Model

#: Which model answers "more like this" when none is named: content relates cold titles
#: too; the collaborative ones only titles with interactions.
PREFERENCE = ("content", "itemknn", "ease", "als", "bpr")
COLUMNS = ["item_id", "similar_id", "score", "rank"]


def similarity_model(models: Mapping[str, Model], name: str | None = None) -> Model:
    """The model that answers: ``name`` (which must relate items), else the preferred one."""
    if name is not None:
        if name not in models:
            raise ModelError(f"no model '{name}' (has: {', '.join(models)})")
        if not models[name].relates_items:
            raise ModelError(f"model '{name}' cannot find similar items")
        return models[name]
    for candidate in (*PREFERENCE, *models):
        if candidate in models and models[candidate].relates_items:
            return models[candidate]
    raise ModelError("no model relates items (content, itemknn, ease, als)")


def similar_items(
    models: Mapping[str, Model],
    items: IdIndex,
    item_ids: Sequence[str],
    k: int = 10,
    model: str | None = None,
) -> pd.DataFrame:
    """Per given item its ``k`` most related titles: item_id, similar_id, score, rank.

    Unknown ids raise a :class:`~cinerec.errors.ModelError` naming them (first five).
    """
    idx = items.lookup(np.asarray(list(item_ids), dtype=object))
    if (idx < 0).any():
        unknown = [i for i, j in zip(item_ids, idx, strict=True) if j < 0]
        raise ModelError(f"unknown item id(s): {', '.join(map(str, unknown[:5]))}")
    top, scores = similarity_model(models, model).similar_items(idx, k)
    valid = top >= 0
    given = np.repeat(np.asarray(list(item_ids), dtype=object), top.shape[1])
    return pd.DataFrame(
        {
            "item_id": given.reshape(top.shape)[valid],
            "similar_id": items.ids[top[valid]],
            "score": scores[valid].astype(np.float64),
            "rank": np.broadcast_to(np.arange(1, top.shape[1] + 1), top.shape)[valid],
        },
        columns=COLUMNS,
    )
