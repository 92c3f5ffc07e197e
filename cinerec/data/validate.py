"""Validation of raw input frames, shared by every loader.

Loaders rename their source columns to the schema names (see :mod:`cinerec.data.schemas`)
and hand the frame here. Every check is vectorised (one boolean mask per check), so tens of
millions of rows validate in seconds.

* strict mode: the first problem (lowest row) raises :class:`~cinerec.errors.DataError`
  naming the file, the 1-based data row (header excluded) and the source field, e.g.
  ``ratings.csv, row 17, field 'rating': 7.5 is outside 0.5..5.0``;
* lenient mode: bad rows are dropped and counted per reason in a :class:`ValidationReport`
  that the caller surfaces.

A missing required column always raises: no row could be kept.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from cinerec.data.parsing import (
    as_id_strings,
    factorize_ids,
    parse_numbers,
    parse_timestamps,
    take_ids,
)
from cinerec.data.schemas import EVENTS, ITEM_TYPES, REQUIRED
from cinerec.errors import DataError

#: The default accepted rating range (MovieLens: half stars from 0.5 to 5.0).
DEFAULT_RATING_RANGE: Final = (0.5, 5.0)
MAX_EXAMPLES: Final = 5

ITEM_INT_COLUMNS: Final = ("year", "seasons", "episodes", "min_age")
ITEM_FLOAT_COLUMNS: Final = ("duration_min",)
ITEM_TEXT_COLUMNS: Final = ("title", "synopsis", "language", "age_rating")
USER_INT_COLUMNS: Final = ("age", "max_age_rating")
USER_TEXT_COLUMNS: Final = ("gender", "country")


@dataclass
class ValidationReport:
    """What lenient validation dropped from one file: counts per reason plus examples.

    ``examples`` holds the first few problems as full messages (``row 3, field 'x': ...``)
    so a person can find and fix them in the source.
    """

    file: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def rows_dropped(self) -> int:
        """Number of rows removed."""
        return self.rows_read - self.rows_kept

    @property
    def ok(self) -> bool:
        """True when nothing was dropped."""
        return self.rows_dropped == 0

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-friendly form (for ``Dataset.info`` and manifests)."""
        return {
            "file": self.file,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "dropped": dict(self.dropped),
            "examples": list(self.examples),
        }

    def describe(self) -> str:
        """One line for a person: how many rows were dropped and why."""
        if self.ok:
            return f"{self.file}: {self.rows_read} rows, all valid"
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.dropped.items())
        return f"{self.file}: dropped {self.rows_dropped} of {self.rows_read} rows ({reasons})"


@dataclass
class _Problem:
    reason: str
    column: str
    mask: np.ndarray
    describe: Callable[[int], str]


