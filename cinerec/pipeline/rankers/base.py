"""What every learned ranker shares: the training data, the metric, the interface, loading.

Recall hands the ranking stage ~1000 candidates per user request (a *query*), each with a
float32 feature row. :class:`RankingData` holds many queries as consecutive rows plus
their graded relevance labels; a :class:`Ranker` learns to order the rows of a query and
is compared with the others by :func:`ndcg_at_k` on held-out queries.

Rankers save to a folder as ``ranker.json`` (kind, feature names, parameters, small state)
plus kind-specific files in text or safetensors format — never pickle, so loading a
bundle cannot execute code. :func:`load_ranker` reads the kind and dispatches.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from cinerec.data.io import atomic_path
from cinerec.errors import ModelError

META_FILE = "ranker.json"
FORMAT_VERSION = 1

#: kind -> module defining it; imported on first use so torch/lightgbm load only if needed.
_KIND_MODULES = {
    "lightgbm": "cinerec.pipeline.rankers.gbdt",
    "neural": "cinerec.pipeline.rankers.neural",
    "fusion": "cinerec.pipeline.rankers.fusion",
}
_REGISTRY: dict[str, type[Ranker]] = {}


@dataclass
class RankingData:
    """Candidate rows grouped by query (the rows of one query are consecutive).

    Shapes: ``features`` float32 (n, f), NaN meaning "missing"; ``labels`` float32 (n,),
    graded relevance >= 0 where 0 is "not relevant"; ``group_sizes`` int64 (q,), the rows
    of each query in order, summing to n. ``feature_groups`` maps a group name ("models",
    "sources", "item", "user", "context", ...) to its column indices; every column belongs
    to exactly one group. Left empty, it becomes one group ``"all"`` holding every column.
    Inputs are converted to these dtypes and checked on construction.
    """

    features: np.ndarray
    labels: np.ndarray
    group_sizes: np.ndarray
    feature_names: tuple[str, ...]
    feature_groups: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.features = np.ascontiguousarray(self.features, dtype=np.float32)
        self.labels = np.ascontiguousarray(self.labels, dtype=np.float32).reshape(-1)
        self.group_sizes = np.ascontiguousarray(self.group_sizes, dtype=np.int64).reshape(-1)
        self.feature_names = tuple(str(name) for name in self.feature_names)
        if self.features.ndim != 2:
            raise ModelError(f"features must be 2-D (n, f), got shape {self.features.shape}")
        n, f = self.features.shape
        if len(self.labels) != n:
            raise ModelError(f"{len(self.labels)} labels for {n} feature rows")
        if (self.group_sizes < 0).any() or int(self.group_sizes.sum()) != n:
            raise ModelError(f"group_sizes must be >= 0 and sum to {n} rows")
        if np.isnan(self.labels).any() or (self.labels < 0).any():
            raise ModelError("labels must be finite and >= 0")
        if len(self.feature_names) != f or len(set(self.feature_names)) != f:
            raise ModelError(f"need {f} distinct feature names, got {len(self.feature_names)}")
        if not self.feature_groups:
            self.feature_groups = {"all": tuple(range(f))}
        self.feature_groups = {
            str(name): tuple(int(c) for c in cols) for name, cols in self.feature_groups.items()
        }
        used = sorted(c for cols in self.feature_groups.values() for c in cols)
        if used != list(range(f)) or any(not cols for cols in self.feature_groups.values()):
            raise ModelError("feature_groups must put every column in exactly one non-empty group")

    @property
    def n_queries(self) -> int:
        return len(self.group_sizes)

    def query_starts(self) -> np.ndarray:
        """int64 (q,): the first row of each query."""
        return np.cumsum(self.group_sizes) - self.group_sizes

    def subset_queries(self, query_idx: np.ndarray) -> RankingData:
        """The rows of queries ``query_idx`` (int array), in that order."""
        query_idx = np.asarray(query_idx, dtype=np.int64).reshape(-1)
        if query_idx.size and (query_idx.min() < 0 or query_idx.max() >= self.n_queries):
            raise ModelError(f"query index outside [0, {self.n_queries})")
        sizes = self.group_sizes[query_idx]
        rows = _group_rows(self.query_starts()[query_idx], sizes)
        return RankingData(
            self.features[rows],
            self.labels[rows],
            sizes,
            self.feature_names,
            dict(self.feature_groups),
        )


def _group_rows(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """int64 row indices of the row ranges ``[starts[i], starts[i] + sizes[i])``, in order."""
    offsets = np.cumsum(sizes) - sizes
    return np.repeat(starts - offsets, sizes) + np.arange(int(sizes.sum()), dtype=np.int64)


class QueryMetric:
    """NDCG@k of many score vectors against fixed labels; precomputes the ideal DCG.

    Gains are exponential, ``2**rel - 1``; the discount is ``1 / log2(rank + 2)`` for
    0-based ranks below ``k``. Rows are ordered by descending score, ties by row order (a
    stable sort), so the value is deterministic; NaN scores rank last. Queries without a
    positive label are left out of the mean; with none at all the metric is 0.0.
    """

    def __init__(self, labels: np.ndarray, group_sizes: np.ndarray, k: int = 10) -> None:
        labels = np.asarray(labels, dtype=np.float64).reshape(-1)
        sizes = np.asarray(group_sizes, dtype=np.int64).reshape(-1)
        if int(sizes.sum()) != len(labels) or (sizes < 0).any():
            raise ModelError(f"group_sizes must be >= 0 and sum to {len(labels)} rows")
        if k < 1:
            raise ModelError("k must be at least 1")
        self.k = k
        self.n_queries = len(sizes)
        self.qid = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        self.gains = np.exp2(labels) - 1.0
        self.rank = np.arange(len(labels), dtype=np.int64) - np.repeat(
            np.cumsum(sizes) - sizes, sizes
        )
        self.discount = np.where(self.rank < k, 1.0 / np.log2(self.rank + 2.0), 0.0)
        ideal = self._dcg(self._order(-labels))
        self.valid = ideal > 0
        self.ideal = np.where(self.valid, ideal, 1.0)

    def _order(self, keys: np.ndarray) -> np.ndarray:
        """Row order: by query, then ascending ``keys``, ties by row (two stable sorts)."""
        order = np.argsort(keys, kind="stable")
        return order[np.argsort(self.qid[order], kind="stable")]

    def _dcg(self, order: np.ndarray) -> np.ndarray:
        return np.bincount(
            self.qid, weights=self.gains[order] * self.discount, minlength=self.n_queries
        )

    def per_query(self, scores: np.ndarray) -> np.ndarray:
        """float64 (q,) NDCG@k of each query (NaN where a query has no positive label)."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(self.qid):
            raise ModelError(f"{len(scores)} scores for {len(self.qid)} rows")
        keys = np.where(np.isnan(scores), np.inf, -scores)
        ndcg = self._dcg(self._order(keys)) / self.ideal
        return np.where(self.valid, ndcg, np.nan)

    def __call__(self, scores: np.ndarray) -> float:
        if not self.valid.any():
            return 0.0
        return float(np.nanmean(self.per_query(scores)))


