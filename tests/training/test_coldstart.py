import pandas as pd

from cinerec.data.dataset import Dataset
from cinerec.training.coldstart import new_item_protocol, new_user_protocol
from tests.synthetic import clustered_dataset

NO_ENCODER = {"content": {"embed_weight": 0.0}}


def _dataset_with_text() -> Dataset:
    """The clustered data with catalog text and genres that follow the taste clusters."""
    data = clustered_dataset(n_users=80, n_items=40, per_user=10)
    words = [
        "space robots galaxy",
        "horse ranch cowboy",
        "detective murder city",
        "love wedding paris",
    ]
    cluster = data.items["genres"].map(lambda g: int(g[0][1:]))
    data.items = data.items.assign(
        synopsis=[f"A story about {words[c]} number {i}" for i, c in enumerate(cluster)],
        type=["series" if i % 5 == 0 else "movie" for i in range(len(data.items))],
    )
    return data


def test_new_item_protocol_content_beats_random_and_popularity():
    run = new_item_protocol(
        _dataset_with_text(), fraction=0.25, ks=(5, 10), tune_models=False, model_params=NO_ENCODER
    )
    ndcg = {r.model: r.metrics["ndcg@5"] for r in run.results}
    assert set(ndcg) == {"random", "pop", "content"}
    assert ndcg["content"] > ndcg["random"]
    assert ndcg["content"] > ndcg["pop"]
    assert run.context["cold_items"] == 10
    assert all(r.n_users > 0 for r in run.results)


def test_new_user_protocol_blend_weight_is_chosen_on_validation_users():
    run = new_user_protocol(
        _dataset_with_text(),
        max_history=3,
        ks=(5, 10),
        tune_models=False,
        model_params=NO_ENCODER,
    )
    names = [r.model for r in run.results]
    assert names == ["pop", "content", "content+pop"]
    assert 0.0 <= run.context["alpha"] <= 1.0
    ndcg = {r.model: r.metrics["ndcg@10"] for r in run.results}
    assert ndcg["content"] > ndcg["pop"]  # three cluster items already reveal the taste
    assert run.context["test_users"] == 16
    assert isinstance(run.results[0].metrics["recall@10"], float)
    assert not pd.isna(run.results[2].metrics["ndcg@10"])
