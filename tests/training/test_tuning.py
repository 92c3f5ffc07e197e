from cinerec.evaluation.splits import make_split
from cinerec.models.base import get_model_class
from cinerec.training.train import train_bundle
from cinerec.training.tuning import grid, tune
from tests.synthetic import clustered_dataset


def test_grid_is_the_full_product_in_fixed_order():
    points = grid({"b": [1, 2], "a": ["x", "y", "z"]})
    assert len(points) == 6
    assert points[0] == {"a": "x", "b": 1}
    assert points == grid({"a": ["x", "y", "z"], "b": [1, 2]})
    assert grid({}) == [{}]


def test_tune_picks_the_best_trial_and_is_reproducible():
    data = clustered_dataset()
    validation = make_split("leave-last:2", data.interactions)
    first = tune("itemknn", validation, items=data.items)
    second = tune("itemknn", validation, items=data.items)
    assert first.best_params == second.best_params
    assert first.best_value == max(t["ndcg@10"] for t in first.trials)
    assert len(first.trials) == len(grid(get_model_class("itemknn").search_space()))


def test_train_bundle_beats_popularity_on_structured_data(tmp_path):
    data = clustered_dataset(n_users=80)
    report = train_bundle(data, tmp_path / "b", model_names=("pop", "itemknn"), progress=False)
    assert report.default_model == "itemknn"
    assert report.searches["itemknn"].best_value > report.searches["pop"].best_value
    assert (tmp_path / "b" / "manifest.json").exists()
