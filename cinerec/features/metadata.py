"""Categorical metadata of catalog items as one sparse matrix of equally weighted blocks.

Blocks (each present only when the catalog has the column):

* ``genres``   — multi-hot genres;
* ``type``     — movie / series;
* ``country``  — the ``top_countries`` most frequent production countries, others "other";
* ``language`` — the ``top_languages`` most frequent languages, others "other";
* ``decade``   — release decade, ordinal (see below);
* ``age``      — minimum viewer age bucket (all, 7+, 13+, 16+, 18+), ordinal;
* ``length``   — duration bucket for movies, number-of-seasons bucket for series.

Ordinal blocks give the neighbouring buckets half weight, so a 1990s film is closer to a
2000s one than to a 1950s one. Every block is L2-normalised per item, so each block an
item has contributes equally to a cosine similarity however many values it holds (eight
genres do not outweigh one country); missing values give an all-zero block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.matrix import IdIndex
from cinerec.features.categorical import multi_hot

AGE_BUCKETS: Final = ((0, "all"), (7, "7+"), (13, "13+"), (16, "16+"), (18, "18+"))
MOVIE_MINUTES: Final = ((0, "<60min"), (60, "60-90min"), (90, "90-120min"), (120, "120-150min"),
                        (150, "150min+"))  # fmt: skip
SERIES_SEASONS: Final = ((1, "1season"), (2, "2-3seasons"), (4, "4-6seasons"), (7, "7+seasons"))
BLOCKS: Final = ("genres", "type", "country", "language", "decade", "age", "length")
_OTHER: Final = "other"
#: The catalog columns content features are made of: the metadata blocks' sources and
#: what :func:`~cinerec.features.text.compose_text` writes into an item's description.
DESCRIBING_COLUMNS: Final = ("title", "synopsis", "genres", "tags", "cast", "director", "type",
                             "year", "country", "language", "min_age", "duration_min",
                             "seasons")  # fmt: skip


@dataclass(frozen=True)
class MetadataFeatures:
    """The encoded metadata: a (n_items, n_features) float32 CSR with its column names.

    ``blocks`` maps each block name to its column slice; ``names`` are ``block:value``.
    """

    matrix: sp.csr_matrix
    names: list[str]
    blocks: dict[str, slice]


def metadata_features(
    catalog: pd.DataFrame,
    *,
    blocks: Sequence[str] = BLOCKS,
    top_countries: int = 20,
    top_languages: int = 20,
) -> MetadataFeatures:
    """Encode ``catalog`` rows (in row order — item-index order for a model's catalog)."""
    unknown = set(blocks) - set(BLOCKS)
    if unknown:
        raise ValueError(f"unknown metadata block(s) {sorted(unknown)}; known: {BLOCKS}")
    n = len(catalog)
    parts: list[sp.csr_matrix] = []
    names: list[str] = []
    slices: dict[str, slice] = {}
    for block in blocks:
        matrix, vocabulary = _encode_block(catalog, block, top_countries, top_languages)
        if matrix is None or matrix.shape[1] == 0:
            continue
        slices[block] = slice(len(names), len(names) + matrix.shape[1])
        parts.append(_normalise_rows(matrix))
        names.extend(f"{block}:{value}" for value in vocabulary)
    combined = sp.hstack(parts, format="csr", dtype=np.float32) if parts else None
    if combined is None:
        combined = sp.csr_matrix((n, 0), dtype=np.float32)
    return MetadataFeatures(combined, names, slices)


def describes_items(catalog: pd.DataFrame) -> bool:
    """True when some item has a value content features can be made of.

    A catalog of ids alone (interactions imported without an items file) gives every
    item the same empty description, so text and metadata vectors cannot tell items
    apart: content-based models have nothing to learn from it.
    """
    return any(
        _filled(catalog[column]) for column in DESCRIBING_COLUMNS if column in catalog.columns
    )


def _filled(column: pd.Series) -> bool:
    """Whether any cell holds a value: not missing, not a blank string, not an empty list."""
    for value in column.dropna():
        if isinstance(value, str):
            if value.strip():
                return True
        elif isinstance(value, list | tuple | np.ndarray):
            if len(value):
                return True
        else:
            return True
    return False


def _encode_block(
    catalog: pd.DataFrame, block: str, top_countries: int, top_languages: int
) -> tuple[sp.csr_matrix | None, list[str]]:
    if block in ("genres", "type"):
        return _multi_hot_values(catalog, block, None)
    if block == "country":
        return _multi_hot_values(catalog, "country", top_countries)
    if block == "language":
        return _multi_hot_values(catalog, "language", top_languages)
    if block == "decade":
        if "year" not in catalog.columns:
            return None, []
        year = pd.to_numeric(catalog["year"], errors="coerce").to_numpy(dtype=np.float64)
        decade = np.floor(year / 10) * 10
        known = np.unique(decade[np.isfinite(decade)])
        labels = [f"{int(d)}s" for d in known]
        return _ordinal(np.searchsorted(known, decade), np.isfinite(decade), len(known)), labels
    if block == "age":
        if "min_age" not in catalog.columns:
            return None, []
        return _bucketed(catalog["min_age"], AGE_BUCKETS, None)
    if block == "length":
        return _length(catalog)
    raise AssertionError(block)  # pragma: no cover - checked by the caller


def _multi_hot_values(
    catalog: pd.DataFrame, column: str, top: int | None
) -> tuple[sp.csr_matrix | None, list[str]]:
    if column not in catalog.columns:
        return None, []
    positions = [str(i) for i in range(len(catalog))]
    values = catalog[column].reset_index(drop=True)
    if top is not None:
        counts = values.explode().dropna().astype(str).value_counts()
        keep = set(counts.index[:top])
        values = values.map(lambda v: _capped(v, keep))
    frame = pd.DataFrame({"item_id": positions, column: values.to_numpy(dtype=object)})
    return multi_hot(frame, column, IdIndex(np.asarray(positions, dtype=object)))


def _capped(value: object, keep: set[str]) -> list[str]:
    """A cell's values with those outside ``keep`` replaced by "other"."""
    if isinstance(value, str):
        items: list[object] = [value]
    elif isinstance(value, list | tuple | np.ndarray):
        items = list(value)
    else:
        items = []
    return sorted({str(v) if str(v) in keep else _OTHER for v in items if v is not None})


def _bucketed(
    values: pd.Series, buckets: Sequence[tuple[int, str]], prefix: str | None
) -> tuple[sp.csr_matrix, list[str]]:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    known = np.isfinite(numbers)
    edges = np.asarray([edge for edge, _ in buckets], dtype=np.float64)
    codes = np.clip(np.searchsorted(edges, np.where(known, numbers, 0), side="right") - 1, 0, None)
    labels = [f"{prefix}:{label}" if prefix else label for _, label in buckets]
    return _ordinal(codes, known, len(buckets)), labels


def _length(catalog: pd.DataFrame) -> tuple[sp.csr_matrix | None, list[str]]:
    kind = catalog["type"].astype(object).to_numpy() if "type" in catalog.columns else None
    blocks, labels = [], []
    for column, buckets, wanted in (
        ("duration_min", MOVIE_MINUTES, "movie"),
        ("seasons", SERIES_SEASONS, "series"),
    ):
        if column not in catalog.columns:
            continue
        values = catalog[column].reset_index(drop=True)
        if kind is not None:
            values = values.where(pd.Series(kind == wanted))
        matrix, names = _bucketed(values, buckets, wanted)
        blocks.append(matrix)
        labels.extend(names)
    if not blocks:
        return None, []
    return sp.hstack(blocks, format="csr", dtype=np.float32), labels


def _ordinal(codes: np.ndarray, known: np.ndarray, n_values: int) -> sp.csr_matrix:
    """One-hot of ``codes`` with half weight on the two neighbouring buckets."""
    rows, cols, vals = [], [], []
    index = np.flatnonzero(known)
    for offset, weight in ((0, 1.0), (-1, 0.5), (1, 0.5)):
        target = codes[index] + offset
        valid = (target >= 0) & (target < n_values)
        rows.append(index[valid])
        cols.append(target[valid])
        vals.append(np.full(int(valid.sum()), weight, dtype=np.float32))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(codes), n_values),
        dtype=np.float32,
    )


def _normalise_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)
