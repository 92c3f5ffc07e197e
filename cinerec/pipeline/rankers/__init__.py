"""Learned rankers for the candidates of one request: LightGBM, neural and fusion.

All three share :class:`Ranker` (fit / predict / save / load) and are compared on
validation NDCG@10 (:func:`ndcg_at_k`); the training code keeps the best. The ranker
classes are imported lazily, so using the fusion ranker does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cinerec.pipeline.rankers.base import (
    QueryMetric,
    Ranker,
    RankingData,
    load_ranker,
    make_ranker,
    ndcg_at_k,
    ranker_class,
    ranker_kinds,
)

if TYPE_CHECKING:
    from cinerec.pipeline.rankers.fusion import FusionRanker
    from cinerec.pipeline.rankers.gbdt import LightGBMRanker
    from cinerec.pipeline.rankers.neural import NeuralRanker

_LAZY = {
    "LightGBMRanker": "cinerec.pipeline.rankers.gbdt",
    "NeuralRanker": "cinerec.pipeline.rankers.neural",
    "FusionRanker": "cinerec.pipeline.rankers.fusion",
}

__all__ = [
    "FusionRanker",
    "LightGBMRanker",
    "NeuralRanker",
    "QueryMetric",
    "Ranker",
    "RankingData",
    "load_ranker",
    "make_ranker",
    "ndcg_at_k",
    "ranker_class",
    "ranker_kinds",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
