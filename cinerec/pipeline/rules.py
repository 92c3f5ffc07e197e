"""Knowledge-based filtering: which catalog items a request's :class:`Constraints` allow.

Collaborative models know nothing of parental control, language or "series only", so the
pipeline applies those rules as a hard filter after recall. :class:`CatalogFacts` turns the
catalog's attribute columns into flat numpy arrays and sparse multi-hot matrices once, so
each constraint is one vectorised comparison over the whole catalog and the resulting mask
is cached per constraint value. The same facts give the soft signals re-ranking needs:
release freshness and how well an item matches stated (not enforced) preferences.
"""

from __future__ import annotations

import math
import numbers
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.age_rating import min_age
from cinerec.data.schemas import ITEM_TYPES
from cinerec.errors import CinerecError
from cinerec.pipeline.types import Constraints

__all__ = [
    "CatalogFacts",
    "ConstraintError",
    "constraints_from_mapping",
]

_CACHE_SIZE = 256


class ConstraintError(CinerecError, ValueError):
    """A constraint in a request or profile that cannot be understood; names the field."""


def _norm(value: object) -> str:
    """The case- and space-insensitive key a categorical value is matched by."""
    return str(value).strip().casefold()


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _int_column(catalog: pd.DataFrame, column: str) -> np.ndarray:
    """``column`` as int32 with -1 for missing / non-numeric values (all -1 when absent)."""
    if column not in catalog.columns:
        return np.full(len(catalog), -1, dtype=np.int32)
    numeric = pd.to_numeric(catalog[column], errors="coerce")
    values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(values), values, -1).astype(np.int32)


def _multi_hot(catalog: pd.DataFrame, column: str) -> tuple[sp.csr_matrix, list[str], list[str]]:
    """0/1 float32 CSR of a list (or scalar) column, its match keys and display names.

    Values are matched case-insensitively: "Drama" and " drama" share one column, shown
    with the first spelling met. Missing cells and empty lists give all-zero rows.
    """
    n = len(catalog)
    if column not in catalog.columns:
        return sp.csr_matrix((n, 0), dtype=np.float32), [], []
    cells = pd.Series(catalog[column].to_numpy(dtype=object), index=np.arange(n))
    exploded = cells.explode().dropna()
    original = exploded.astype(str).str.strip()
    original = original[original != ""]
    keys = original.str.casefold()
    codes, uniques = pd.factorize(keys, sort=True)
    names = original.groupby(codes).first()
    matrix = sp.csr_matrix(
        (np.ones(len(codes), dtype=np.float32), (keys.index.to_numpy(), codes)),
        shape=(n, len(uniques)),
    )
    matrix.data[:] = 1.0  # duplicates summed by the constructor become 1 again
    return matrix, [str(u) for u in uniques], [str(s) for s in names.to_numpy()]


def _indicator(keys: list[str], wanted: Iterable[str]) -> np.ndarray:
    """0/1 float32 vector over a vocabulary marking the wanted values (case-insensitive)."""
    lookup = {k: i for i, k in enumerate(keys)}
    vector = np.zeros(len(keys), dtype=np.float32)
    for value in wanted:
        column = lookup.get(_norm(value))
        if column is not None:
            vector[column] = 1.0
    return vector


