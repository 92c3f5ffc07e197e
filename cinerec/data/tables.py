"""Read and write plain tables (CSV or Parquet, chosen by file extension)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from cinerec.data.io import atomic_path, write_parquet
from cinerec.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: str | Path, header_optional_column: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file into a frame of strings/numbers.

    With ``header_optional_column``, a CSV lacking that column header is read as a single
    headerless column of that name (a plain list of ids, one a line).
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=str(path))
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        frame = pd.read_csv(path, dtype={"user_id": str, "item_id": str})
    except (ValueError, OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read table: {exc}", file=str(path)) from exc
    if header_optional_column and header_optional_column not in frame.columns:
        frame = pd.read_csv(path, header=None, names=[header_optional_column], dtype=str)
    return frame


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` atomically as Parquet or CSV, by the extension of ``path``."""
    path = Path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)
        return
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
