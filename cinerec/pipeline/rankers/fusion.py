"""Weighted late fusion: ``w1·cf + w2·content + w3·sequence + w4·rule`` of z-scored columns.

Why: the transparent baseline the learned rankers must beat, and a safe fallback when
there is too little feedback to learn from — a handful of weights found by a small,
deterministic search, each one readable as "how much this signal counts".
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from cinerec.errors import ModelError
from cinerec.pipeline.rankers.base import QueryMetric, Ranker, RankingData, register

#: Role -> feature name when none are given (``FeatureBuilder.fusion_columns()`` gives
#: the columns of an actual bundle and should normally be passed instead).
DEFAULT_COLUMNS = {
    "cf": "z.ease",
    "content": "z.content",
    "sequence": "z.sasrec",
    "rule": "pref_match",
}
DEFAULT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0)


def zscore_groups(values: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
    """float64 (n, c) z-scores of each column of ``values`` (n, c) within each query.

    Non-finite values become 0 (the query mean); a column constant within a query is 0.
    """
    x = np.asarray(values, dtype=np.float64)
    sizes = np.asarray(group_sizes, dtype=np.int64)
    qid = np.repeat(np.arange(len(sizes)), sizes)
    out = np.zeros_like(x)
    for j in range(x.shape[1]):
        col = x[:, j]
        ok = np.isfinite(col)
        count = np.maximum(np.bincount(qid, weights=ok, minlength=len(sizes)), 1.0)
        mean = np.bincount(qid, weights=np.where(ok, col, 0.0), minlength=len(sizes)) / count
        dev = np.where(ok, col - mean[qid], 0.0)
        std = np.sqrt(np.bincount(qid, weights=dev * dev, minlength=len(sizes)) / count)
        scale = np.where(std > 1e-12, std, np.inf)[qid]
        out[:, j] = dev / scale
    return out


@register
class FusionRanker(Ranker):
    """Weighted sum of per-query z-scored role columns, weights tuned on NDCG@10.

    ``columns`` maps a role ("cf", "content", "sequence", "rule", ...) to a feature name;
    roles whose column is missing from the training features are dropped. Each used
    column is z-scored within its query (NaN -> 0, the query mean), at fit and predict
    time alike. Weights: coordinate ascent over ``grid`` per role, starting from all 1,
    sweeping roles in ``columns`` order until a sweep brings no improvement (at most
    ``max_sweeps``), on ``valid`` NDCG@10 (``train`` when ``valid`` is None). Ties keep
    the current weight, so the search is deterministic. Weights are non-negative: map
    roles to "higher is better" columns.

    ``predict`` treats its rows as ONE query; :meth:`predict_groups` handles many.
    """

    kind = "fusion"

    def __init__(self, columns: dict[str, str] | None = None, **params: Any) -> None:
        super().__init__(columns=dict(columns or DEFAULT_COLUMNS), **params)
        self.roles: dict[str, str] = {}
        self.weights: dict[str, float] = {}
        self._index = np.zeros(0, dtype=np.int64)
        self._w = np.zeros(0, dtype=np.float64)

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"columns": dict(DEFAULT_COLUMNS), "grid": list(DEFAULT_GRID), "max_sweeps": 4}

    def _use(self, roles: dict[str, str], weights: dict[str, float]) -> None:
        position = {name: i for i, name in enumerate(self.feature_names)}
        missing = [name for name in roles.values() if name not in position]
        if missing:
            raise ModelError(f"fusion ranker: columns {missing} not among the features")
        self.roles, self.weights = dict(roles), {r: float(weights[r]) for r in roles}
        self._index = np.array([position[name] for name in roles.values()], dtype=np.int64)
        self._w = np.array([self.weights[r] for r in roles], dtype=np.float64)

    def fit(
        self,
        train: RankingData,
        valid: RankingData | None = None,
        *,
        seed: int = 0,
        progress: bool = False,
    ) -> Self:
        """Search the weights (see the class docstring); ``seed`` is unused (deterministic)."""
        if valid is not None and valid.feature_names != train.feature_names:
            raise ModelError("fusion ranker: train and valid have different features")
        names = set(train.feature_names)
        roles = {r: c for r, c in self.params["columns"].items() if c in names}
        if not roles:
            raise ModelError(
                f"fusion ranker: none of the columns {self.params['columns']} is a feature"
            )
        self.feature_names = train.feature_names
        self._use(roles, dict.fromkeys(roles, 1.0))
        data = valid if valid is not None else train
        z = zscore_groups(data.features[:, self._index], data.group_sizes)
        metric = QueryMetric(data.labels, data.group_sizes, 10)
        w, best = self._search(z, metric, progress)
        self._use(roles, dict(zip(roles, w.tolist(), strict=True)))
        self.validation_ndcg = best if valid is not None else None
        return self

    def _search(
        self, z: np.ndarray, metric: QueryMetric, progress: bool
    ) -> tuple[np.ndarray, float]:
        grid = [float(v) for v in self.params["grid"]]
        w = np.ones(z.shape[1], dtype=np.float64)
        best = metric(z @ w)
        for sweep in range(max(1, int(self.params["max_sweeps"]))):
            improved = False
            for r in range(len(w)):
                for value in grid:
                    if value == w[r]:
                        continue
                    trial = w.copy()
                    trial[r] = value
                    score = metric(z @ trial)
                    if score > best + 1e-12:
                        w, best, improved = trial, score, True
            if progress:
                print(f"fusion sweep {sweep + 1}: ndcg@10={best:.4f} weights={w.tolist()}")
            if not improved:
                break
        return w, best

    def _predict(self, features: np.ndarray) -> np.ndarray:
        return self._fuse(features, np.array([len(features)], dtype=np.int64))

    def _fuse(self, features: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
        return (zscore_groups(features[:, self._index], group_sizes) @ self._w).astype(np.float32)

    def predict_groups(self, features: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
        """float32 (n,) scores, each query (``group_sizes`` (q,)) z-scored on its own."""
        x = self.check_features(features)
        sizes = np.asarray(group_sizes, dtype=np.int64).reshape(-1)
        if (sizes < 0).any() or int(sizes.sum()) != len(x):
            raise ModelError(f"group_sizes must be >= 0 and sum to {len(x)} rows")
        return self._fuse(x, sizes)

    def _state(self) -> dict[str, Any]:
        return {"roles": self.roles, "weights": self.weights}

    def _restore(self, state: dict[str, Any]) -> None:
        roles = {str(r): str(c) for r, c in state["roles"].items()}
        self._use(roles, {r: float(state["weights"][r]) for r in roles})
