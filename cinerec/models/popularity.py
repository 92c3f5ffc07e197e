"""Non-personalised baselines: all-time popularity and recent popularity ("trending").

Every personalised model has to beat these on the validation split; they also serve
cold-start users, who have no history to personalise from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.base import Model, register
from cinerec.models.space import SearchSpace

_DAY = 86_400.0


class _ItemScoreModel(Model):
    """A model whose score is one fixed value per item, the same for every user."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._check_params()
        self.item_scores: np.ndarray | None = None
        self._global: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _check_params(self) -> None:
        """Reject bad hyperparameter values early (ModelError)."""

    def score(
        self,
        user_idx: np.ndarray,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        user_idx = np.asarray(user_idx, dtype=np.int64)
        self.history(user_idx, user_items)  # validates fitted state, indices and shapes
        row = self._item_scores()
        if items is not None:
            row = row[np.asarray(items, dtype=np.int64)]
        return np.tile(row, (len(user_idx), 1))

    def _item_scores(self) -> np.ndarray:
        if self.item_scores is None:
            raise ModelError(f"{self.name} is not fitted")
        return self.item_scores

    def global_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(scores, order): the read-only float32 (n_items,) scores every user gets and the
        items best first (ties: lower index), computed once — a request's recall then
        walks the order instead of partitioning the whole catalog again."""
        scores = self._item_scores()
        cached = self._global
        if cached is None or cached[0] is not scores:
            order = np.argsort(-scores, kind="stable")
            view = scores.view()
            view.flags.writeable = False
            cached = self._global = (scores, view, order)
        return cached[1], cached[2]

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_scores": self._item_scores()}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_scores = arrays["item_scores"].astype(np.float32)


@register
class MostPopular(_ItemScoreModel):
    """Rank every item by its all-time popularity in the training data.

    ``weighting="users"`` counts distinct users who interacted positively with the item;
    ``"confidence"`` sums their implicit confidence, so a full watch counts more than a
    click. Items without interactions score 0. The ranking is the same for every user
    (seen items are still excluded per user by ``recommend``).
    """

    name = "pop"

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"weighting": "users"}

    @classmethod
    def search_space(cls) -> SearchSpace:
        return {"weighting": ["users", "confidence"]}

    def _check_params(self) -> None:
        if self.params["weighting"] not in ("users", "confidence"):
            raise ModelError(
                f"pop: weighting must be 'users' or 'confidence', got {self.params['weighting']!r}"
            )

    def _fit(self, data: InteractionMatrix) -> None:
        matrix = data.matrix.tocsr()
        if self.params["weighting"] == "users":
            counts = np.bincount(matrix.indices[matrix.data > 0], minlength=data.n_items)
        else:
            counts = np.asarray(matrix.sum(axis=0, dtype=np.float64)).ravel()
        self.item_scores = counts.astype(np.float32)


@register
class Trending(_ItemScoreModel):
    """Rank items by how many users engaged with them recently.

    The window is the ``window_days`` before the last training timestamp (so a model
    fitted on old data is still "trending as of then", and evaluation is leak-free).
    Each user counts once per item; with ``half_life_days`` set, that count decays
    exponentially with the age of the user's latest event on the item (0.5 after one
    half-life), inside the window. ``half_life_days=None`` is a hard window.

    Ties — above all the many items with nothing in a short window — are broken by
    all-time popularity (distinct users), then by item index, so the list is always a
    full, deterministic ranking. The score is therefore a rank value in (0, 1]: 1 for the
    top item, decreasing by ``1 / n_items`` per place. The raw windowed counts are kept
    in :attr:`trend`.
    """

    name = "trending"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.trend: np.ndarray | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"window_days": 30.0, "half_life_days": None}

    @classmethod
    def search_space(cls) -> SearchSpace:
        return {"window_days": [7, 30, 90, 365, 3650], "half_life_days": [None, 30]}

    def _check_params(self) -> None:
        window = self.params["window_days"]
        half_life = self.params["half_life_days"]
        if not isinstance(window, int | float) or window <= 0:
            raise ModelError(f"trending: window_days must be > 0, got {window!r}")
        if half_life is not None and (not isinstance(half_life, int | float) or half_life <= 0):
            raise ModelError(f"trending: half_life_days must be > 0 or None, got {half_life!r}")

    def _fit(self, data: InteractionMatrix) -> None:
        self.trend = self._windowed_counts(data)
        popularity = data.item_popularity()
        # Lexicographic rank: trend desc, then all-time popularity desc, then index asc.
        order = np.lexsort((np.arange(data.n_items), -popularity, -self.trend))
        rank = np.empty(data.n_items, dtype=np.int64)
        rank[order] = np.arange(data.n_items)
        n = max(data.n_items, 1)
        self.item_scores = ((n - rank) / n).astype(np.float32)

    def _windowed_counts(self, data: InteractionMatrix) -> np.ndarray:
        events = data.events
        if events.empty:
            return np.zeros(data.n_items, dtype=np.float64)
        ts = events["timestamp"].to_numpy(np.int64)
        end = int(ts.max())
        recent = ts > end - float(self.params["window_days"]) * _DAY
        users = events["user_idx"].to_numpy(np.int64)[recent]
        items = events["item_idx"].to_numpy(np.int64)[recent]
        ts = ts[recent]
        # Latest event per (user, item) pair: one vote per user and item.
        pair = users * data.n_items + items
        order = np.lexsort((-ts, pair))
        first = np.ones(len(order), dtype=bool)
        first[1:] = pair[order][1:] != pair[order][:-1]
        keep = order[first]
        half_life = self.params["half_life_days"]
        if half_life is None:
            weights = np.ones(len(keep))
        else:
            age_days = (end - ts[keep]) / _DAY
            weights = np.exp2(-age_days / float(half_life))
        return np.bincount(items[keep], weights=weights, minlength=data.n_items)

    def _state(self) -> dict[str, np.ndarray]:
        state = super()._state()
        if self.trend is not None:
            state["trend"] = self.trend
        return state

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        super()._restore(arrays)
        self.trend = arrays.get("trend")


@register
class RandomScores(Model):
    """Uniform random scores, seeded per user: the floor a cold-start model must beat.

    Each user gets a fixed random permutation of the catalog (seeded by ``seed`` and the
    user index), so results are reproducible and independent of batch composition.
    """

    name = "random"

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"seed": 0}

    def _fit(self, data: InteractionMatrix) -> None:
        pass

    def score(
        self,
        user_idx: np.ndarray,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        user_idx = np.asarray(user_idx, dtype=np.int64)
        self.history(user_idx, user_items)  # validates fitted state and shapes
        rows = [
            np.random.default_rng([int(self.params["seed"]), int(u)]).random(self.n_items)
            for u in user_idx
        ]
        scores = np.asarray(rows, dtype=np.float32).reshape(len(user_idx), self.n_items)
        return scores if items is None else scores[:, np.asarray(items, dtype=np.int64)]

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        pass