@dataclass(eq=False)
class CatalogFacts:
    """Per-item attribute arrays built once from the catalog (row i = item index i).

    Constraints then cost a few vectorised numpy operations over the whole catalog rather
    than a Python loop per row. Unknown values are -1 for integer arrays (``year``,
    ``min_age``, ``seasons``, ``episodes``), NaN for ``duration_min`` and code -1 for
    ``language_codes``. Categorical values (language, countries, genres) are matched
    case-insensitively after stripping; "en" and "English" stay different values.
    All arrays are read-only.
    """

    n_items: int
    is_movie: np.ndarray  # bool
    is_series: np.ndarray  # bool
    year: np.ndarray  # int32
    min_age: np.ndarray  # int32
    seasons: np.ndarray  # int32
    episodes: np.ndarray  # int32
    duration_min: np.ndarray  # float32
    language_codes: np.ndarray  # int32 into language_keys
    language_keys: list[str]  # lower-cased, stripped
    countries: sp.csr_matrix  # (n_items, len(country_keys)) 0/1 float32
    country_keys: list[str]
    country_names: list[str]
    genres: sp.csr_matrix  # (n_items, len(genre_keys)) 0/1 float32
    genre_keys: list[str]
    genre_names: list[str]
    _cache: OrderedDict[Constraints, np.ndarray] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_catalog(cls, catalog: pd.DataFrame) -> CatalogFacts:
        """Build the facts from an items frame (columns of ``ITEMS_SCHEMA``; any may be absent)."""
        n = len(catalog)
        if "type" in catalog.columns:
            types = catalog["type"].astype("string").str.strip().str.casefold()
            is_movie = types.eq("movie").fillna(False).to_numpy(dtype=bool)
            is_series = types.eq("series").fillna(False).to_numpy(dtype=bool)
        else:
            is_movie = is_series = np.zeros(n, dtype=bool)
        if "duration_min" in catalog.columns:
            duration = pd.to_numeric(catalog["duration_min"], errors="coerce")
            duration_arr = duration.to_numpy(dtype=np.float32, na_value=np.nan)
        else:
            duration_arr = np.full(n, np.nan, dtype=np.float32)
        if "language" in catalog.columns:
            language = catalog["language"].astype("string").str.strip().str.casefold()
            language = language.mask(language.eq("").fillna(False))  # "" -> missing
            codes, uniques = pd.factorize(language, sort=True)
            language_codes, language_keys = codes.astype(np.int32), [str(u) for u in uniques]
        else:
            language_codes, language_keys = np.full(n, -1, dtype=np.int32), []
        countries, country_keys, country_names = _multi_hot(catalog, "country")
        genres, genre_keys, genre_names = _multi_hot(catalog, "genres")
        return cls(
            n_items=n,
            is_movie=_readonly(np.array(is_movie, dtype=bool)),
            is_series=_readonly(np.array(is_series, dtype=bool)),
            year=_readonly(_int_column(catalog, "year")),
            min_age=_readonly(_int_column(catalog, "min_age")),
            seasons=_readonly(_int_column(catalog, "seasons")),
            episodes=_readonly(_int_column(catalog, "episodes")),
            duration_min=_readonly(np.array(duration_arr, dtype=np.float32)),
            language_codes=_readonly(language_codes),
            language_keys=language_keys,
            countries=countries,
            country_keys=country_keys,
            country_names=country_names,
            genres=genres,
            genre_keys=genre_keys,
            genre_names=genre_names,
        )

    def allowed(self, constraints: Constraints) -> np.ndarray:
        """Read-only bool (n_items,) mask of the items ``constraints`` let through.

        Semantics (every set constraint must hold; empty ``Constraints`` allow everything):

        * ``max_min_age``: min_age known and <= the value. Unrated / unknown items are
          excluded under parental control — the safe default.
        * ``languages``: language known and among the values.
        * ``countries`` / ``genres``: the item's list shares at least one value.
        * ``types``: item type ("movie"/"series") among the values; unknown type excluded.
        * ``year_min`` / ``year_max``: year known and within the bounds (inclusive).
        * ``max_seasons`` / ``max_episodes``: only series are limited; a series whose
          count is known and over the limit is excluded. Unknown counts pass: these are
          upper bounds on commitment and many catalogs omit them. Movies always pass.
        * ``max_duration_min``: an item whose duration is known and over the limit is
          excluded (for series this is whatever the catalog stores, usually episode
          length); unknown duration passes.

        Results are cached per constraint value (LRU of 256), hence read-only.
        """
        try:
            hash(constraints)
        except TypeError:  # lists instead of tuples: correct but uncacheable
            return _readonly(self._compute(constraints))
        with self._lock:
            cached = self._cache.get(constraints)
            if cached is not None:
                self._cache.move_to_end(constraints)
                return cached
        mask = _readonly(self._compute(constraints))
        with self._lock:
            self._cache[constraints] = mask
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return mask

    def _compute(self, c: Constraints) -> np.ndarray:
        if c.impossible:
            return np.zeros(self.n_items, dtype=bool)
        mask = np.ones(self.n_items, dtype=bool)
        if c.max_min_age is not None:
            mask &= (self.min_age >= 0) & (self.min_age <= c.max_min_age)
        if c.languages:
            wanted = np.flatnonzero(_indicator(self.language_keys, c.languages))
            mask &= np.isin(self.language_codes, wanted)
        if c.countries:
            mask &= self.countries @ _indicator(self.country_keys, c.countries) > 0
        if c.genres:
            mask &= self.genres @ _indicator(self.genre_keys, c.genres) > 0
        if c.types:
            kinds = {_norm(t) for t in c.types}
            mask &= (self.is_movie & ("movie" in kinds)) | (self.is_series & ("series" in kinds))
        if c.year_min is not None:
            mask &= (self.year >= 0) & (self.year >= c.year_min)
        if c.year_max is not None:
            mask &= (self.year >= 0) & (self.year <= c.year_max)
        if c.max_seasons is not None:
            mask &= ~(self.is_series & (self.seasons > c.max_seasons))
        if c.max_episodes is not None:
            mask &= ~(self.is_series & (self.episodes > c.max_episodes))
        if c.max_duration_min is not None:
            mask &= ~(self.duration_min > c.max_duration_min)  # NaN compares False: passes
        return mask

    def freshness(self, now_year: int, years: float) -> np.ndarray:
        """float32 (n_items,) in [0, 1]: 1 for items from ``now_year`` (or later), falling
        linearly to 0 at ``years`` years old; 0 for unknown years. A re-ranking boost."""
        if not years > 0:
            raise ValueError(f"years must be positive, got {years}")
        age = (now_year - self.year).astype(np.float32)
        fresh = np.clip(1.0 - age / np.float32(years), 0.0, 1.0).astype(np.float32)
        fresh[self.year < 0] = 0.0
        return fresh

    def preference_match(
        self,
        items: np.ndarray,
        genres: tuple[str, ...] = (),
        languages: tuple[str, ...] = (),
        countries: tuple[str, ...] = (),
    ) -> np.ndarray:
        """float32 (len(items),) in [0, 1]: the share of the stated preference kinds each
        item matches (only non-empty kinds count; 0 when none are stated).

        Soft counterpart of :meth:`allowed`, used as a "rule boost" in re-ranking: an item
        in a preferred genre and language but not country scores 2/3.
        """
        rows = _checked_items(items, self.n_items)
        score = np.zeros(len(rows), dtype=np.float32)
        kinds = 0
        if genres:
            score += self.genres[rows] @ _indicator(self.genre_keys, genres) > 0
            kinds += 1
        if languages:
            wanted = np.flatnonzero(_indicator(self.language_keys, languages))
            score += np.isin(self.language_codes[rows], wanted)
            kinds += 1
        if countries:
            score += self.countries[rows] @ _indicator(self.country_keys, countries) > 0
            kinds += 1
        return score / np.float32(kinds) if kinds else score


