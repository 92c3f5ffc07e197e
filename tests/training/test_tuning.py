from cinerec.evaluation.splits import make_split
from cinerec.models.base import get_model_class
from cinerec.training.train import train_bundle
from cinerec.training.tuning import coordinate_ascent, grid, tune
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
    first = tune("itemknn", validation, items=data.items, strategy="grid")
    second = tune("itemknn", validation, items=data.items, strategy="grid")
    assert first.best_params == second.best_params
    assert first.best_value == max(t["ndcg@10"] for t in first.trials)
    assert len(first.trials) == len(grid(get_model_class("itemknn").search_space()))


def test_train_bundle_beats_popularity_on_structured_data(tmp_path):
    data = clustered_dataset(n_users=80)
    report = train_bundle(data, tmp_path / "b", model_names=("pop", "itemknn"), progress=False)
    assert report.default_model == "itemknn"
    assert report.searches["itemknn"].best_value > report.searches["pop"].best_value
    assert (tmp_path / "b" / "manifest.json").exists()


def test_coordinate_ascent_finds_the_peak_of_a_unimodal_grid_visiting_few_points():
    space = {"a": [1, 2, 3, 4, 5, 6, 7, 8], "b": [0, 10, 20, 30]}
    visited = []

    def value(point):
        return -((point["a"] - 6) ** 2) - ((point["b"] - 20) / 10) ** 2

    def objective(point):
        visited.append(point)
        return value(point)

    coordinate_ascent(space, {"a": 2, "b": 0}, objective)
    best = max(visited, key=value)
    assert best == {"a": 6, "b": 20}
    assert len(visited) < len(grid(space))
    assert len({tuple(sorted(p.items())) for p in visited}) == len(visited)


def test_tune_with_ascent_records_strategy_and_respects_budget():
    data = clustered_dataset()
    validation = make_split("leave-last:2", data.interactions)
    ascent = tune("ease", validation, items=data.items)
    assert ascent.strategy == "ascent"
    assert 1 <= len(ascent.trials) < ascent.grid_size
    limited = tune("itemknn", validation, items=data.items, strategy="grid", time_budget_s=0.0)
    assert limited.stopped_by_budget
    assert len(limited.trials) == 1
