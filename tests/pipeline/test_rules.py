"""Knowledge-based filtering: each constraint kind, unknown values, caching and soft scores."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cinerec.data.schemas import conform
from cinerec.errors import CinerecError
from cinerec.pipeline.rules import (
    CatalogFacts,
    ConstraintError,
    constraints_from_mapping,
)
from cinerec.pipeline.types import Constraints

# Movies, series, one item of unknown type and a MovieLens-like row with almost nothing known.
ROWS: list[dict[str, Any]] = [
    dict(type="movie", genres=["Drama", "Comedy"], year=2020, min_age=13, language="en",
         country=["United States"], seasons=None, episodes=None, duration_min=120.0),
    dict(type="movie", genres=["Action"], year=1999, min_age=17, language="EN ",
         country=["India", "United States"], seasons=None, episodes=None, duration_min=150.0),
    dict(type="movie", genres=["Animation", "Family"], year=2022, min_age=0, language="tr",
         country=["Turkey"], seasons=None, episodes=None, duration_min=90.0),
    dict(type="movie", genres=["Documentary"], year=None, min_age=None, language=None,
         country=None, seasons=None, episodes=None, duration_min=None),
    dict(type="series", genres=["Drama"], year=2018, min_age=14, language="tr",
         country=["Turkey"], seasons=2, episodes=20, duration_min=45.0),
    dict(type="series", genres=["Comedy", "Family"], year=2023, min_age=7, language="en",
         country=["United Kingdom"], seasons=8, episodes=150, duration_min=22.0),
    dict(type="series", genres=["Crime", "drama"], year=2015, min_age=17, language="es",
         country=["Spain"], seasons=None, episodes=None, duration_min=None),
    dict(type=None, genres=["Drama"], year=2021, min_age=0, language="en",
         country=[], seasons=None, episodes=None, duration_min=100.0),
    dict(type="movie", genres=[], year=2010, min_age=18, language="",
         country=None, seasons=None, episodes=None, duration_min=95.0),
    dict(type="series", genres=["Kids"], year=None, min_age=0, language="fr",
         country=["France"], seasons=1, episodes=None, duration_min=12.0),
]  # fmt: skip
ALL = set(range(len(ROWS)))


def _frame() -> pd.DataFrame:
    raw = pd.DataFrame(ROWS).assign(item_id=[f"i{i}" for i in range(len(ROWS))])
    return conform(raw, "items").to_pandas()  # as a loaded catalog: arrays, NaN, float dtypes


FACTS = CatalogFacts.from_catalog(_frame())


def _set(mask: np.ndarray) -> set[int]:
    return set(np.flatnonzero(mask).tolist())


def _key(value: str) -> str:
    return value.strip().casefold()


def _reference(row: dict[str, Any], c: Constraints) -> bool:
    """Plain-Python statement of the documented semantics, one item at a time."""
    known = lambda v: v is not None  # noqa: E731
    if c.impossible:
        return False
    age = row["min_age"]
    if c.max_min_age is not None and not (known(age) and age <= c.max_min_age):
        return False
    language = _key(row["language"]) if row["language"] else None
    if c.languages and language not in {_key(v) for v in c.languages}:
        return False
    for field, column in (("countries", "country"), ("genres", "genres")):
        wanted = {_key(v) for v in getattr(c, field)}
        if wanted and not wanted & {_key(v) for v in row[column] or []}:
            return False
    if c.types and row["type"] not in {_key(t) for t in c.types}:
        return False
    if c.year_min is not None and not (known(row["year"]) and row["year"] >= c.year_min):
        return False
    if c.year_max is not None and not (known(row["year"]) and row["year"] <= c.year_max):
        return False
    if row["type"] == "series":
        for limit, column in ((c.max_seasons, "seasons"), (c.max_episodes, "episodes")):
            if limit is not None and known(row[column]) and row[column] > limit:
                return False
    duration = row["duration_min"]
    return c.max_duration_min is None or duration is None or duration <= c.max_duration_min


def test_empty_constraints_allow_everything() -> None:
    assert FACTS.n_items == len(ROWS)
    assert FACTS.allowed(Constraints()).all()


@pytest.mark.parametrize(
    ("constraints", "expected"),
    [
        (Constraints(max_min_age=13), {0, 2, 5, 7, 9}),
        (Constraints(max_min_age=0), {2, 7, 9}),
        (Constraints(languages=("en",)), {0, 1, 5, 7}),
        (Constraints(languages=(" TR",)), {2, 4}),
        (Constraints(languages=("de",)), set()),
        (Constraints(countries=("turkey", "Spain")), {2, 4, 6}),
        (Constraints(countries=("United States",)), {0, 1}),
        (Constraints(genres=("DRAMA",)), {0, 4, 6, 7}),
        (Constraints(genres=("family", "kids")), {2, 5, 9}),
        (Constraints(types=("series",)), {4, 5, 6, 9}),
        (Constraints(types=("movie",)), {0, 1, 2, 3, 8}),
        (Constraints(types=("movie", "series")), ALL - {7}),
        (Constraints(year_min=2020), {0, 2, 5, 7}),
        (Constraints(year_max=2015), {1, 6, 8}),
        (Constraints(year_min=2015, year_max=2020), {0, 4, 6}),
        (Constraints(max_seasons=2), ALL - {5}),
        (Constraints(max_seasons=0), ALL - {4, 5, 9}),
        (Constraints(max_episodes=100), ALL - {5}),
        (Constraints(max_duration_min=100), ALL - {0, 1}),
        (Constraints(max_min_age=13, languages=("tr",)), {2}),
        (Constraints(types=("series",), max_seasons=2, genres=("drama",)), {4, 6}),
    ],
)
def test_each_constraint_kind(constraints: Constraints, expected: set[int]) -> None:
    assert _set(FACTS.allowed(constraints)) == expected
    assert all(_reference(ROWS[i], constraints) == (i in expected) for i in ALL)


def test_unknown_min_age_is_excluded_under_parental_control() -> None:
    allowed = FACTS.allowed(Constraints(max_min_age=100))
    assert not allowed[3]  # the unrated item never passes, however high the limit
    assert _set(allowed) == ALL - {3}


def test_raw_and_loaded_frames_give_the_same_facts() -> None:
    raw = CatalogFacts.from_catalog(pd.DataFrame(ROWS))
    for c in (Constraints(max_min_age=14, genres=("drama",)), Constraints(year_max=2018)):
        np.testing.assert_array_equal(raw.allowed(c), FACTS.allowed(c))
    assert CatalogFacts.from_catalog(pd.DataFrame({"title": ["x"]})).allowed(
        Constraints(year_min=2000)
    ).tolist() == [False]


_names = lambda pool: st.lists(st.sampled_from(pool), max_size=3).map(tuple)  # noqa: E731
CONSTRAINTS = st.builds(
    Constraints,
    max_min_age=st.none() | st.integers(0, 21),
    languages=_names(["en", "EN", "tr", " es", "fr", "de", ""]),
    countries=_names(["Turkey", "india", "United States", "Spain", "Mars"]),
    genres=_names(["Drama", "drama", "Comedy", "Family", "Kids", "Western"]),
    types=_names(["movie", "series"]),
    year_min=st.none() | st.integers(1995, 2025),
    year_max=st.none() | st.integers(1995, 2025),
    max_seasons=st.none() | st.integers(0, 10),
    max_episodes=st.none() | st.integers(0, 200),
    max_duration_min=st.none() | st.floats(10, 200),
)


@settings(max_examples=150, deadline=None)
@given(request=CONSTRAINTS, profile=CONSTRAINTS)
def test_merged_constraints_never_let_an_excluded_item_through(
    request: Constraints, profile: Constraints
) -> None:
    merged = request.merge(profile)
    allowed = FACTS.allowed(merged)
    for i, row in enumerate(ROWS):
        assert bool(allowed[i]) == _reference(row, merged), (i, merged)
    assert not (allowed & ~FACTS.allowed(request)).any()
    assert not (allowed & ~FACTS.allowed(profile)).any()


def test_disjoint_lists_merge_to_nothing_allowed() -> None:
    merged = Constraints(languages=("en",)).merge(Constraints(languages=("tr",)))
    assert not FACTS.allowed(merged).any()


def test_allowed_is_cached_and_read_only() -> None:
    facts = CatalogFacts.from_catalog(_frame())
    first = facts.allowed(Constraints(genres=("drama",), year_min=2000))
    again = facts.allowed(Constraints(genres=("drama",), year_min=2000))  # equal, new object
    assert again is first
    assert not first.flags.writeable
    with pytest.raises(ValueError):
        first[0] = not first[0]
    for age in range(300):  # the LRU stays bounded and evicts the oldest
        facts.allowed(Constraints(max_min_age=age))
    assert len(facts._cache) <= 256
    recomputed = facts.allowed(Constraints(genres=("drama",), year_min=2000))
    assert recomputed is not first
    np.testing.assert_array_equal(recomputed, first)
    unhashable = Constraints(genres=["drama"])  # type: ignore[arg-type]
    expected = FACTS.allowed(Constraints(genres=("drama",)))
    np.testing.assert_array_equal(facts.allowed(unhashable), expected)


def test_freshness() -> None:
    fresh = FACTS.freshness(now_year=2023, years=5)
    assert fresh.dtype == np.float32
    expected = [0.4, 0.0, 0.8, 0.0, 0.0, 1.0, 0.0, 0.6, 0.0, 0.0]
    np.testing.assert_allclose(fresh, expected, atol=1e-6)
    assert FACTS.freshness(now_year=2019, years=2)[5] == 1.0  # a future year is fresh, capped
    with pytest.raises(ValueError):
        FACTS.freshness(2023, 0)


def test_preference_match() -> None:
    items = np.array([0, 4, 5, 3], dtype=np.int64)
    assert FACTS.preference_match(items).tolist() == [0.0, 0.0, 0.0, 0.0]
    two = FACTS.preference_match(items, genres=("drama",), languages=("EN",))
    np.testing.assert_allclose(two, [1.0, 0.5, 0.5, 0.0])
    three = FACTS.preference_match(
        items, genres=("drama",), languages=("en",), countries=("turkey",)
    )
    assert three.dtype == np.float32
    np.testing.assert_allclose(three, [2 / 3, 2 / 3, 1 / 3, 0.0], rtol=1e-6)
    assert FACTS.preference_match(np.zeros(0, dtype=np.int64), genres=("drama",)).shape == (0,)
    with pytest.raises(ValueError):
        FACTS.preference_match(np.array([len(ROWS)]), genres=("drama",))


@pytest.mark.parametrize(
    ("value", "age"), [("PG-13", 13), ("TV-MA", 17), (16, 16), ("16+", 16), ("16", 16), ("G", 0)]
)
def test_mapping_resolves_age_labels(value: object, age: int) -> None:
    assert constraints_from_mapping({"max_age_rating": value}).max_min_age == age


def test_mapping_builds_constraints() -> None:
    c = constraints_from_mapping(
        {"max_age_rating": "PG-13", "languages": ["TR", " tr"], "year_min": 2020,
         "types": "Series", "genres": None, "max_duration_min": 90, "max_seasons": "3"}
    )  # fmt: skip
    assert c == Constraints(max_min_age=13, languages=("tr",), year_min=2020, types=("series",),
                            max_duration_min=90.0, max_seasons=3)  # fmt: skip
    assert constraints_from_mapping({}) == Constraints()


def test_request_and_profile_merge_through_mappings() -> None:
    request = constraints_from_mapping({"languages": ["TR", "en"], "year_min": 2015})
    profile = constraints_from_mapping({"max_age_rating": "TV-14", "languages": ["tr"]})
    merged = request.merge(profile)
    assert merged == Constraints(max_min_age=14, languages=("tr",), year_min=2015)
    assert _set(FACTS.allowed(merged)) == {2, 4}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"max_age": 12, "language": "tr"}, "max_age"),
        ({"language": "tr"}, "language"),
        ({"max_age_rating": "XYZ"}, "max_age_rating"),
        ({"max_age_rating": "NR"}, "max_age_rating"),
        ({"max_age_rating": 40}, "max_age_rating"),
        ({"max_min_age": True}, "max_min_age"),
        ({"max_age_rating": 12, "max_min_age": 12}, "max_min_age"),
        ({"types": ["show"]}, "types"),
        ({"languages": [1]}, "languages"),
        ({"countries": 5}, "countries"),
        ({"year_min": "abc"}, "year_min"),
        ({"year_min": 2020, "year_max": 2010}, "year_min"),
        ({"max_seasons": -1}, "max_seasons"),
        ({"max_episodes": 2.5}, "max_episodes"),
        ({"max_duration_min": math.inf}, "max_duration_min"),
        ({"max_duration_min": "long"}, "max_duration_min"),
    ],
)
def test_mapping_rejects_bad_input_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ConstraintError, match=re.escape(f"'{field}'")):
        constraints_from_mapping(data)


def test_constraint_error_is_a_cinerec_value_error() -> None:
    with pytest.raises(CinerecError):
        constraints_from_mapping(["languages"])  # type: ignore[arg-type]
    assert issubclass(ConstraintError, ValueError)
