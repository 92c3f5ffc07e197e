"""Range entries of a search space and the optuna search that explores them."""

from __future__ import annotations

import json
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import optuna
import pytest

from cinerec.evaluation.splits import Split, make_split
from cinerec.models.als import ALS
from cinerec.models.space import FloatRange, IntRange, as_grid, describe, has_ranges
from cinerec.training.train import train_bundle
from cinerec.training.tuning import grid, tune
from tests.synthetic import clustered_dataset


@pytest.fixture(scope="module")
def validation() -> Split:
    return make_split("leave-last:2", clustered_dataset().interactions)


def test_ranges_validate_contain_and_clip():
    factors = IntRange(16, 256, log=True)
    assert 16 in factors and 256 in factors and 64 in factors
    assert 8 not in factors and 64.0 not in factors and True not in factors
    assert factors.clip(1000) == 256 and factors.clip(40.4) == 40
    reg = FloatRange(1e-3, 1.0, log=True)
    assert 0.5 in reg and 1 in reg and 2.0 not in reg
    assert reg.clip(0.0) == 1e-3
    for bad in (
        lambda: IntRange(5, 1),
        lambda: IntRange(0, 5, log=True),
        lambda: IntRange(1, 2.5),  # type: ignore[arg-type]
        lambda: FloatRange(0.0, 1.0, log=True),
        lambda: FloatRange(1.0, float("inf")),
    ):
        with pytest.raises(ValueError):
            bad()
    space = {"factors": factors, "reg": reg, "kind": ["a", "b"]}
    assert has_ranges(space) and not has_ranges({"kind": ["a", "b"]})
    described = describe(space)
    assert described["factors"] == {"type": "int", "low": 16, "high": 256, "log": True}
    json.dumps(described)
    with pytest.raises(ValueError):
        grid(space)


def test_as_grid_keeps_a_list_space_and_names_the_ranges_it_refuses():
    lists = {"k": [10, 20], "shrink": [0.0, 10.0]}
    assert as_grid(lists) == lists
    assert as_grid({}) == {}
    with pytest.raises(ValueError, match=r"\['factors', 'reg'\]"):
        as_grid({"reg": FloatRange(0.1, 1.0), "k": [1, 2], "factors": IntRange(16, 64)})


def test_optuna_search_is_reproducible_and_records_trials(validation, capsys):
    before = optuna.logging.get_verbosity()
    first = tune("als", validation, n_trials=5, seed=1)
    second = tune("als", validation, n_trials=5, seed=1)
    assert first.strategy == "optuna" and first.seed == 1 and first.grid_size == 5
    assert len(first.trials) == 5 and not first.stopped_by_budget
    assert first.trials == second.trials
    assert first.best_params == second.best_params
    assert first.best_value == max(t["ndcg@10"] for t in first.trials)
    # The defaults are the first trial, so the search never ends below them.
    space = ALS.search_space()
    defaults = ALS.default_params()
    assert first.trials[0]["params"] == {key: defaults[key] for key in space}
    for trial in first.trials:
        for key, entry in space.items():
            assert trial["params"][key] in entry
    assert first.space["alpha"] == {"type": "float", "low": 1.0, "high": 100.0, "log": True}
    json.dumps(first.to_dict())
    other = tune("als", validation, n_trials=5, seed=2)
    assert other.trials[1:] != first.trials[1:]
    # optuna's per-trial log lines stay silent, and its verbosity is restored.
    assert "Trial" not in capsys.readouterr().err
    assert optuna.logging.get_verbosity() == before


def test_optuna_search_respects_the_time_budget_and_fixed_params(validation):
    limited = tune("als", validation, n_trials=10, time_budget_s=0.0)
    assert len(limited.trials) == 1 and limited.stopped_by_budget
    assert limited.best_params == limited.trials[0]["params"]
    fixed = tune("als", validation, n_trials=3, fixed_params={"iterations": 4})
    assert all(t["params"]["iterations"] == 4 for t in fixed.trials)
    with pytest.raises(ValueError):
        tune("als", validation, strategy="grid")
    with pytest.raises(ValueError):
        tune("als", validation, n_trials=0)


def test_list_only_spaces_can_use_optuna_too(validation):
    result = tune("itemknn", validation, strategy="optuna", n_trials=3)
    assert result.strategy == "optuna" and len(result.trials) == 3
    assert result.trials[0]["params"] == {"neighbors": 100, "shrink": 10}


def test_train_bundle_stores_the_optuna_search_in_the_manifest(tmp_path):
    data = clustered_dataset(n_users=40)
    train_bundle(data, tmp_path / "b", model_names=("pop", "als"), progress=False)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    search = manifest["search"]["als"]
    assert search["strategy"] == "optuna" and search["seed"] == 0
    assert len(search["trials"]) == search["grid_size"] == 20
    assert search["best_params"] == max(search["trials"], key=lambda t: t["ndcg@10"])["params"]