class _Checker:
    """Collects per-check masks over one frame, then raises (strict) or drops (lenient)."""

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        file: str,
        strict: bool,
        names: Mapping[str, str] | None,
        row_offset: int,
    ) -> None:
        self.frame = frame.reset_index(drop=True)
        self.file = file
        self.strict = strict
        self.names = dict(names or {})
        self.row_offset = row_offset
        self.problems: list[_Problem] = []
        self.codes: dict[str, tuple[np.ndarray, pd.Index]] = {}

    def name(self, column: str) -> str:
        return self.names.get(column, column)

    def require(self, columns: Collection[str]) -> None:
        missing = [self.name(c) for c in columns if c not in self.frame.columns]
        if missing:
            raise DataError(f"missing required column(s): {', '.join(missing)}", file=self.file)

    def flag(
        self, reason: str, column: str, mask: np.ndarray, describe: Callable[[int], str]
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.problems.append(_Problem(reason, column, mask, describe))

    def finish(self, out: pd.DataFrame) -> tuple[pd.DataFrame, ValidationReport]:
        n = len(self.frame)
        report = ValidationReport(self.file, rows_read=n, rows_kept=n)
        if not self.problems:
            return out, report
        if self.strict:
            first = min(
                ((int(np.argmax(p.mask)), k) for k, p in enumerate(self.problems)),
            )
            problem = self.problems[first[1]]
            raise DataError(
                problem.describe(first[0]),
                file=self.file,
                row=first[0] + 1 + self.row_offset,
                field=self.name(problem.column),
            )
        assigned = np.zeros(n, dtype=bool)
        candidates: list[tuple[int, str]] = []
        for p in self.problems:
            new = p.mask & ~assigned
            count = int(new.sum())
            if not count:
                continue
            assigned |= new
            report.dropped[p.reason] = report.dropped.get(p.reason, 0) + count
            for pos in np.flatnonzero(new)[:MAX_EXAMPLES]:
                row = int(pos) + 1 + self.row_offset
                message = f"row {row}, field '{self.name(p.column)}': {p.describe(int(pos))}"
                candidates.append((row, message))
        report.examples = [m for _, m in sorted(candidates)[:MAX_EXAMPLES]]
        report.rows_kept = n - int(assigned.sum())
        return out.loc[~assigned].reset_index(drop=True), report

    # -- checks that also convert -------------------------------------------------------

    def ids(self, column: str, what: str) -> pd.Series:
        codes, labels = factorize_ids(self.frame[column])
        self.codes[column] = (codes, labels)
        empty = (codes < 0) | (labels.str.len().to_numpy() == 0)[codes]
        self.flag(f"empty {what}", column, empty, lambda _i: f"empty {what}")
        return take_ids(labels, codes, self.frame.index)

    def numbers(self, column: str, *, integer: bool = False) -> np.ndarray:
        raw = self.frame[column]
        values, bad = parse_numbers(raw, integer=integer)
        kind = "an integer" if integer else "a number"
        self.flag("unparsable number", column, bad, lambda i: f"{_show(raw.iat[i])} is not {kind}")
        return values

    def timestamps(self, column: str, *, required: bool) -> pd.Series:
        raw = self.frame[column]
        stamps, bad = parse_timestamps(raw)
        self.flag("unparsable timestamp", column, bad, lambda i: _bad_time(raw.iat[i]))
        if required:
            missing = stamps.isna().to_numpy() & ~bad
            self.flag("empty timestamp", column, missing, lambda _i: "empty timestamp")
        return stamps

    def duplicates(self, ids: pd.Series, column: str, what: str) -> None:
        dup = ids.duplicated(keep="first").to_numpy() & ids.notna().to_numpy()
        if not dup.any():
            return
        first_row = (
            pd.Series(np.arange(len(ids)), index=ids.index).groupby(ids).transform("min").to_numpy()
        )

        def describe(i: int) -> str:
            first = int(first_row[i]) + 1 + self.row_offset
            return f"duplicate {what} {ids.iat[i]!r} (first seen in row {first})"

        self.flag(f"duplicate {what}", column, dup, describe)


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _bad_time(value: object) -> str:
    try:
        float(str(value))
    except ValueError:
        return f"{_show(value)} is neither epoch seconds nor an ISO 8601 time"
    return f"{_show(value)} is not epoch seconds between 1900 and 2200 (milliseconds?)"


def validate_interactions(
    frame: pd.DataFrame,
    *,
    file: str = "interactions",
    strict: bool = True,
    item_ids: pd.Series | pd.Index | Collection[str] | None = None,
    rating_range: tuple[float, float] | None = DEFAULT_RATING_RANGE,
    names: Mapping[str, str] | None = None,
    row_offset: int = 0,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check and normalise an interactions frame whose columns carry schema names.

    Checks: required columns, empty user/item ids, unparsable numbers and timestamps,
    unknown events (:data:`~cinerec.data.schemas.EVENTS`, case-insensitive), ratings
    missing or outside ``rating_range`` (``None`` disables it), and — when ``item_ids`` is
    given — items not in the catalog. A missing ``event`` column means ``rating``; a missing
    non-rating ``value`` means 1.0. ``names`` maps schema columns to source column names for
    messages. Returns the kept rows with schema dtypes and the report.
    """
    check = _Checker(frame, file=file, strict=strict, names=names, row_offset=row_offset)
    check.require(REQUIRED["interactions"])
    src = check.frame
    n = len(src)
    out = pd.DataFrame(
        {"user_id": check.ids("user_id", "user id"), "item_id": check.ids("item_id", "item id")}
    )
    if "event" in src.columns:
        raw_event = src["event"]
        codes, labels = factorize_ids(raw_event)
        labels = labels.str.lower()
        unknown = (codes < 0) | ~np.asarray(labels.isin(EVENTS), dtype=bool)[codes]
        allowed = ", ".join(EVENTS)
        check.flag(
            "unknown event",
            "event",
            unknown,
            lambda i: f"{_show(raw_event.iat[i])} is not an event ({allowed})",
        )
        event = take_ids(labels, codes, out.index)
    else:
        event = take_ids(pd.Index(["rating"], dtype="str"), np.zeros(n, np.int64), out.index)
    out["event"] = event
    is_rating = (event == "rating").to_numpy(dtype=bool)

    value = check.numbers("value") if "value" in src.columns else np.full(n, np.nan)
    no_value = np.isnan(value) & is_rating
    check.flag("missing rating", "value", no_value, lambda _i: "a rating needs a value")
    if rating_range is not None:
        lo, hi = rating_range
        with np.errstate(invalid="ignore"):
            outside = is_rating & ~np.isnan(value) & ((value < lo) | (value > hi))
        check.flag(
            "rating out of range",
            "value",
            outside,
            lambda i: f"{value[i]} is outside {float(lo)}..{float(hi)}",
        )
    out["value"] = np.where(np.isnan(value) & ~is_rating, 1.0, value).astype(np.float32)

    if "watch_seconds" in src.columns:
        out["watch_seconds"] = check.numbers("watch_seconds").astype(np.float32)
    out["timestamp"] = check.timestamps("timestamp", required=True)
    if "session_id" in src.columns:
        out["session_id"] = as_id_strings(src["session_id"])

    if item_ids is not None:
        known = item_ids if isinstance(item_ids, pd.Index) else pd.Index(list(item_ids))
        codes, labels = check.codes["item_id"]
        unknown_item = (codes >= 0) & ~np.asarray(labels.isin(known), dtype=bool)[codes]
        ids = out["item_id"]
        check.flag(
            "unknown item",
            "item_id",
            unknown_item,
            lambda i: f"item {ids.iat[i]!r} is not in the item table",
        )
    return check.finish(out)


def validate_items(
    frame: pd.DataFrame,
    *,
    file: str = "items",
    strict: bool = True,
    names: Mapping[str, str] | None = None,
    row_offset: int = 0,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check and normalise an items frame whose columns carry schema names.

    Checks: the ``item_id`` column, empty and duplicate item ids (the first occurrence is
    kept), unknown ``type`` (:data:`~cinerec.data.schemas.ITEM_TYPES`), unparsable numbers
    and ``date_added``. List columns are passed through unchanged (loaders split them).
    """
    check = _Checker(frame, file=file, strict=strict, names=names, row_offset=row_offset)
    check.require(REQUIRED["items"])
    src = check.frame
    out = src.copy()
    out["item_id"] = check.ids("item_id", "item id")
    check.duplicates(out["item_id"], "item_id", "item id")
    if "type" in src.columns:
        raw_type = src["type"]
        kind = as_id_strings(raw_type).str.lower()
        bad = (~kind.isin(ITEM_TYPES) & kind.notna() & (kind != "")).to_numpy(dtype=bool)
        allowed = ", ".join(ITEM_TYPES)
        check.flag(
            "unknown item type",
            "type",
            bad,
            lambda i: f"{_show(raw_type.iat[i])} is not an item type ({allowed})",
        )
        out["type"] = kind.where(kind != "")
    for column in ITEM_INT_COLUMNS:
        if column in src.columns:
            out[column] = pd.array(check.numbers(column, integer=True), dtype="Int32")
    for column in ITEM_FLOAT_COLUMNS:
        if column in src.columns:
            out[column] = check.numbers(column).astype(np.float32)
    for column in ITEM_TEXT_COLUMNS:
        if column in src.columns:
            out[column] = src[column].astype("str")
    if "date_added" in src.columns:
        out["date_added"] = check.timestamps("date_added", required=False)
    return check.finish(out)


def validate_users(
    frame: pd.DataFrame,
    *,
    file: str = "users",
    strict: bool = True,
    names: Mapping[str, str] | None = None,
    row_offset: int = 0,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check and normalise a users frame: empty/duplicate user ids and numeric fields."""
    check = _Checker(frame, file=file, strict=strict, names=names, row_offset=row_offset)
    check.require(REQUIRED["users"])
    src = check.frame
    out = src.copy()
    out["user_id"] = check.ids("user_id", "user id")
    check.duplicates(out["user_id"], "user_id", "user id")
    for column in USER_INT_COLUMNS:
        if column in src.columns:
            out[column] = pd.array(check.numbers(column, integer=True), dtype="Int32")
    for column in USER_TEXT_COLUMNS:
        if column in src.columns:
            out[column] = src[column].astype("str")
    return check.finish(out)
