"""The demo join: MovieLens title normalisation, honest matching, the joined dataset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cinerec.data.catalogs import ITEM_COLUMNS, Catalogs
from cinerec.data.dataset import Dataset
from cinerec.data.demo import (
    build_demo,
    join_catalogs,
    match_titles,
    movielens_title_keys,
    movielens_title_variants,
)
from cinerec.data.schemas import conform
from tests.services import skip_or_fail

# --- MovieLens titles -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "variants"),
    [
        ("Matrix, The", ["The Matrix"]),
        ("Matrix, The (1999)", ["The Matrix"]),
        ("Affair of Love, An", ["An Affair of Love"]),
        ("Mariachi, El (1992)", ["El Mariachi"]),
        ("Boot, Das (Boat, The) (1981)", ["Das Boot", "Boot, Das (Boat, The)", "The Boat"]),
        (
            "Avventura, L' (Adventure, The)",
            ["L'Avventura", "Avventura, L' (Adventure, The)", "The Adventure"],
        ),
        (
            "City of Lost Children, The (Cité des enfants perdus, La)",
            [
                "The City of Lost Children",
                "City of Lost Children, The (Cité des enfants perdus, La)",
                "La Cité des enfants perdus",
            ],
        ),
        (
            "Léon: The Professional (a.k.a. The Professional) (Léon) (1994)",
            [
                "Léon: The Professional",
                "Léon: The Professional (a.k.a. The Professional) (Léon)",
                "The Professional",
                "Léon",
            ],
        ),
        ("(500) Days of Summer (2009)", ["(500) Days of Summer"]),
        ("Good, the Bad and the Ugly, The", ["The Good, the Bad and the Ugly"]),
        ("Heat", ["Heat"]),
    ],
)
def test_title_variants(title: str, variants: list[str]) -> None:
    assert movielens_title_variants(title) == variants


def test_title_keys_normalise_accents_punctuation_and_ampersand() -> None:
    assert movielens_title_keys("Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)") == [
        "amelie",
        "amelie fabuleux destin damelie poulain le",
        "le fabuleux destin damelie poulain",
    ]
    assert movielens_title_keys("Love & Mercy") == ["love and mercy"]
    assert movielens_title_keys("Sunset Blvd. (a.k.a. Sunset Boulevard)")[-1] == "sunset boulevard"


# --- matching ---------------------------------------------------------------------------


def ml_items(*rows: tuple[str, str, int | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [r[0] for r in rows],
            "title": [r[1] for r in rows],
            "year": pd.array([r[2] for r in rows], dtype="Int32"),
            "genres": [["Drama"] for _ in rows],
            "tags": [[] for _ in rows],
            "type": "movie",
        }
    )


def cat_items(*rows: tuple[str, str, int, str]) -> pd.DataFrame:
    n = len(rows)
    return pd.DataFrame(
        {
            "item_id": [r[0] for r in rows],
            "title": [r[1] for r in rows],
            "type": [r[3] for r in rows],
            "synopsis": [f"About {r[1]}" for r in rows],
            "genres": [["Dramas", "Thrillers"] for _ in rows],
            "tags": [[] for _ in rows],
            "cast": [["Someone"] for _ in rows],
            "director": [["A Director"] for _ in rows],
            "year": pd.array([r[2] for r in rows], dtype="Int32"),
            "duration_min": pd.array([100.0] * n, dtype="Float32"),
            "seasons": pd.array([None] * n, dtype="Int32"),
            "episodes": pd.array([None] * n, dtype="Int32"),
            "country": [["France"] for _ in rows],
            "language": [None] * n,
            "age_rating": ["PG-13"] * n,
            "min_age": pd.array([13] * n, dtype="Int32"),
            "date_added": pd.to_datetime(["2020-01-01"] * n, utc=True).as_unit("s"),
            "providers": [[r[0].split(":")[0]] for r in rows],
        }
    )[list(ITEM_COLUMNS)]


def pairs(matches: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(matches["ml_item_id"], matches["catalog_item_id"], strict=True))


def test_match_moves_articles_and_uses_alternative_titles() -> None:
    ml = ml_items(
        ("1", "Matrix, The", 1999),
        ("2", "Léon: The Professional (a.k.a. The Professional)", 1994),
        ("3", "City of Lost Children, The (Cité des enfants perdus, La)", 1995),
        ("4", "Simpsons Movie, The", 2007),
    )
    cat = cat_items(
        ("netflix:s1", "The Matrix", 1999, "movie"),
        ("hulu:s1", "The Professional", 1994, "movie"),
        ("netflix:s2", "La cité des enfants perdus", 1995, "movie"),
        ("hulu:s2", "Simpsons Movie", 2007, "movie"),
    )
    found = match_titles(ml, cat)
    assert pairs(found) == {
        ("1", "netflix:s1"),
        ("2", "hulu:s1"),
        ("3", "netflix:s2"),
        ("4", "hulu:s2"),
    }
    assert found.set_index("ml_item_id")["exact"].to_dict() == {
        "1": True,
        "2": True,
        "3": True,
        "4": False,
    }


def test_no_match_across_years_sequels_or_series() -> None:
    ml = ml_items(
        ("1", "Heat", 1995),
        ("2", "Alien", 1979),
        ("3", "Fargo", 1996),
        ("4", "Curious George", 2006),
        ("5", "No Year", None),
    )
    cat = cat_items(
        ("netflix:s1", "Heat", 2013, "movie"),
        ("netflix:s2", "Aliens", 1986, "movie"),
        ("netflix:s3", "Aliens", 1979, "movie"),
        ("netflix:s4", "Fargo", 1997, "movie"),
        ("hulu:s1", "Curious George", 2006, "series"),
        ("hulu:s2", "No Year", 2000, "movie"),
    )
    assert match_titles(ml, cat).empty
    # a year tolerance is opt-in and still never crosses titles
    assert pairs(match_titles(ml, cat, year_tolerance=1)) == {("3", "netflix:s4")}


def test_exact_year_beats_a_neighbouring_year() -> None:
    ml = ml_items(("1", "Traffic", 2000))
    cat = cat_items(("netflix:s1", "Traffic", 2001, "movie"), ("hulu:s1", "Traffic", 2000, "movie"))
    assert pairs(match_titles(ml, cat, year_tolerance=1)) == {("1", "hulu:s1")}


def test_main_title_beats_an_alternative_title() -> None:
    ml = ml_items(("1", "Beast, The (Beast of War, The)", 1988))
    cat = cat_items(
        ("netflix:s1", "The Beast of War", 1988, "movie"),
        ("hulu:s1", "The Beast", 1988, "movie"),
    )
    assert pairs(match_titles(ml, cat)) == {("1", "hulu:s1")}


def test_ambiguous_matches_are_left_out() -> None:
    # one ML movie, two different catalog films with the same title and year
    ml = ml_items(("1", "Veronica", 2017), ("2", "War of the Worlds", 2005))
    cat = cat_items(
        ("netflix:s1", "Veronica", 2017, "movie"),
        ("netflix:s2", "Verónica", 2017, "movie"),
        ("netflix:s3", "War of the Worlds", 2005, "movie"),
    )
    # and two ML movies (same title and year) claiming one catalog film
    ml = pd.concat([ml, ml_items(("3", "War of the Worlds", 2005))], ignore_index=True)
    found = match_titles(ml, cat)
    assert found.empty
    assert found.attrs["ambiguous"] == 3


# --- the joined dataset -----------------------------------------------------------------


def small_movielens() -> Dataset:
    items = ml_items(("1", "Matrix, The", 1999), ("2", "Heat", 1995))
    items["genres"] = [["Action", "Sci-Fi"], ["Crime"]]
    inter = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2"],
            "item_id": ["1", "2", "1"],
            "event": "rating",
            "value": pd.array([5.0, 3.5, 4.0], dtype="float32"),
            "timestamp": pd.to_datetime([1, 2, 3], unit="s", utc=True),
            "session_id": ["a", "a", "b"],
        }
    )
    return Dataset("ml-latest-small", items, inter, info={"source": "ml-latest-small"})


def small_catalogs() -> Catalogs:
    items = cat_items(
        ("netflix:s1", "The Matrix", 1999, "movie"),
        ("netflix:s2", "Heat", 2013, "movie"),
        ("hulu:s1", "Fargo", 2014, "series"),
    )
    items.loc[2, "seasons"] = 4
    id_map = pd.Series(items["item_id"].to_numpy(), index=items["item_id"])
    return Catalogs(items, id_map, rows={"netflix": 2, "hulu": 1}, dropped={}, fixes={})


def test_join_enriches_matches_and_adds_cold_start_items(tmp_path: Path) -> None:
    ml = small_movielens()
    demo = join_catalogs(ml, small_catalogs())
    items = demo.items.set_index("item_id")
    assert list(items.index) == ["1", "2", "netflix:s2", "hulu:s1"]
    matrix = items.loc["1"]
    assert matrix["title"] == "Matrix, The"  # MovieLens keeps its own id and title
    assert matrix["synopsis"] == "About The Matrix"
    assert matrix["genres"] == ["Action", "Sci-Fi", "Dramas", "Thrillers"]
    assert matrix["director"] == ["A Director"]
    assert (matrix["age_rating"], matrix["min_age"], matrix["duration_min"]) == ("PG-13", 13, 100)
    assert matrix["providers"] == ["netflix"]
    heat = items.loc["2"]
    assert pd.isna(heat["synopsis"]) and heat["providers"] == [] and heat["cast"] == []
    assert items.loc["hulu:s1", "type"] == "series"
    assert items.loc["hulu:s1", "seasons"] == 4
    assert demo.interactions.equals(ml.interactions)
    assert demo.info["matched_movies"] == 1
    assert demo.info["match_rate"] == 0.5
    assert demo.info["catalog_items"] == 3
    assert demo.info["catalog_items_added"] == 2
    assert demo.info["series"] == 1
    conform(demo.items, "items")
    loaded = Dataset.load(demo.save(tmp_path / "demo"))
    assert len(loaded.items) == 4


def test_build_demo_needs_a_catalog_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CINEREC_DATA_MIRROR", raising=False)
    from cinerec.errors import DataError

    with pytest.raises(DataError, match="Kaggle"):
        build_demo(progress=False)


@pytest.mark.integration
def test_build_demo_on_the_shared_data(datasets_mirror: Path, tmp_path: Path) -> None:
    if not (datasets_mirror / "streaming-catalogs" / "netflix_titles.csv").is_file():
        skip_or_fail("no streaming catalogs in the mirror")  # CI always has them
    demo = build_demo(mirror=datasets_mirror, cache=tmp_path / "cache", progress=False)
    info = demo.info
    assert info["ml_movies"] == 9742
    assert 1700 <= info["matched_movies"] <= 1950
    assert info["match_rate"] == pytest.approx(info["matched_movies"] / 9742, abs=1e-4)
    items = demo.items
    assert items["item_id"].is_unique
    assert demo.interactions["item_id"].isin(items["item_id"]).all()
    assert len(items) == 9742 + info["catalog_items"] - info["matched_movies"]
    # every catalog series is an item (6,517 "TV Show" rows + Hulu's re-typed ones, merged)
    assert 6400 <= info["series"] <= 6600
    assert (items["type"] == "series").sum() == info["series"]
    enriched = items[items["item_id"].str.isdigit() & items["synopsis"].notna()]
    assert len(enriched) == info["matched_movies"]
    assert enriched["min_age"].notna().mean() > 0.9
    conform(items, "items")