def _checked_items(items: np.ndarray, n_items: int) -> np.ndarray:
    rows = np.asarray(items, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n_items):
        raise ValueError(f"item indices must lie in [0, {n_items}), got {rows.min()}..{rows.max()}")
    return rows


_ALIASES = {"max_age_rating": "max_min_age"}
_FIELDS = {f.name for f in fields(Constraints)}
_LISTS = ("languages", "countries", "genres", "types")


def _as_int(key: str, value: object, *, low: int = 0) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConstraintError(f"constraint '{key}': expected an integer, got {value!r}")
    if int(value) < low:
        raise ConstraintError(f"constraint '{key}': must be at least {low}, got {value}")
    return int(value)


def _as_age(key: str, value: object) -> int:
    if isinstance(value, str) and not value.strip().isdigit():
        age = min_age(value)
        if age is None:
            raise ConstraintError(f"constraint '{key}': unknown or unrated age label {value!r}")
        return age
    age = _as_int(key, value)
    if age > 21:
        raise ConstraintError(f"constraint '{key}': age {age} is beyond any rating (max 21)")
    return age


def _as_strings(key: str, value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set | frozenset | np.ndarray):
        raise ConstraintError(f"constraint '{key}': expected a list of strings, got {value!r}")
    out: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str):
            raise ConstraintError(f"constraint '{key}': expected strings, got {item!r}")
        if item.strip():
            out[_norm(item)] = None
    result = tuple(out)
    if key == "types" and (bad := [t for t in result if t not in ITEM_TYPES]):
        raise ConstraintError(f"constraint 'types': unknown type(s) {bad}; use {ITEM_TYPES}")
    return result


def constraints_from_mapping(data: Mapping[str, Any]) -> Constraints:
    """Build :class:`Constraints` from a request or profile dict (e.g. parsed JSON).

    Keys are the :class:`Constraints` field names, plus ``max_age_rating`` (alias of
    ``max_min_age``) which takes an age (13) or a rating label ("PG-13", "TV-MA", "16+")
    resolved through :mod:`cinerec.data.age_rating`. ``None`` values mean "no constraint";
    a single string is accepted for a list field. List values are lower-cased and stripped
    so that :meth:`Constraints.merge`, which intersects exactly, unifies "TR" and "tr".
    Unknown keys or bad values raise :class:`ConstraintError` naming the field.
    """
    if not isinstance(data, Mapping):
        raise ConstraintError(f"constraints must be a mapping, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in _FIELDS and k not in _ALIASES)
    if unknown:
        known = ", ".join(sorted(_FIELDS | set(_ALIASES)))
        raise ConstraintError(f"unknown constraint key(s) {unknown}; known keys: {known}")
    if all(k in data and data[k] is not None for k in ("max_age_rating", "max_min_age")):
        raise ConstraintError("give either 'max_age_rating' or 'max_min_age', not both")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        name = _ALIASES.get(key, key)
        if name == "max_min_age":
            values[name] = _as_age(key, value)
        elif name in _LISTS:
            values[name] = _as_strings(key, value)
        elif name != "max_duration_min":  # years, seasons, episodes
            values[name] = _as_int(key, value)
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConstraintError(f"constraint '{key}': expected a number, got {value!r}")
        elif not (math.isfinite(number := float(value)) and number > 0):
            raise ConstraintError(f"constraint '{key}': must be positive, got {value}")
        else:
            values[name] = number
    low, high = values.get("year_min"), values.get("year_max")
    if low is not None and high is not None and low > high:
        raise ConstraintError(f"constraint 'year_min': {low} is after year_max {high}")
    return Constraints(**values)
