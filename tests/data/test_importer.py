from pathlib import Path

import pandas as pd
import pytest

from cinerec.data.dataset import Dataset
from cinerec.data.importer import (
    import_dataset,
    import_table,
    parse_mapping,
    read_table,
    split_lists,
)
from cinerec.errors import DataError

MAPPING = "user_id=uid,item_id=movie,value=stars,timestamp=ts"


def _write(path: Path, lines: list[str], crlf: bool = False) -> Path:
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode() + b"\n")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "ratings": _write(
            tmp_path / "ratings.csv",
            ["uid,movie,stars,ts", "u1,m1,4,1600000000", "u1,m2,5,2021-01-01T00:00:00Z"],
            crlf=True,
        ),
        "items": _write(
            tmp_path / "items.csv",
            ["movie,name,genres,cast", 'm1,One,Drama|Comedy,"A, B"', "m2,Two,,C"],
        ),
        "users": _write(tmp_path / "users.tsv", ["uid\tage\tpreferred_genres", "u1\t30\tDrama"]),
    }


def test_parse_mapping():
    assert parse_mapping(MAPPING)["value"] == "stars"
    assert parse_mapping({"items.title": "name"}) == {"items.title": "name"}
    assert parse_mapping(None) == {}
    with pytest.raises(DataError, match="target=source"):
        parse_mapping("user_id")
    with pytest.raises(DataError, match="not a column"):
        parse_mapping("rating=stars")
    with pytest.raises(DataError, match="not a column"):
        parse_mapping("users.title=x")


def test_split_lists():
    col = pd.Series(["a|b| ", "c", None, ["x", " y "]], dtype=object)
    assert split_lists(col).tolist() == [["a", "b"], ["c"], [], ["x", "y"]]
    assert split_lists(pd.Series(["a, b", "c"])).tolist() == [["a", "b"], ["c"]]
    assert split_lists(pd.Series(["a;b"]), sep=";").tolist() == [["a", "b"]]


def test_read_table_sniffs_delimiter(tmp_path):
    path = _write(tmp_path / "x.txt", ["a;b", "NA;2"])
    frame = read_table(path)
    assert frame.columns.tolist() == ["a", "b"] and frame["a"].iloc[0] == "NA"
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "missing.csv")


def test_import_dataset(files):
    ds = import_dataset(
        files["ratings"],
        files["items"],
        files["users"],
        mapping=MAPPING + ",title=name",
        name="mine",
    )
    assert ds.name == "mine"
    items = ds.items.set_index("item_id")
    assert items.loc["m1", "title"] == "One"
    assert items.loc["m1", "genres"] == ["Drama", "Comedy"]
    assert items.loc["m1", "cast"] == ["A", "B"] and items.loc["m2", "genres"] == []
    inter = ds.interactions
    assert inter["event"].tolist() == ["rating", "rating"]
    assert inter["value"].tolist() == [4.0, 5.0]
    assert inter["timestamp"].iloc[1] == pd.Timestamp("2021-01-01", tz="UTC")
    assert ds.users["age"].tolist() == [30]
    assert ds.users["preferred_genres"].tolist() == [["Drama"]]
    assert "validation" not in ds.info
    ds.save(files["ratings"].parent / "saved")


def test_defaults_without_event_or_value(tmp_path):
    views = _write(tmp_path / "views.csv", ["user_id,item_id,timestamp", "a,x,1", "b,y,2"])
    ds = import_dataset(views)
    assert ds.interactions["event"].tolist() == ["view", "view"]
    assert ds.interactions["value"].tolist() == [1.0, 1.0]
    assert sorted(ds.items["item_id"]) == ["x", "y"]
    assert ds.name == "views"


def test_interactions_alone_give_a_catalog_with_every_schema_column(tmp_path):
    views = _write(tmp_path / "views.csv", ["user_id,item_id,timestamp", "a,x,1", "b,y,2"])
    ds = import_dataset(views)
    saved = Dataset.load(ds.save(tmp_path / "saved"))
    for table in ("items", "interactions", "users"):  # as its saved folder reads
        assert set(getattr(ds, table).columns) == set(getattr(saved, table).columns)
    assert ds.items["genres"].isna().all() and ds.items["title"].isna().all()
    assert ds.summary()["series"] == 0


def test_no_interactions_left_is_refused_naming_the_file(tmp_path):
    header_only = _write(tmp_path / "empty.csv", ["user_id,item_id,timestamp"])
    with pytest.raises(DataError, match=r"^empty\.csv: no interactions$"):
        import_dataset(header_only)
    all_bad = _write(tmp_path / "bad.csv", ["user_id,item_id,value,timestamp", "a,x,9,1"])
    with pytest.raises(DataError, match=r"bad\.csv: no interactions of 1 left after dropping"):
        import_dataset(all_bad, strict=False)


def test_given_event_column(tmp_path):
    mapping = "user_id=user,item_id=item,event=kind,timestamp=t"
    lines = ["user,item,kind,t", "a,x,like,1", "a,y,rating,2", "a,z,Watch,3"]
    path = _write(tmp_path / "e.csv", lines)
    with pytest.raises(DataError, match=r"e\.csv, row 2, field 'value': a rating needs a value"):
        import_dataset(path, mapping=mapping)
    _write(path, [*lines[:2], "a,y,click,2", lines[3]])
    ds = import_dataset(path, mapping=mapping)
    assert ds.interactions["event"].tolist() == ["like", "click", "watch"]
    assert ds.interactions["value"].tolist() == [1.0, 1.0, 1.0]
    _write(path, [*lines[:2], "a,y,buy,2"])
    with pytest.raises(DataError, match="row 2, field 'kind': 'buy' is not an event"):
        import_dataset(path, mapping=mapping)


def test_unknown_items_strict_and_lenient(files):
    _write(files["ratings"], ["uid,movie,stars,ts", "u1,m1,4,1", "u1,m9,3,2", "u2,m8,9,3"])
    with pytest.raises(DataError) as info:
        import_dataset(files["ratings"], files["items"], mapping=MAPPING)
    assert (info.value.file, info.value.row, info.value.field) == ("ratings.csv", 2, "movie")
    ds = import_dataset(files["ratings"], files["items"], mapping=MAPPING, strict=False)
    assert ds.interactions["item_id"].tolist() == ["m1"]
    assert ds.info["dropped_rows"] == 2
    report = ds.info["validation"][0]
    assert report["file"] == "ratings.csv"
    assert report["dropped"] == {"rating out of range": 1, "unknown item": 1}


def test_missing_columns_and_mapping_errors(files, tmp_path):
    with pytest.raises(DataError, match="missing required column"):
        import_dataset(files["ratings"])  # no mapping: user_id etc. absent
    with pytest.raises(DataError, match="mapped column 'score'"):
        import_dataset(files["ratings"], mapping=MAPPING.replace("stars", "score"))


def test_parquet_input(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": [1, 2],
            "item_id": [10, 11],
            "value": [3.0, 4.5],
            "timestamp": pd.to_datetime(["2020-01-01", "2020-01-02"], utc=True),
        }
    )
    frame.to_parquet(tmp_path / "r.parquet")
    out, report = import_table(tmp_path / "r.parquet", "interactions")
    assert out["user_id"].tolist() == ["1", "2"] and report.ok
    assert out["event"].tolist() == ["rating", "rating"]
