"""Ranking features: one float32 row per candidate, in named groups.

The ranker sees everything that could tell a good candidate from a bad one, in five
groups (the neural ranker attends over them as units):

* ``models`` — each bundle model's score for the candidate: raw, z-scored within the
  candidate set and as a rank percentile (scales differ between users; ranks do not);
* ``sources`` — for each recall source whether it proposed the candidate and at which
  rank, plus the number of sources;
* ``item`` — popularity, age, series or film, content similarity to the latest items;
* ``user`` — history length, genre affinity to the candidate, popularity gap, days since
  the last event;
* ``context`` — hour of day and weekday (cyclic), device, whether the item comes from the
  viewer's country, and the stated-preference match (the knowledge rules' soft score).

The same :class:`FeatureBuilder` produces training rows (held-out interactions) and
request rows, so there is no training/serving skew.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import numpy as np
import scipy.sparse as sp

from cinerec.pipeline.recall import ScoreBoard, recent_unique
from cinerec.pipeline.state import UserHistory
from cinerec.pipeline.types import DEVICES, Candidates, Context

GROUPS = ("models", "sources", "item", "user", "context")
LAST_ITEMS = 5


def _zscore(values: np.ndarray) -> np.ndarray:
    if not len(values):
        return values
    std = float(values.std())
    return (values - values.mean()) / std if std > 0 else np.zeros_like(values)


def _percentile(values: np.ndarray) -> np.ndarray:
    """0 for the best (highest) value, 1 for the worst; ties share the better rank."""
    n = len(values)
    if n <= 1:
        return np.zeros(n, dtype=np.float32)
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(n, dtype=np.float32)
    ranks[order] = np.arange(n, dtype=np.float32)
    return ranks / (n - 1)


#: Item attribute matrices up to this many cells are kept dense for fast row lookups.
DENSE_ROWS_MAX: Final = 25_000_000


class DenseRows:
    """Dense float32 rows of a sparse item × attribute matrix (genres), by item index.

    A request reads a few hundred rows; scipy's fancy row indexing costs ~0.2 ms per call
    whatever the size, a dense copy's indexing a few microseconds. The copy is kept while
    it stays under :data:`DENSE_ROWS_MAX` cells (30k items × 125 genres: 15 MB); larger
    matrices are sliced sparsely.
    """

    def __init__(self, matrix: sp.spmatrix | sp.sparray) -> None:
        self.sparse = sp.csr_matrix(matrix, dtype=np.float32)
        n, g = self.sparse.shape
        self.dense = self.sparse.toarray() if n * g <= DENSE_ROWS_MAX else None

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), g) float32."""
        if self.dense is not None:
            return self.dense[rows]
        return np.asarray(self.sparse[rows].toarray(), dtype=np.float32)


