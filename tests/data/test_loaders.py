import sys
import types

import pytest

from cinerec.data import loaders
from cinerec.data.loaders import DATASET_NAMES, load_dataset
from cinerec.errors import DataError
from tests.data.test_movielens import write_release


def test_dataset_names():
    for name in ("ml-latest-small", "ml-100k", "ml-1m", "ml-20m", "ml-25m", "ml-latest", "demo"):
        assert name in DATASET_NAMES


def test_movielens_by_name_and_saved_folder(tmp_path):
    write_release(tmp_path / "mirror")
    ds = load_dataset("ml-latest", mirror=tmp_path / "mirror", cache=tmp_path / "c")
    assert len(ds.interactions) == 3
    ds.save(tmp_path / "saved")
    again = load_dataset(str(tmp_path / "saved"))
    assert again.name == "saved" and len(again.items) == 3


def test_demo_is_delegated(monkeypatch):
    calls = {}

    def build_demo(**kwargs):
        calls.update(kwargs)
        return "demo-dataset"

    monkeypatch.setitem(
        sys.modules, "cinerec.data.demo", types.SimpleNamespace(build_demo=build_demo)
    )
    assert load_dataset("demo", mirror="/m", cache="/c", progress=False) == "demo-dataset"
    assert calls == {"mirror": "/m", "cache": "/c", "progress": False}


def test_unknown_names(tmp_path):
    with pytest.raises(DataError, match="ml-latest-small, ml-100k") as info:
        load_dataset("netflix-prize")
    assert "demo" in str(info.value)
    with pytest.raises(DataError, match="not a saved dataset"):
        load_dataset(str(tmp_path))
    (tmp_path / "ratings.csv").write_text("user_id,item_id,timestamp\n")
    with pytest.raises(DataError, match=r"ratings\.csv: is a file, not a dataset: import it"):
        load_dataset(str(tmp_path / "ratings.csv"))
    assert loaders.DATASET_NAMES[-1] == "demo"


@pytest.mark.integration
def test_load_dataset_ml_latest_small(datasets_mirror, tmp_path):
    ds = load_dataset("ml-latest-small", mirror=datasets_mirror, cache=tmp_path, progress=False)
    assert len(ds.interactions) == 100_836
    assert ds.interactions["user_id"].nunique() == 610
    assert len(ds.items) == 9_742
