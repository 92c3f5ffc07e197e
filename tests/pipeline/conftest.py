"""A small catalog with every attribute the pipeline filters on, and a fitted Recommender."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from cinerec.data.dataset import Dataset
from cinerec.data.matrix import InteractionMatrix
from cinerec.models.base import Model, get_model_class
from cinerec.pipeline.config import PipelineConfig, default_config
from cinerec.pipeline.offline import build_recommender
from cinerec.pipeline.recommender import Recommender
from tests.synthetic import clustered_dataset

MODELS = {
    "pop": {},
    "trending": {},
    "itemknn": {},
    "ease": {},
    "als": {"factors": 8, "iterations": 5},
    "content": {"embed_weight": 0.0, "svd_dims": 8, "min_df": 1},
}
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


def rich_dataset(seed: int = 0) -> Dataset:
    """``clustered_dataset`` with types, ages, languages, years, countries and synopses."""
    base = clustered_dataset(n_users=60, n_items=40, seed=seed)
    items = base.items.copy()
    n = len(items)
    cluster_words = [
        "space ship galaxy",
        "love romance wedding",
        "murder detective crime",
        "dragon magic quest",
    ]
    items["type"] = ["series" if i % 3 == 0 else "movie" for i in range(n)]
    items["min_age"] = [[0, 7, 13, 16, 18, None][i % 6] for i in range(n)]
    items["language"] = [["en", "tr", "fr"][i % 3] for i in range(n)]
    items["year"] = [2000 + (i * 7) % 25 for i in range(n)]
    items["country"] = [[["Turkey"], ["India"], ["United States"]][i % 3] for i in range(n)]
    items["seasons"] = [(i % 5) + 1 if i % 3 == 0 else None for i in range(n)]
    items["synopsis"] = [f"{cluster_words[i % 4]} story number {i}" for i in range(n)]
    return Dataset(base.name, items, base.interactions)


def fitted_models(matrix: InteractionMatrix) -> dict[str, Model]:
    return {name: get_model_class(name)(**params).fit(matrix) for name, params in MODELS.items()}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return rich_dataset()


@pytest.fixture(scope="module")
def matrix(dataset: Dataset) -> InteractionMatrix:
    return InteractionMatrix.build(dataset.interactions, items=dataset.items)


@pytest.fixture(scope="module")
def models(matrix: InteractionMatrix) -> dict[str, Model]:
    return fitted_models(matrix)


def make_recommender(
    models: dict[str, Model], matrix: InteractionMatrix, config: PipelineConfig | None = None
) -> Recommender:
    return build_recommender(
        models, matrix, config or default_config(list(models)), default_model="ease"
    )


@pytest.fixture()
def recommender(models: dict[str, Model], matrix: InteractionMatrix) -> Recommender:
    return make_recommender(models, matrix)


def user_ids(matrix: InteractionMatrix, n: int = 12) -> list[str]:
    return [str(u) for u in np.asarray(matrix.users.ids)[:n]]


__all__ = ["NOW", "fitted_models", "make_recommender", "pd", "rich_dataset", "user_ids"]
