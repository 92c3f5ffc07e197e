""""More like this" over a model set: which model answers, ids in and out, clear errors."""

from __future__ import annotations

import pytest

from cinerec.errors import ModelError
from cinerec.models.base import get_model_class
from cinerec.models.similar import similar_items, similarity_model
from tests.models.contract import synthetic_matrix


@pytest.fixture(scope="module")
def fitted() -> dict:
    data = synthetic_matrix()
    models = {name: get_model_class(name)().fit(data) for name in ("pop", "itemknn", "als")}
    return {"data": data, "models": models}


def test_preferred_model_answers_unless_one_is_named(fitted: dict) -> None:
    models = fitted["models"]
    assert similarity_model(models).name == "itemknn"  # content absent: kNN before ALS
    assert similarity_model(models, "als").name == "als"
    with pytest.raises(ModelError, match="cannot find similar items"):
        similarity_model(models, "pop")
    with pytest.raises(ModelError, match="no model 'content'"):
        similarity_model(models, "content")
    with pytest.raises(ModelError, match="no model relates items"):
        similarity_model({"pop": models["pop"]})


def test_frame_lists_each_items_neighbours_by_id(fitted: dict) -> None:
    frame = similar_items(fitted["models"], fitted["data"].items, ["i0", "i21"], k=4)
    assert list(frame.columns) == ["item_id", "similar_id", "score", "rank"]
    for item, group in frame.groupby("item_id"):
        assert item not in set(group["similar_id"])
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert group["score"].is_monotonic_decreasing
    assert set(frame["item_id"]) == {"i0", "i21"}


def test_unknown_ids_are_named(fitted: dict) -> None:
    with pytest.raises(ModelError, match=r"unknown item id.*nope"):
        similar_items(fitted["models"], fitted["data"].items, ["i0", "nope"], k=3)