def ndcg_at_k(
    scores: np.ndarray, labels: np.ndarray, group_sizes: np.ndarray, k: int = 10
) -> float:
    """Mean NDCG@k over the queries that have at least one positive label.

    Exponential gains ``2**rel - 1`` (graded labels), discount ``1/log2(rank + 2)``; rows
    are ranked by descending score with ties broken by row order, so it is deterministic;
    NaN scores rank last. Returns 0.0 when no query has a positive label.
    """
    return QueryMetric(labels, group_sizes, k)(scores)


def register(cls: type[Ranker]) -> type[Ranker]:
    """Class decorator: make a ranker loadable and constructible by its ``kind``."""
    _REGISTRY[cls.kind] = cls
    return cls


def ranker_class(kind: str) -> type[Ranker]:
    """The ranker class for ``kind`` ("lightgbm", "neural" or "fusion")."""
    if kind not in _KIND_MODULES:
        raise ModelError(f"unknown ranker kind {kind!r} (known: {', '.join(_KIND_MODULES)})")
    importlib.import_module(_KIND_MODULES[kind])
    return _REGISTRY[kind]


def ranker_kinds() -> tuple[str, ...]:
    return tuple(_KIND_MODULES)


def make_ranker(kind: str, **params: Any) -> Ranker:
    """A new, unfitted ranker of ``kind`` with ``params`` (unknown names raise ModelError)."""
    return ranker_class(kind)(**params)


def load_ranker(folder: str | Path) -> Ranker:
    """Load a ranker saved by :meth:`Ranker.save`, whatever its kind."""
    return Ranker.load(folder)


