"""Import a user's own CSV / TSV / Parquet files into cinerec's schemas.

A column mapping renames source columns to schema names, given as a dict
(``{"item_id": "movieId"}``) or a string (``"user_id=userId,item_id=movieId,value=rating"``).
One mapping serves all three tables; ``items.title=name`` limits a key to one table.
Columns already named like the schema need no mapping. Rows are then validated by
:mod:`cinerec.data.validate`, strictly (first problem raises) or leniently (dropped and
counted in ``Dataset.info["validation"]``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from cinerec.data.dataset import Dataset
from cinerec.data.schemas import SCHEMAS, empty_frame, with_all_columns
from cinerec.data.signals import derive_sessions
from cinerec.data.tables import read_table
from cinerec.data.validate import (
    DEFAULT_RATING_RANGE,
    ValidationReport,
    validate_interactions,
    validate_items,
    validate_users,
)
from cinerec.errors import DataError

TABLES: Final = ("interactions", "items", "users")
LIST_COLUMNS: Final = {
    "items": ("genres", "tags", "cast", "director", "country"),
    "users": ("preferred_languages", "preferred_genres"),
    "interactions": (),
}

Mapping_ = Mapping[str, str] | str | None


def parse_mapping(mapping: Mapping_) -> dict[str, str]:
    """Normalise a mapping to ``{target: source}``; DataError on a malformed string.

    Targets may be qualified with a table (``items.title``). Unknown targets are refused so
    that a typo does not silently leave a column unmapped.
    """
    if mapping is None:
        return {}
    if isinstance(mapping, str):
        pairs: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in mapping.split(","))):
            target, sep, source = part.partition("=")
            if not sep or not target.strip() or not source.strip():
                raise DataError(f"mapping entry {part!r} is not of the form target=source")
            pairs[target.strip()] = source.strip()
        mapping = pairs
    known = {f.name for schema in SCHEMAS.values() for f in schema}
    result: dict[str, str] = {}
    for target, source in mapping.items():
        table, _, column = target.rpartition(".")
        if (
            (table and table not in TABLES)
            or column not in known
            or (table and column not in SCHEMAS[table].names)
        ):
            raise DataError(f"mapping target {target!r} is not a column of cinerec's schemas")
        result[target] = str(source)
    return result


def apply_mapping(
    frame: pd.DataFrame, table: str, mapping: Mapping[str, str], file: str
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Select and rename ``frame``'s columns for ``table``; returns ``(frame, names)``.

    ``names`` maps schema columns back to source names for messages. A target mapped for
    this table alone (qualified, or a column only this table has) must exist in the file.
    """
    schema_names = SCHEMAS[table].names
    owners = {name: [t for t in TABLES if name in SCHEMAS[t].names] for name in schema_names}
    selected: dict[str, str] = {}
    for column in schema_names:
        qualified = mapping.get(f"{table}.{column}")
        source = qualified or mapping.get(column)
        if source is not None and source in frame.columns:
            selected[column] = source
        elif column in frame.columns:
            selected[column] = column
        elif source is not None and (qualified or len(owners[column]) == 1):
            raise DataError(
                f"mapped column {source!r} (for {column}) is not in the file", file=file
            )
    out = frame[list(selected.values())].copy()
    out.columns = list(selected.keys())
    names = {col: src for col, src in selected.items()}
    for column in schema_names:
        names.setdefault(column, mapping.get(f"{table}.{column}") or mapping.get(column) or column)
    return out, names


def split_lists(column: pd.Series, sep: str | None = None) -> pd.Series:
    """Turn ``"a|b"`` / ``"a, b"`` strings into lists of stripped, non-empty strings.

    ``sep=None`` picks ``|`` when any value contains one, else ``,``. Values that already
    are lists (Parquet) are kept; missing values become empty lists.
    """
    values = column.to_numpy(dtype=object)
    is_text = np.array([isinstance(v, str) for v in values], dtype=bool)
    text = pd.Series(values[is_text], dtype="str")
    if sep is None:
        sep = "|" if text.str.contains("|", regex=False).any() else ","
    pieces = text.str.split(sep, regex=False).explode().str.strip()
    pieces = pieces[pieces.notna() & (pieces != "")]
    grouped = pieces.groupby(level=0).agg(list)
    split = [grouped.get(i, []) for i in range(len(text))]
    result: list[list[str]] = [[] for _ in range(len(values))]
    for position, lst in zip(np.flatnonzero(is_text), split, strict=True):
        result[position] = lst
    for position in np.flatnonzero(~is_text):
        value = values[position]
        if isinstance(value, list | tuple | np.ndarray):
            result[position] = [str(v).strip() for v in value if str(v).strip()]
    return pd.Series(result, index=column.index, dtype=object)


