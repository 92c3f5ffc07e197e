"""Normalise age-rating labels from different rating systems to one minimum viewer age.

Catalogs mix US film ratings (MPAA), US TV parental guidelines and Amazon Prime's own
"13+"-style labels. Filtering recommendations by a viewer's age needs one scale, so every
known label maps to the youngest age the label deems suitable *without* an adult:

===============================  ====  ==================================================
label                            age   why
===============================  ====  ==================================================
G, TV-G, TV-Y, ALL, ALL_AGES       0   suitable for all ages
TV-Y7, TV-Y7-FV, 7+                7   "directed to children age 7 and older"
PG, TV-PG                          8   parental guidance advised, no stated age; 8 sits
                                       between the 7+ kids tier and 13 and keeps film and
                                       TV "PG" on the same step
PG-13, 13+                        13   stated age
TV-14                             14   stated age
16+, AGES_16_                     16   stated age
R, TV-MA                          17   R: under 17 needs an adult; TV-MA: "may be
                                       unsuitable for children under 17"
NC-17, 18+, AGES_18_              18   no one 17 or under admitted
NR, UR, UNRATED, NOT RATED,      None  explicitly not rated: the age is unknown, which is
TV-NR, NOT_RATE                        not the same as "all ages"
===============================  ====  ==================================================

Bare numbers with an optional plus ("16", "12+") and Prime's ``AGES_<n>_`` map to ``n``.
Any other label is unknown and maps to ``None`` rather than to a guess.

Source quirk: some catalog rows hold a *duration* ("74 min", "1 Season") in the rating
column. :func:`looks_like_duration` detects those so a loader can move the value to the
duration field; :func:`min_age` treats them as unknown.
"""

from __future__ import annotations

import re
from typing import Final

import pandas as pd

__all__ = [
    "DURATION_PATTERN",
    "KNOWN_LABELS",
    "canonical_label",
    "looks_like_duration",
    "min_age",
    "min_ages",
]

#: A duration as the streaming catalogs write it: "90 min", "1 Season", "3 Seasons".
DURATION_PATTERN: Final = re.compile(r"^\s*\d+\s*(?:min|mins|minutes?|seasons?)\s*$", re.IGNORECASE)

#: Canonical label (see :func:`canonical_label`) -> minimum viewer age, ``None`` = unrated.
KNOWN_LABELS: Final[dict[str, int | None]] = {
    # MPAA (US films)
    "G": 0,
    "PG": 8,
    "PG-13": 13,
    "R": 17,
    "NC-17": 18,
    # US TV parental guidelines
    "TV-Y": 0,
    "TV-G": 0,
    "TV-Y7": 7,
    "TV-Y7-FV": 7,
    "TV-PG": 8,
    "TV-14": 14,
    "TV-MA": 17,
    # Amazon Prime
    "ALL": 0,
    "ALL-AGES": 0,
    "7+": 7,
    "13+": 13,
    "16+": 16,
    "18+": 18,
    # explicitly not rated
    "NR": None,
    "UR": None,
    "UNRATED": None,
    "NOT RATED": None,
    "NOT-RATED": None,
    "NOT-RATE": None,
    "TV-NR": None,
}

_NUMBER: Final = re.compile(r"^(\d{1,2})\+?$")
_AGES: Final = re.compile(r"^AGES-(\d{1,2})-?$")


def canonical_label(label: object) -> str | None:
    """Upper-case, strip and unify separators ("ages_16_" -> "AGES-16-"); ``None`` if blank.

    Durations and non-strings are not labels and give ``None`` as well.
    """
    if not isinstance(label, str):
        return None
    text = re.sub(r"\s+", " ", label.strip().upper().replace("_", "-"))
    if not text or DURATION_PATTERN.match(text):
        return None
    return text


def looks_like_duration(label: object) -> bool:
    """True when a rating cell actually holds a duration such as "74 min" or "1 Season"."""
    return isinstance(label, str) and DURATION_PATTERN.match(label) is not None


def min_age(label: object) -> int | None:
    """The minimum viewer age for one rating label, or ``None`` when unrated or unknown.

    >>> min_age("PG-13"), min_age("tv-ma"), min_age("16+"), min_age("AGES_18_")
    (13, 17, 16, 18)
    >>> min_age("NR") is None, min_age("74 min") is None, min_age("XYZ") is None
    (True, True, True)
    """
    text = canonical_label(label)
    if text is None:
        return None
    if text in KNOWN_LABELS:
        return KNOWN_LABELS[text]
    match = _NUMBER.match(text) or _AGES.match(text)
    if match:
        age = int(match.group(1))
        return age if age <= 21 else None
    return None


def min_ages(labels: pd.Series) -> pd.Series:
    """Vectorised :func:`min_age`: a nullable ``Int32`` Series aligned with ``labels``.

    Each distinct label is resolved once, so a catalog with thousands of rows and a few
    dozen labels costs a few dozen look-ups plus one ``map``.
    """
    uniques = labels.dropna().unique()
    lookup = {label: min_age(label) for label in uniques}
    return labels.map(lookup).astype("Int32")
