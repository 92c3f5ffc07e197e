import numpy as np
import pandas as pd
import pytest

from cinerec.data.validate import (
    ValidationReport,
    validate_interactions,
    validate_items,
    validate_users,
)
from cinerec.errors import DataError

NAMES = {"user_id": "userId", "item_id": "movieId", "value": "rating", "timestamp": "ts"}


def _ratings(**overrides: list) -> pd.DataFrame:
    data = {
        "user_id": ["1", "1", "2", "3"],
        "item_id": ["10", "11", "10", "12"],
        "value": ["4.0", "3.5", "5", "0.5"],
        "timestamp": ["964982703", "964982704", "2020-01-01T10:00:00Z", "2020-01-02"],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def _strict_error(frame: pd.DataFrame, **kwargs: object) -> DataError:
    with pytest.raises(DataError) as info:
        validate_interactions(frame, file="ratings.csv", names=NAMES, **kwargs)
    return info.value


def test_valid_frame_is_normalised():
    out, report = validate_interactions(_ratings(), file="ratings.csv")
    assert report.ok and report.rows_kept == 4
    assert list(out["event"]) == ["rating"] * 4
    assert out["value"].dtype == np.float32
    assert str(out["timestamp"].dtype) == "datetime64[s, UTC]"
    assert out["timestamp"].iloc[0] == pd.Timestamp(964982703, unit="s", tz="UTC")
    assert out["timestamp"].iloc[2] == pd.Timestamp("2020-01-01 10:00", tz="UTC")
    assert out["user_id"].tolist() == ["1", "1", "2", "3"]


def test_rating_out_of_range_names_file_row_field():
    error = _strict_error(_ratings(value=["4", "3", "7.5", "1"]))
    assert str(error) == "ratings.csv, row 3, field 'rating': 7.5 is outside 0.5..5.0"
    assert (error.file, error.row, error.field) == ("ratings.csv", 3, "rating")


def test_rating_range_is_configurable():
    out, _ = validate_interactions(_ratings(value=["1", "10", "7", "3"]), rating_range=(1, 10))
    assert len(out) == 4
    error = _strict_error(_ratings(value=["1", "10", "7", "0"]), rating_range=(1, 10))
    assert error.row == 4 and "0.0 is outside 1.0..10.0" in str(error)


def test_row_offset_shifts_row_numbers():
    error = _strict_error(_ratings(value=["4", "3", "7.5", "1"]), row_offset=1000)
    assert error.row == 1003


def test_first_problem_by_row_wins():
    frame = _ratings(value=["4", "3", "9", "1"], user_id=["1", "", "2", "3"])
    error = _strict_error(frame)
    assert (error.row, error.field) == (2, "userId")
    assert "empty user id" in str(error)


def test_missing_columns_are_listed():
    frame = _ratings().drop(columns=["user_id", "timestamp"])
    error = _strict_error(frame)
    assert "missing required column(s): userId, ts" in str(error)
    assert error.file == "ratings.csv" and error.row is None
    with pytest.raises(DataError, match="missing required"):
        validate_interactions(frame, strict=False)


def test_unparsable_number():
    error = _strict_error(_ratings(value=["4", "four", "3", "1"]))
    assert (error.row, error.field) == (2, "rating")
    assert "'four' is not a number" in str(error)


def test_unparsable_timestamp():
    error = _strict_error(_ratings(timestamp=["964982703", "1", "yesterday", "2"]))
    assert (error.row, error.field) == (3, "ts")
    assert "'yesterday' is neither epoch seconds nor an ISO 8601 time" in str(error)


def test_millisecond_epoch_is_rejected():
    error = _strict_error(_ratings(timestamp=["964982703000", "1", "2", "3"]))
    assert error.row == 1 and "milliseconds" in str(error)


def test_empty_timestamp_and_item_id():
    error = _strict_error(_ratings(timestamp=["1", "2", "3", " "]))
    assert (error.row, error.field) == (4, "ts")
    error = _strict_error(_ratings(item_id=["10", None, "1", "2"]))
    assert (error.row, error.field) == (2, "movieId")


def test_unknown_item_with_item_table():
    error = _strict_error(_ratings(), item_ids=["10", "11"])
    assert (error.row, error.field) == (4, "movieId")
    assert "item '12' is not in the item table" in str(error)


def test_unknown_event():
    frame = _ratings(event=["rating", "LIKE", "purchase", "view"], value=["4", "", "", ""])
    error = _strict_error(frame)
    assert (error.row, error.field) == (3, "event")
    assert "'purchase' is not an event" in str(error)


def test_events_default_value_and_case():
    frame = _ratings(event=["rating", "LIKE", "skip", "view"], value=["4", "", None, "2"])
    out, _ = validate_interactions(frame)
    assert out["event"].tolist() == ["rating", "like", "skip", "view"]
    assert out["value"].tolist() == [4.0, 1.0, 1.0, 2.0]


def test_rating_without_value_is_an_error():
    error = _strict_error(_ratings(value=["4", "", "3", "2"]))
    assert (error.row, error.field) == (2, "rating")


def test_lenient_drops_and_counts():
    frame = _ratings(
        user_id=["1", "", "2", "3", "4", "5"],
        item_id=["10", "11", "10", "99", "10", "10"],
        value=["4", "3", "9", "1", "x", "2"],
        timestamp=["1", "2", "3", "4", "5", "6"],
    )
    out, report = validate_interactions(
        frame, file="ratings.csv", strict=False, item_ids=["10", "11"], names=NAMES
    )
    assert out["user_id"].tolist() == ["1", "5"]
    assert report.rows_read == 6 and report.rows_kept == 2 and report.rows_dropped == 4
    assert report.dropped == {
        "empty user id": 1,
        "unparsable number": 1,
        "rating out of range": 1,
        "unknown item": 1,
    }
    assert report.examples[0] == "row 2, field 'userId': empty user id"
    assert report.examples[1] == "row 3, field 'rating': 9.0 is outside 0.5..5.0"
    assert "dropped 4 of 6 rows" in report.describe()
    assert report.as_dict()["rows_kept"] == 2


def test_lenient_counts_each_row_once():
    frame = _ratings(user_id=["", "1", "1", "1"], value=["9", "1", "1", "1"])
    _, report = validate_interactions(frame, strict=False)
    assert report.rows_dropped == 1 and sum(report.dropped.values()) == 1


def test_numeric_input_dtypes_fast_path():
    frame = pd.DataFrame(
        {
            "user_id": np.array([1, 2], dtype=np.int64),
            "item_id": np.array([5.0, 6.0]),
            "value": np.array([1.5, 2.0]),
            "timestamp": np.array([0, 1_500_000_000], dtype=np.int64),
        }
    )
    out, _ = validate_interactions(frame)
    assert out["item_id"].tolist() == ["5", "6"]
    assert out["timestamp"].iloc[1] == pd.Timestamp(1_500_000_000, unit="s", tz="UTC")


def test_duplicate_item_ids():
    items = pd.DataFrame({"item_id": ["1", "2", "1"], "title": ["A", "B", "C"]})
    with pytest.raises(DataError) as info:
        validate_items(items, file="movies.csv", names={"item_id": "movieId"})
    assert (info.value.row, info.value.field) == (3, "movieId")
    assert "first seen in row 1" in str(info.value)
    out, report = validate_items(items, strict=False)
    assert out["title"].tolist() == ["A", "B"] and report.dropped == {"duplicate item id": 1}


def test_item_numbers_types_and_dates():
    items = pd.DataFrame(
        {
            "item_id": ["1", "2", "3"],
            "type": ["Movie", "series", None],
            "year": ["1999", "", "2001"],
            "duration_min": ["90", "45.5", ""],
            "date_added": ["2021-09-25", "", "1600000000"],
        }
    )
    out, _ = validate_items(items)
    assert out["type"].tolist()[:2] == ["movie", "series"]
    assert str(out["year"].dtype) == "Int32" and pd.isna(out["year"].iloc[1])
    assert out["date_added"].iloc[0] == pd.Timestamp("2021-09-25", tz="UTC")
    bad = items.assign(year=["1999", "19x9", "2001"])
    with pytest.raises(DataError, match="row 2, field 'year': '19x9' is not an integer"):
        validate_items(bad, file="items.csv")
    with pytest.raises(DataError, match="row 3, field 'type'"):
        validate_items(items.assign(type=["movie", "movie", "podcast"]), file="items.csv")


def test_users():
    users = pd.DataFrame({"user_id": ["a", "b", "b"], "age": ["20", "x", "30"]})
    with pytest.raises(DataError, match=r"users\.csv, row 2, field 'age'"):
        validate_users(users, file="users.csv")
    out, report = validate_users(users, strict=False)
    assert out["user_id"].tolist() == ["a"] and report.rows_dropped == 2


def test_report_defaults():
    report = ValidationReport("f.csv", rows_read=3, rows_kept=3)
    assert report.ok and "all valid" in report.describe()
