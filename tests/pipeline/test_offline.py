"""The pipeline offline: evaluated through the model interface like any model."""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.data.dataset import Dataset
from cinerec.data.matrix import InteractionMatrix
from cinerec.evaluation.evaluator import evaluate_model
from cinerec.evaluation.splits import make_split
from cinerec.models.base import Model
from cinerec.pipeline.config import default_config
from cinerec.pipeline.offline import PipelineModel, build_recommender
from tests.pipeline.conftest import fitted_models

BASE_MODELS = ("pop", "itemknn", "ease", "als")


@pytest.fixture(scope="module")
def carve(dataset: Dataset) -> tuple[InteractionMatrix, dict[str, Model]]:
    split = make_split("leave-last:3", dataset.interactions)
    train = InteractionMatrix.build(split.train, items=dataset.items)
    return train, fitted_models(train)


def test_pipeline_model_is_evaluated_like_any_model(carve, dataset: Dataset) -> None:
    split = make_split("leave-last:3", dataset.interactions)
    train, models = carve
    recommender = build_recommender(models, train, default_config(list(models)))
    result = evaluate_model(
        PipelineModel(recommender), train, split.test, ks=(10,), progress=False, n_boot=50
    )  # type: ignore[arg-type]
    assert result.n_users > 0 and 0 < result.metrics["ndcg@10"] <= 1
    with pytest.raises(NotImplementedError):
        PipelineModel(recommender).recommend(np.array([0]), 5, exclude_seen=False)
