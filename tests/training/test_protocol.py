"""The offline protocol on the smallest data an operator may bring: interactions alone."""

from __future__ import annotations

import pandas as pd
import pytest

from cinerec.data.dataset import Dataset
from cinerec.data.schemas import with_all_columns
from cinerec.evaluation.evaluator import NO_GENRES
from cinerec.training.protocol import default_models_for, run_protocol
from tests.synthetic import clustered_dataset


def ids_only(data: Dataset, users: int | None = None) -> Dataset:
    """``data`` as an interactions-only import gives it: a catalog of item ids, all else null."""
    inter = data.interactions
    if users is not None:
        inter = inter[inter["user_id"].isin([f"u{u}" for u in range(users)])]
    items = pd.DataFrame({"item_id": pd.unique(inter["item_id"])})
    return Dataset(data.name, with_all_columns(items, "items"), inter.reset_index(drop=True))


def test_default_models_leave_content_out_of_a_catalog_of_ids() -> None:
    data = clustered_dataset(n_users=8)
    defaults = ("pop", "itemknn", "content", "hybrid")
    assert default_models_for(data.items, defaults) == (defaults, None)
    names, note = default_models_for(ids_only(data).items, defaults)
    assert names == ("pop", "itemknn", "hybrid")
    assert note is not None and note.startswith("left out content: ")


@pytest.mark.slow  # trains the hybrid's three rankers
def test_an_interactions_only_dataset_evaluates_without_diversity() -> None:
    run = run_protocol(
        ids_only(clustered_dataset(n_users=30)),
        "leave-last:1",
        ("pop", "itemknn", "hybrid"),
        ks=(5, 10),
        progress=False,
    )
    assert [r.model for r in run.results] == ["pop", "itemknn", "hybrid"]
    assert run.context["skipped"] == NO_GENRES
    for result in run.results:
        assert result.metrics["ndcg@10"] >= 0.0 and "novelty@10" in result.metrics
        assert not any(key.startswith("diversity@") for key in result.metrics)
    # no genres to hold a diversity floor on: the re-rank policy is the most accurate one
    rerank = run.results[-1].params["rerank"]
    assert rerank["chosen"]["ndcg@10"] == max(t["ndcg@10"] for t in rerank["tried"])


def test_one_user_is_too_few_to_train_a_ranker_on_and_the_model_order_is_kept() -> None:
    run = run_protocol(
        ids_only(clustered_dataset(n_users=4), users=1),
        "leave-last:1",
        ("pop", "itemknn", "hybrid"),
        ks=(5,),
        progress=False,
    )
    hybrid = run.results[-1]
    assert hybrid.params["ranker"] == "none"
    assert set(hybrid.params["validation_ndcg@10"]) == {"none"}  # nothing else was trained
