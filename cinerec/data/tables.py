"""Read and write plain tables: CSV/TSV (delimiter guessed) or Parquet, by file extension."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa

from cinerec.data.io import atomic_path, write_parquet
from cinerec.errors import DataError

PARQUET_SUFFIXES: Final = (".parquet", ".pq")
DELIMITERS: Final = (",", "\t", ";", "|")


def read_table(path: str | Path, *, sep: str | None = None) -> pd.DataFrame:
    """Read a CSV/TSV (every column as text) or Parquet file.

    The delimiter is guessed from the header line (``,`` tab ``;`` ``|``) unless ``sep`` is
    given. A UTF-8 byte-order mark and CRLF line endings are handled; only truly empty
    cells count as missing (``"NA"`` stays a title).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return pd.read_parquet(path)
    if sep is None:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            header = handle.readline()
        sep = max(DELIMITERS, key=header.count) if any(d in header for d in DELIMITERS) else ","
    try:
        return pd.read_csv(
            path,
            sep=sep,
            dtype="str",
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8-sig",
        )
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read as {sep!r}-separated text: {exc}", file=path.name) from exc


def read_ids(path: str | Path, column: str) -> list[str]:
    """Ids from ``column`` of a table, or from a headerless file of one id a line."""
    frame = read_table(path)
    if column in frame.columns:
        return frame[column].dropna().astype(str).tolist()
    if frame.shape[1] == 1:
        first = str(frame.columns[0])
        return [first, *frame.iloc[:, 0].dropna().astype(str).tolist()]
    raise DataError(
        f"no '{column}' column (columns: {', '.join(map(str, frame.columns))})", file=str(path)
    )


def read_scored(path: str | Path) -> pd.DataFrame:
    """Recommendations of another system: user_id, item_id, score (and optional rank).

    Scores and ranks must be numbers; a bad cell raises a DataError naming its row.
    """
    frame = read_table(path)
    missing = [c for c in ("user_id", "item_id") if c not in frame.columns]
    if "score" not in frame.columns and "rank" not in frame.columns:
        missing.append("score (or rank)")
    if missing:
        raise DataError(f"missing column(s): {', '.join(missing)}", file=str(path))
    for column in ("score", "rank"):
        if column in frame.columns:
            numbers = pd.to_numeric(frame[column], errors="coerce")
            bad = numbers.isna() & frame[column].notna()
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0]) + 1
                raise DataError(
                    f"{frame[column].iloc[row - 1]!r} is not a number",
                    file=str(path),
                    row=row,
                    field=column,
                )
            frame[column] = numbers
    return frame


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` atomically as Parquet or CSV, by the extension of ``path``."""
    path = Path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)
        return
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
