"""Streaming-catalog import: parsing, source quirks, validation and de-duplication."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd
import pytest

from cinerec.data.catalogs import (
    COLUMNS,
    ITEM_COLUMNS,
    PROVIDERS,
    catalog_folder,
    dedupe,
    load_catalogs,
    read_catalog,
    title_key,
)
from cinerec.data.schemas import conform
from cinerec.errors import DataError
from tests.services import skip_or_fail

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def row(**values: str) -> dict[str, str]:
    """A catalog row with sensible defaults for every column."""
    base = {
        "show_id": "s1",
        "type": "Movie",
        "title": "A Film",
        "director": "",
        "cast": "",
        "country": "",
        "date_added": "September 25, 2021",
        "release_year": "2020",
        "rating": "PG-13",
        "duration": "90 min",
        "listed_in": "Dramas",
        "description": "Something happens.",
    }
    base.update(values)
    return base


def write(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- title keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "key"),
    [
        ("The Matrix", "the matrix"),
        ("Léon: The Professional", "leon the professional"),
        ("Amélie", "amelie"),
        ("Mr. & Mrs. Smith", "mr and mrs smith"),
        ("Schindler's List", "schindlers list"),
        ("Schindler’s List", "schindlers list"),
        ("Spider-Man:  Far From   Home", "spider man far from home"),
        ("WALL·E", "wall e"),
        ("  Se7en  ", "se7en"),
    ],
)
def test_title_key(title: str, key: str) -> None:
    assert title_key(title) == key


def test_title_key_keeps_different_titles_apart() -> None:
    assert title_key("Alien") != title_key("Aliens")
    assert title_key("Toy Story") != title_key("Toy Story 2")


# --- one file -------------------------------------------------------------------------


def test_read_catalog_parses_every_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "netflix_titles.csv",
        [
            row(
                show_id="s7",
                title="The Film",
                director="Ann Lee, Bo Park",
                cast=" X Y ,Z W,, Q R (Bond)",
                country="France, United States",
                date_added=" April 4, 2017",
                release_year="2016",
                rating="TV-MA",
                duration="104 min",
                listed_in="Dramas, International Movies",
                description="A plot.",
            ),
            row(show_id="s8", type="TV Show", title="A Show", duration="3 Seasons", rating="16+"),
        ],
    )
    parsed = read_catalog(path, "netflix")
    items = parsed.items
    assert list(items.columns) == list(ITEM_COLUMNS)
    film, show = items.iloc[0], items.iloc[1]
    assert film["item_id"] == "netflix:s7"
    assert film["type"] == "movie"
    assert film["director"] == ["Ann Lee", "Bo Park"]
    assert film["cast"] == ["X Y", "Z W", "Q R"]
    assert film["country"] == ["France", "United States"]
    assert film["genres"] == ["Dramas", "International Movies"]
    assert film["tags"] == []
    assert film["year"] == 2016
    assert film["duration_min"] == 104
    assert pd.isna(film["seasons"])
    assert film["date_added"] == pd.Timestamp("2017-04-04", tz="UTC")
    assert film["age_rating"] == "TV-MA"
    assert film["min_age"] == 17
    assert film["synopsis"] == "A plot."
    assert film["providers"] == ["netflix"]
    assert pd.isna(film["language"])
    assert show["type"] == "series"
    assert show["seasons"] == 3
    assert pd.isna(show["duration_min"])
    assert show["min_age"] == 16
    assert parsed.rows == 2
    conform(items, "items")  # the frame fits the ITEMS schema


def test_empty_cells_are_unknown_not_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv",
        [row(date_added="", rating="", duration="", listed_in="", description="", cast="")],
    )
    item = read_catalog(path, "amazon_prime").items.iloc[0]
    assert pd.isna(item["date_added"])
    assert pd.isna(item["age_rating"])
    assert pd.isna(item["min_age"])
    assert pd.isna(item["duration_min"])
    assert item["genres"] == []
    assert item["cast"] == []
    assert pd.isna(item["synopsis"])


def test_duration_in_the_rating_column_moves_to_duration(tmp_path: Path) -> None:
    path = write(
        tmp_path / "hulu_titles.csv",
        [
            row(show_id="s1", rating="74 min", duration=""),
            row(show_id="s2", type="Movie", rating="2 Seasons", duration=""),
            row(show_id="s3", type="TV Show", rating="1 Season", duration=""),
        ],
    )
    parsed = read_catalog(path, "hulu")
    items = parsed.items.set_index("item_id")
    assert items.at["hulu:s1", "duration_min"] == 74
    assert pd.isna(items.at["hulu:s1", "age_rating"])
    assert pd.isna(items.at["hulu:s1", "min_age"])
    # a "Movie" that runs for seasons is a series
    assert items.at["hulu:s2", "type"] == "series"
    assert items.at["hulu:s2", "seasons"] == 2
    assert items.at["hulu:s3", "seasons"] == 1
    assert parsed.fixes == {"rating_held_duration": 3, "movie_retyped_series": 1}


def test_missing_columns_name_file_and_columns(tmp_path: Path) -> None:
    columns = tuple(c for c in COLUMNS if c not in ("duration", "listed_in"))
    path = write(tmp_path / "netflix_titles.csv", [row()], columns=columns)
    with pytest.raises(DataError) as info:
        read_catalog(path, "netflix")
    assert info.value.file == str(path)
    assert "duration" in str(info.value)
    assert "listed_in" in str(info.value)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_catalog(tmp_path / "nope.csv", "netflix")


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("duration", {"duration": "ninety minutes"}),
        ("date_added", {"date_added": "2021-09-25"}),
        ("release_year", {"release_year": "20x0"}),
        ("type", {"type": "Short"}),
        ("title", {"title": "  "}),
    ],
)
def test_unparsable_values_strict_and_lenient(
    tmp_path: Path, field: str, values: dict[str, str]
) -> None:
    path = write(
        tmp_path / "disney_plus_titles.csv",
        [row(show_id="s1"), row(show_id="s2", **values), row(show_id="s3")],
    )
    with pytest.raises(DataError) as info:
        read_catalog(path, "disney_plus")
    assert (info.value.file, info.value.row, info.value.field) == (str(path), 2, field)
    lenient = read_catalog(path, "disney_plus", strict=False)
    assert list(lenient.items["item_id"]) == ["disney_plus:s1", "disney_plus:s3"]
    assert lenient.dropped == {field: 1}


def test_strict_reports_the_first_bad_row(tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.csv",
        [row(show_id="s1"), row(show_id="s2", date_added="soon"), row(show_id="s3", duration="?")],
    )
    with pytest.raises(DataError) as info:
        read_catalog(path, "netflix")
    assert (info.value.row, info.value.field) == (2, "date_added")
    assert "2 bad row(s)" in str(info.value)


def test_duplicate_show_ids_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", [row(show_id="s1"), row(show_id="s1", title="Other")])
    with pytest.raises(DataError) as info:
        read_catalog(path, "netflix")
    assert (info.value.row, info.value.field) == (2, "show_id")


# --- folders and providers --------------------------------------------------------------


def test_load_reads_the_files_present(tmp_path: Path) -> None:
    write(tmp_path / PROVIDERS["netflix"], [row(show_id="s1", title="One")])
    write(tmp_path / PROVIDERS["hulu"], [row(show_id="s1", title="Two")])
    found = load_catalogs(tmp_path)
    assert found.rows == {"netflix": 1, "hulu": 1}
    assert sorted(found.items["item_id"]) == ["hulu:s1", "netflix:s1"]


def test_named_provider_without_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / PROVIDERS["netflix"], [row()])
    with pytest.raises(DataError, match="not found"):
        load_catalogs(tmp_path, providers=["netflix", "hulu"])
    with pytest.raises(DataError, match="unknown provider"):
        load_catalogs(tmp_path, providers=["hbo"])


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no catalog files"):
        load_catalogs(tmp_path)


def test_catalog_folder_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CINEREC_DATA_MIRROR", raising=False)
    assert catalog_folder(tmp_path) == tmp_path
    assert catalog_folder(mirror=tmp_path) == tmp_path / "streaming-catalogs"
    with pytest.raises(DataError, match="Kaggle"):
        catalog_folder()
    with pytest.raises(DataError, match="Kaggle"):
        catalog_folder(mirror="https://example.org/mirror")
    monkeypatch.setenv("CINEREC_DATA_MIRROR", str(tmp_path))
    assert catalog_folder() == tmp_path / "streaming-catalogs"


# --- de-duplication ---------------------------------------------------------------------


def _items(tmp_path: Path, files: dict[str, list[dict[str, str]]]) -> pd.DataFrame:
    for provider, rows in files.items():
        write(tmp_path / PROVIDERS[provider], rows)
    return load_catalogs(tmp_path, merge=False).items


def test_same_film_on_two_providers_becomes_one_item(tmp_path: Path) -> None:
    items = _items(
        tmp_path,
        {
            "netflix": [
                row(
                    show_id="s1",
                    title="The Matrix",
                    release_year="1999",
                    director="Lana Wachowski, Lilly Wachowski",
                    cast="Keanu Reeves",
                    listed_in="Action & Adventure",
                    description="",
                    rating="",
                    date_added="May 1, 2020",
                )
            ],
            "hulu": [
                row(
                    show_id="s9",
                    title="The Matrix",
                    release_year="1999",
                    director="",
                    cast="Keanu Reeves, Carrie-Anne Moss",
                    listed_in="Sci-Fi, Action & Adventure",
                    description="Neo wakes up.",
                    rating="R",
                    date_added="January 2, 2019",
                )
            ],
        },
    )
    merged, id_map = dedupe(items)
    assert len(merged) == 1
    item = merged.iloc[0]
    assert item["item_id"] == "netflix:s1"
    assert item["providers"] == ["netflix", "hulu"]
    assert item["cast"] == ["Keanu Reeves", "Carrie-Anne Moss"]
    assert item["genres"] == ["Action & Adventure", "Sci-Fi"]
    assert item["synopsis"] == "Neo wakes up."
    assert (item["age_rating"], item["min_age"]) == ("R", 17)
    assert item["date_added"] == pd.Timestamp("2019-01-02", tz="UTC")
    assert id_map.to_dict() == {"netflix:s1": "netflix:s1", "hulu:s9": "netflix:s1"}
    conform(merged, "items")


def test_dedupe_keeps_different_works_apart(tmp_path: Path) -> None:
    items = _items(
        tmp_path,
        {
            "netflix": [
                row(show_id="s1", title="Heat", release_year="1995"),
                row(show_id="s2", title="Veronica", release_year="2017", director="Paco Plaza"),
                row(show_id="s3", title="Alien", release_year="1979"),
                row(
                    show_id="s4",
                    type="TV Show",
                    title="Fargo",
                    release_year="2014",
                    duration="1 Season",
                ),
            ],
            "amazon_prime": [
                row(show_id="s1", title="Heat", release_year="2013"),
                row(show_id="s2", title="Verónica", release_year="2017", director="Carlos Algara"),
                row(show_id="s3", title="Aliens", release_year="1979"),
                row(show_id="s4", title="Fargo", release_year="2014"),
            ],
        },
    )
    merged, id_map = dedupe(items)
    assert len(merged) == len(items) == 8
    assert (id_map.index == id_map.to_numpy()).all()


def test_dedupe_merges_within_a_provider_and_matches_people_loosely(tmp_path: Path) -> None:
    items = _items(
        tmp_path,
        {
            "amazon_prime": [
                row(show_id="s1", title="SNOW WHITE", release_year="1987", director="Michael Berz"),
                row(show_id="s2", title="Snow White", release_year="1987", director="Michael Berz"),
                row(show_id="s3", title="Burning", release_year="2018", cast="Ah-in YOO"),
            ],
            "netflix": [row(show_id="s9", title="Burning", release_year="2018", cast="Yoo Ah-in")],
        },
    )
    merged, id_map = dedupe(items)
    assert len(merged) == 2
    assert id_map["amazon_prime:s2"] == "amazon_prime:s1"
    assert id_map["amazon_prime:s3"] == "netflix:s9"  # netflix comes first in PROVIDERS


# --- the real catalogs ------------------------------------------------------------------


@pytest.fixture
def catalogs_dir() -> Path:
    env = os.environ.get("CINEREC_DATA_MIRROR")
    folder = (Path(env) if env else SHARED) / "streaming-catalogs"
    if not all((folder / name).is_file() for name in PROVIDERS.values()):
        skip_or_fail(f"no streaming catalogs at {folder}")  # CI always has them
    return folder


@pytest.mark.integration
def test_real_catalogs_load_with_published_row_counts(catalogs_dir: Path) -> None:
    raw = load_catalogs(catalogs_dir, merge=False)
    assert raw.rows == {"netflix": 8807, "amazon_prime": 9668, "disney_plus": 1450, "hulu": 3073}
    assert raw.dropped == {}
    assert len(raw.items) == 8807 + 9668 + 1450 + 3073
    assert raw.items["item_id"].is_unique
    assert raw.fixes["rating_held_duration"] == 3 + 292
    providers = raw.items["item_id"].str.split(":").str[0]
    movies = raw.items["type"].eq("movie").groupby(providers).sum().to_dict()
    assert movies["netflix"] == 6131
    assert movies["amazon_prime"] == 7814
    assert movies["disney_plus"] == 1052
    assert movies["hulu"] == 1484 - raw.fixes["movie_retyped_series"]
    assert raw.items["min_age"].notna().mean() > 0.9
    conform(raw.items, "items")

    merged = load_catalogs(catalogs_dir)
    assert 0 < merged.merged < 1000
    assert len(merged.items) == len(raw.items) - merged.merged
    assert set(merged.id_map.index) == set(raw.items["item_id"])
    assert merged.id_map.isin(merged.items["item_id"]).all()
    assert merged.items["item_id"].is_unique