class Ranker(ABC):
    """Orders the candidate rows of a query; all kinds share this interface.

    Subclasses declare ``kind`` and ``default_params`` and implement ``fit``,
    ``_predict`` (rows already checked and float32), ``_state`` / ``_restore`` (small
    JSON-able state) and optionally ``_save_files`` / ``_load_files`` for weights.
    ``feature_names`` is set by ``fit``; ``validation_ndcg`` is NDCG@10 on ``valid``.
    """

    kind: ClassVar[str]

    def __init__(self, **params: Any) -> None:
        defaults = self.default_params()
        unknown = set(params) - set(defaults)
        if unknown:
            raise ModelError(f"{self.kind} ranker: unknown parameter(s) {sorted(unknown)}")
        self.params: dict[str, Any] = {**defaults, **params}
        self.feature_names: tuple[str, ...] = ()
        self.validation_ndcg: float | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """Hyperparameters and their defaults (JSON-serialisable values)."""
        return {}

    @abstractmethod
    def fit(
        self,
        train: RankingData,
        valid: RankingData | None = None,
        *,
        seed: int = 0,
        progress: bool = False,
    ) -> Self:
        """Learn from ``train``; early-stop / select on ``valid`` NDCG@10 when given."""

    @abstractmethod
    def _predict(self, features: np.ndarray) -> np.ndarray: ...

    @property
    def is_fitted(self) -> bool:
        return bool(self.feature_names)

    def check_features(self, features: np.ndarray) -> np.ndarray:
        """``features`` as C-contiguous float32 (n, f); ModelError if unfitted or wrong f."""
        if not self.is_fitted:
            raise ModelError(f"{self.kind} ranker is not fitted")
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ModelError(
                f"{self.kind} ranker expects (n, {len(self.feature_names)}) features "
                f"{list(self.feature_names)[:5]}..., got shape {x.shape}"
            )
        return x

    def predict(self, features: np.ndarray) -> np.ndarray:
        """float32 (n,) scores, higher = better, for the rows of (typically) one query."""
        x = self.check_features(features)
        if len(x) == 0:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self._predict(x), dtype=np.float32).reshape(-1)

    def predict_groups(self, features: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
        """float32 (n,) scores for many queries (consecutive rows, ``group_sizes`` (q,))."""
        sizes = np.asarray(group_sizes, dtype=np.int64).reshape(-1)
        n = np.shape(features)[0] if np.ndim(features) else 0
        if (sizes < 0).any() or int(sizes.sum()) != n:
            raise ModelError(f"group_sizes must be >= 0 and sum to {n} rows")
        return self.predict(features)

    def evaluate(self, data: RankingData, k: int = 10) -> float:
        """NDCG@k of this ranker on ``data``."""
        return ndcg_at_k(
            self.predict_groups(data.features, data.group_sizes), data.labels, data.group_sizes, k
        )

    # ----- persistence -------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: dict[str, Any]) -> None:
        return None

    def _save_files(self, folder: Path) -> None:
        return None

    def _load_files(self, folder: Path) -> None:
        return None

    def save(self, folder: str | Path) -> None:
        """Write ``ranker.json`` plus kind files to ``folder`` atomically (replacing it)."""
        if not self.is_fitted:
            raise ModelError(f"{self.kind} ranker is not fitted; nothing to save")
        meta = {
            "kind": self.kind,
            "format_version": FORMAT_VERSION,
            "feature_names": list(self.feature_names),
            "validation_ndcg": self.validation_ndcg,
            "params": self.params,
            "state": self._state(),
        }
        with atomic_path(folder) as tmp:
            tmp.mkdir(parents=True)
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
            self._save_files(tmp)

    @classmethod
    def load(cls, folder: str | Path) -> Ranker:
        """Load a saved ranker; on the base class any kind, on a subclass only its own."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            kind = str(meta["kind"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{folder}: not a saved ranker ({exc})") from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{folder}: unsupported ranker format {meta.get('format_version')}")
        target = ranker_class(kind)
        if cls is not Ranker and target is not cls:
            raise ModelError(f"{folder} holds a {kind!r} ranker, not {cls.kind!r}")
        ranker = target(**meta.get("params", {}))
        ranker.feature_names = tuple(meta["feature_names"])
        value = meta.get("validation_ndcg")
        ranker.validation_ndcg = None if value is None else float(value)
        try:
            ranker._restore(meta.get("state", {}))
            ranker._load_files(folder)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{folder}: cannot load {kind} ranker ({exc})") from exc
        return ranker