class FeatureBuilder:
    """Builds the candidate feature matrix; ``names`` and ``groups`` describe its columns.

    ``popularity``: (n_items,) interaction counts; ``years``: (n_items,) release year
    (NaN unknown); ``is_series``: bool (n_items,); ``genres``: CSR (n_items, g) 0/1;
    ``vectors``: unit content vectors (n_items, d) or None, the item vectors of model
    ``content_model`` (its scores reuse the gathered rows); ``countries``: a callable
    country → bool (n_items,) mask, or None; ``recent_scores``: a callable score board →
    (n_items,) item-to-item scores from the latest items, or None.
    """

    def __init__(
        self,
        model_names: list[str],
        source_names: tuple[str, ...],
        *,
        popularity: np.ndarray,
        years: np.ndarray,
        is_series: np.ndarray,
        genres: sp.csr_matrix,
        vectors: np.ndarray | None = None,
        content_model: str | None = None,
        countries: Callable[[str], np.ndarray | None] | None = None,
        recent_scores: Callable[[ScoreBoard], np.ndarray | None] | None = None,
    ) -> None:
        self.model_names = list(model_names)
        self.source_names = tuple(source_names)
        self.log_pop = np.log1p(np.asarray(popularity, dtype=np.float32))
        self.years = np.asarray(years, dtype=np.float32)
        self.is_series = np.asarray(is_series, dtype=np.float32)
        genres = sp.csr_matrix(genres, dtype=np.float32)
        norms = np.sqrt(np.asarray(genres.multiply(genres).sum(axis=1)).ravel())
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        self.genres = DenseRows(sp.diags(inverse) @ genres)
        self.vectors = vectors
        self.content_model = content_model if vectors is not None else None
        self.countries = countries
        self.recent_scores = recent_scores
        self.names, self.groups = self._layout()

    def _layout(self) -> tuple[tuple[str, ...], dict[str, tuple[int, ...]]]:
        columns: dict[str, list[str]] = {
            "models": [f"{kind}.{m}" for m in self.model_names for kind in ("score", "z", "pct")],
            "sources": [
                *(f"{kind}.{s}" for s in self.source_names for kind in ("in", "rank")),
                "n_sources",
            ],
            "item": ["log_pop", "years_old", "is_series", "sim_last", "recent_i2i"],
            "user": ["log_history", "genre_affinity", "pop_gap", "days_since_last"],
            "context": [
                "hour_sin",
                "hour_cos",
                "weekday",
                *(f"device.{d}" for d in DEVICES),
                "country_match",
                "pref_match",
            ],
        }
        names: list[str] = []
        groups: dict[str, tuple[int, ...]] = {}
        for group in GROUPS:
            groups[group] = tuple(range(len(names), len(names) + len(columns[group])))
            names.extend(columns[group])
        return tuple(names), groups

    def fusion_columns(self) -> dict[str, str]:
        """Late-fusion roles → feature names: cf, content, sequence, rule (+ popularity)."""
        roles: dict[str, str] = {}
        for role, options in (
            ("cf", ("ease", "als", "itemknn", "bpr")),
            ("content", ("content",)),
            ("sequence", ("sasrec",)),
            ("popularity", ("pop", "trending")),
        ):
            found = next((m for m in options if m in self.model_names), None)
            if found:
                roles[role] = f"z.{found}"
        if "sequence" not in roles:
            roles["sequence"] = "recent_i2i"
        roles["rule"] = "pref_match"
        return roles

    def build(
        self,
        candidates: Candidates,
        board: ScoreBoard,
        history: UserHistory,
        context: Context,
        *,
        preference: np.ndarray | None = None,
    ) -> np.ndarray:
        """The (n, len(names)) float32 feature matrix of ``candidates``."""
        items = candidates.items
        n = len(items)
        out = np.zeros((n, len(self.names)), dtype=np.float32)
        col = 0
        # The candidates' content vectors, gathered once: the content model's scores and
        # the similarity to the latest items both read them.
        candidate_vectors = self.vectors[items] if self.vectors is not None else None
        for name in self.model_names:
            rows = candidate_vectors if name == self.content_model else None
            raw = board.get_items(name, items, rows).astype(np.float32)
            out[:, col] = raw
            out[:, col + 1] = _zscore(raw)
            out[:, col + 2] = _percentile(raw)
            col += 3
        ranks = candidates.source_ranks
        for s in range(len(self.source_names)):
            hit = ranks[:, s] > 0
            out[:, col] = hit
            out[:, col + 1] = np.where(hit, np.log1p(ranks[:, s]), np.nan)
            col += 2
        out[:, col] = (ranks > 0).sum(axis=1)
        col += 1

        when = context.timestamp or datetime.fromtimestamp(
            float(history.times[-1]) if len(history) else 0.0, tz=UTC
        )
        now_year = when.year
        out[:, col] = self.log_pop[items]
        out[:, col + 1] = now_year - self.years[items]
        out[:, col + 2] = self.is_series[items]
        out[:, col + 3] = self._similarity_to_last(candidate_vectors, history)
        recent = self.recent_scores(board) if self.recent_scores is not None else None
        out[:, col + 4] = recent[items] if recent is not None else 0.0
        col += 5

        h = len(history)
        out[:, col] = np.log1p(h)
        out[:, col + 1] = self._genre_affinity(items, history)
        history_pop = float(self.log_pop[history.items].mean()) if h else 0.0
        out[:, col + 2] = self.log_pop[items] - history_pop
        last = float(history.times[-1]) if h else np.nan
        out[:, col + 3] = (when.timestamp() - last) / 86400.0 if h else np.nan
        col += 4

        hour = when.hour + when.minute / 60.0
        out[:, col] = np.sin(2 * np.pi * hour / 24)
        out[:, col + 1] = np.cos(2 * np.pi * hour / 24)
        out[:, col + 2] = when.weekday() / 6.0
        if context.device in DEVICES:
            out[:, col + 3 + DEVICES.index(context.device)] = 1.0
        col += 3 + len(DEVICES)
        if context.country and self.countries is not None:
            mask = self.countries(context.country)
            if mask is not None:
                out[:, col] = mask[items]
        out[:, col + 1] = 0.0 if preference is None else preference
        return out

    def _genre_affinity(self, items: np.ndarray, history: UserHistory) -> np.ndarray:
        if not len(history):
            return np.zeros(len(items), dtype=np.float32)
        profile = history.weights @ self.genres(history.items)
        norm = float(np.linalg.norm(profile))
        if norm == 0:
            return np.zeros(len(items), dtype=np.float32)
        return np.asarray(self.genres(items) @ (profile / norm), dtype=np.float32)

    def _similarity_to_last(
        self, candidate_vectors: np.ndarray | None, history: UserHistory
    ) -> np.ndarray | float:
        if self.vectors is None or candidate_vectors is None or not len(history):
            return 0.0
        last = recent_unique(history.items, LAST_ITEMS)
        return (candidate_vectors @ self.vectors[last].T).max(axis=1)
