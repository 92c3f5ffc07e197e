import pandas as pd
import pytest

from cinerec.data.dataset import Dataset
from cinerec.errors import DataError


def _dataset() -> Dataset:
    items = pd.DataFrame(
        {
            "item_id": ["a", "b"],
            "title": ["A", "B"],
            "type": ["movie", "series"],
            "genres": [["Drama"], []],
            "year": [1999, 2020],
        }
    )
    interactions = pd.DataFrame(
        {
            "user_id": ["u"],
            "item_id": ["a"],
            "event": ["rating"],
            "value": [4.0],
            "timestamp": pd.to_datetime(["2020-01-01 12:00:00"], utc=True),
        }
    )
    return Dataset("tiny", items, interactions)


def test_save_load_round_trip(tmp_path):
    original = _dataset()
    original.save(tmp_path / "ds")
    loaded = Dataset.load(tmp_path / "ds")
    assert loaded.name == "ds"
    assert list(loaded.items["item_id"]) == ["a", "b"]
    assert list(loaded.items["genres"].iloc[0]) == ["Drama"]
    assert loaded.interactions["timestamp"].iloc[0] == pd.Timestamp("2020-01-01 12:00", tz="UTC")
    assert loaded.fingerprint() == original.fingerprint()
    assert loaded.summary()["series"] == 1


def test_failed_save_leaves_previous_version(tmp_path):
    target = tmp_path / "ds"
    _dataset().save(target)
    broken = _dataset()
    broken.interactions = broken.interactions.assign(value=["not a number"])
    with pytest.raises(Exception):  # noqa: B017 - any Arrow conversion error
        broken.save(target)
    assert Dataset.load(target).interactions["value"].iloc[0] == 4.0
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_load_missing_table_names_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"missing items\.parquet"):
        Dataset.load(tmp_path / "empty")