def import_table(
    path: str | Path,
    table: str,
    *,
    mapping: Mapping_ = None,
    strict: bool = True,
    list_sep: str | None = None,
    sep: str | None = None,
    item_ids: pd.Index | None = None,
    rating_range: tuple[float, float] | None = DEFAULT_RATING_RANGE,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read, map and validate one table file; returns the schema frame and its report.

    For interactions without an ``event`` column the event is ``rating`` when a ``value``
    column exists, else ``view``; a missing value means 1.0.
    """
    file = Path(path).name
    frame, names = apply_mapping(read_table(path, sep=sep), table, parse_mapping(mapping), file)
    for column in LIST_COLUMNS[table]:
        if column in frame.columns:
            frame[column] = split_lists(frame[column], list_sep)
    if table == "interactions":
        if "event" not in frame.columns:
            frame["event"] = "rating" if "value" in frame.columns else "view"
        return validate_interactions(
            frame,
            file=file,
            strict=strict,
            item_ids=item_ids,
            rating_range=rating_range,
            names=names,
        )
    if table == "items":
        return validate_items(frame, file=file, strict=strict, names=names)
    if table == "users":
        return validate_users(frame, file=file, strict=strict, names=names)
    raise DataError(f"unknown table {table!r}; known: {', '.join(TABLES)}")


def import_dataset(
    interactions_path: str | Path,
    items_path: str | Path | None = None,
    users_path: str | Path | None = None,
    *,
    mapping: Mapping_ = None,
    strict: bool = True,
    name: str | None = None,
    list_sep: str | None = None,
    rating_range: tuple[float, float] | None = DEFAULT_RATING_RANGE,
) -> Dataset:
    """Import a user's files into a :class:`Dataset`.

    Interactions naming items missing from ``items_path`` raise (strict) or are dropped and
    counted (lenient); a file with no (valid) interaction at all raises. Without an items
    file the catalog is the interactions' item ids. Every table gets the schema columns
    its file lacks, as nulls: the dataset reads as its saved folder would (an
    interactions-only catalog has ``genres``, all missing).
    Lenient reports land in ``info["validation"]`` (one dict per file, see
    :meth:`ValidationReport.as_dict`) and ``info["dropped_rows"]``.
    """
    reports: list[ValidationReport] = []
    read = functools.partial(import_table, mapping=mapping, strict=strict, list_sep=list_sep)
    items: pd.DataFrame | None = None
    if items_path is not None:
        items, report = read(items_path, "items")
        reports.append(report)
    inter, report = read(
        interactions_path,
        "interactions",
        item_ids=None if items is None else pd.Index(items["item_id"]),
        rating_range=rating_range,
    )
    reports.append(report)
    if inter.empty:  # nothing to train or evaluate on: say so here, not in a later step
        left = f" of {report.rows_read} left after dropping bad rows" if report.rows_read else ""
        raise DataError(f"no interactions{left}", file=Path(interactions_path).name)
    if items is None:
        ids = pd.unique(inter["item_id"])
        items = pd.DataFrame({"item_id": pd.Series(ids, dtype="str")})
    if "watch_seconds" not in inter.columns:
        inter["watch_seconds"] = np.float32("nan")
    inter["session_id"] = derive_sessions(inter)
    users = empty_frame("users")
    if users_path is not None:
        users, report = read(users_path, "users")
        reports.append(report)
    info: dict[str, object] = {"source": str(Path(interactions_path).resolve().parent)}
    dropped = sum(r.rows_dropped for r in reports)
    if dropped:
        info["dropped_rows"] = dropped
        info["validation"] = [r.as_dict() for r in reports if not r.ok]
    return Dataset(
        name or Path(interactions_path).stem,
        with_all_columns(items, "items"),
        with_all_columns(inter, "interactions"),
        users=with_all_columns(users, "users"),
        info=info,
    )
