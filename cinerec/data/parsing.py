"""Column parsers shared by the loaders: ids to strings, numbers and timestamps.

All are vectorised and return a mask of malformed cells next to the parsed values, so
:mod:`cinerec.data.validate` can report or drop exactly those rows.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

#: Epoch seconds outside 1900-01-01 .. 2200-01-01 are taken as a unit mistake (e.g. ms).
EPOCH_BOUNDS: Final = (-2_208_988_800, 7_258_118_400)


def factorize_ids(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``(codes, labels)`` with ids as stripped strings; code -1 marks a missing id.

    Integral floats lose their ``.0``. Each distinct value is converted once, so 25M
    MovieLens rows with 160k users cost little, and later checks can work on the labels.
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    if pd.api.types.is_float_dtype(uniques.dtype) and np.all(np.mod(uniques.to_numpy(), 1) == 0):
        uniques = uniques.astype("int64")
    if pd.api.types.is_integer_dtype(uniques.dtype):
        labels = uniques.astype("str")
    else:
        labels = pd.Index([str(u) for u in uniques], dtype="str").str.strip()
    return np.asarray(codes, dtype=np.int64), labels


def take_ids(labels: pd.Index, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """Expand ``(codes, labels)`` back to a ``str`` Series (code -1 becomes missing)."""
    values = labels.take(codes, allow_fill=True, fill_value=None)
    return pd.Series(values, index=index, dtype="str")


def as_id_strings(column: pd.Series) -> pd.Series:
    """Ids as strings (``str`` dtype, missing stays missing), see :func:`factorize_ids`."""
    codes, labels = factorize_ids(column)
    return take_ids(labels, codes, column.index)


def blank_cells(column: pd.Series) -> np.ndarray:
    """True where a value is missing or an all-whitespace string."""
    missing = column.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_datetime64_any_dtype(
        column.dtype
    ):
        return missing
    text = column.astype("str")
    return missing | (text.str.strip() == "").fillna(True).to_numpy(dtype=bool)


def parse_numbers(column: pd.Series, *, integer: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column to float64; returns ``(values, malformed_mask)``.

    Blank cells become NaN and are not malformed; ``integer=True`` also flags fractions.
    """
    if pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.zeros(len(column), dtype=bool)
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.zeros(len(column), dtype=bool)
    else:
        blank = blank_cells(column)
        parsed = pd.to_numeric(column.where(~blank), errors="coerce")
        values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(values) & ~blank
    bad |= np.isinf(values)
    if integer:
        with np.errstate(invalid="ignore"):
            bad |= np.isfinite(values) & (np.mod(values, 1) != 0)
    values = np.where(bad, np.nan, values)
    return values, bad


def parse_timestamps(column: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse epoch seconds or ISO 8601 strings to ``datetime64[s, UTC]``.

    Returns ``(timestamps, malformed_mask)``; blank cells become NaT and are not malformed.
    Naive datetimes and ISO strings without an offset are taken as UTC.
    """
    n = len(column)
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        out = column.dt.tz_convert("UTC").dt.as_unit("s")
        return out.reset_index(drop=True), np.zeros(n, dtype=bool)
    if pd.api.types.is_datetime64_dtype(column.dtype):
        out = column.dt.as_unit("s").dt.tz_localize("UTC")
        return out.reset_index(drop=True), np.zeros(n, dtype=bool)

    result = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        blank = column.isna().to_numpy()
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
        text_mask = np.zeros(n, dtype=bool)
    else:
        blank = blank_cells(column)
        numbers = pd.to_numeric(column.where(~blank), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        text_mask = np.isnan(numbers) & ~blank
    lo, hi = EPOCH_BOUNDS
    is_number = ~np.isnan(numbers)
    with np.errstate(invalid="ignore"):
        in_range = is_number & (numbers >= lo) & (numbers <= hi)
    result[in_range] = np.floor(numbers[in_range]).astype(np.int64).astype("datetime64[s]")
    bad = is_number & ~in_range
    if text_mask.any():
        text = column[text_mask].astype("str").str.strip()
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        ok = parsed.notna().to_numpy()
        positions = np.flatnonzero(text_mask)
        stamps = parsed.dt.tz_localize(None).dt.as_unit("s").to_numpy()
        result[positions[ok]] = stamps[ok]
        bad[positions[~ok]] = True
    out = pd.Series(result).dt.tz_localize("UTC")
    return out, bad
