"""Age-rating labels -> minimum viewer age, on one scale across rating systems."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cinerec.data.age_rating import canonical_label, looks_like_duration, min_age, min_ages


@pytest.mark.parametrize(
    ("label", "age"),
    [
        # MPAA
        ("G", 0),
        ("PG", 8),
        ("PG-13", 13),
        ("R", 17),
        ("NC-17", 18),
        # US TV
        ("TV-Y", 0),
        ("TV-G", 0),
        ("TV-Y7", 7),
        ("TV-Y7-FV", 7),
        ("TV-PG", 8),
        ("TV-14", 14),
        ("TV-MA", 17),
        # Amazon Prime
        ("ALL", 0),
        ("ALL_AGES", 0),
        ("7+", 7),
        ("13+", 13),
        ("16+", 16),
        ("18+", 18),
        ("AGES_16_", 16),
        ("AGES_18_", 18),
        ("16", 16),
        # spelling variants
        (" tv-ma ", 17),
        ("pg-13", 13),
    ],
)
def test_known_labels(label: str, age: int) -> None:
    assert min_age(label) == age


@pytest.mark.parametrize(
    "label", ["NR", "UR", "UNRATED", "NOT RATED", "NOT_RATE", "TV-NR", "", "   ", "XYZ", "99+"]
)
def test_unrated_and_unknown_labels_are_none(label: str) -> None:
    assert min_age(label) is None


@pytest.mark.parametrize("label", ["74 min", "1 Season", "3 Seasons", " 90 min "])
def test_durations_in_the_rating_column_are_detected_and_unknown(label: str) -> None:
    assert looks_like_duration(label)
    assert min_age(label) is None
    assert canonical_label(label) is None


@pytest.mark.parametrize("label", ["PG-13", "16+", "TV-MA", None, 13])
def test_real_labels_are_not_durations(label: object) -> None:
    assert not looks_like_duration(label)


def test_non_strings_are_unknown() -> None:
    assert min_age(None) is None
    assert min_age(float("nan")) is None
    assert min_age(13) is None


def test_vectorised_matches_scalar_and_keeps_the_index() -> None:
    labels = pd.Series(
        ["PG-13", None, "TV-MA", "74 min", np.nan, "16+", "NR", "PG-13"], index=list("abcdefgh")
    )
    ages = min_ages(labels)
    assert str(ages.dtype) == "Int32"
    assert list(ages.index) == list("abcdefgh")
    expected = [13, None, 17, None, None, 16, None, 13]
    assert [None if pd.isna(v) else int(v) for v in ages] == expected


def test_vectorised_on_empty_series() -> None:
    assert len(min_ages(pd.Series([], dtype=object))) == 0
