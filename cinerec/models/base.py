"""The model protocol every cinerec model follows, and the registry that names them.

A model is fitted on an :class:`~cinerec.data.matrix.InteractionMatrix`, then scores a batch
of users (by row index) over the whole catalog or a given candidate set. ``recommend``
builds on ``score``: top-k per user, already-seen items excluded. Models save to a folder as
``model.json`` (name, hyperparameters, small metadata) plus ``arrays.npz`` loaded with
``allow_pickle=False`` — no pickle anywhere, so a bundle cannot execute code on load.

Subclasses implement ``_fit``, ``score``, ``_state`` and ``_restore`` and declare
``search_space`` (the grid tuned on a validation split).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, TypeGuard, TypeVar

import numpy as np
import scipy.sparse as sp

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.space import SearchSpace
from cinerec.retrieval.topk import top_k

_REGISTRY: dict[str, type[Model]] = {}
ModelType = TypeVar("ModelType", bound="type[Model]")


def register(cls: ModelType) -> ModelType:
    """Class decorator: make a model available by its ``name`` to the CLI and loaders."""
    _REGISTRY[cls.name] = cls
    return cls


def model_names() -> list[str]:
    _import_builtin_models()
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[Model]:
    _import_builtin_models()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise ModelError(f"unknown model '{name}' (known: {known})")
    return _REGISTRY[name]


def _import_builtin_models() -> None:
    import cinerec.models.builtin  # noqa: F401  (registers the built-in models)


class EmbeddingModel(Protocol):
    """A model whose scores are user vectors times item vectors (ALS, BPR, content).

    What vector recall (an ANN index over :meth:`embed_items`) and per-item scoring need;
    :func:`has_vectors` tells whether a model has them.
    """

    def embed_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix | None) -> np.ndarray:
        """User vectors (n, d); ``user_items`` as in :meth:`Model.score`."""
        ...

    def embed_items(self) -> np.ndarray:
        """Item vectors (n_items, d)."""
        ...


def has_vectors(model: object) -> TypeGuard[EmbeddingModel]:
    """Whether ``model`` is an :class:`EmbeddingModel`.

    Two attribute look-ups, not ``isinstance`` on a runtime-checkable protocol: the
    pipeline asks this on every request, and that check costs a hundred times more.
    """
    return hasattr(model, "embed_users") and hasattr(model, "embed_items")


class Model(ABC):
    """Base class: fit / score / recommend / save / load for one recommendation model.

    Shapes: ``user_idx`` is an int array (n,), ``items`` an optional int array (m,) of
    item indices; ``score`` returns float32 (n, m) or (n, n_items). ``user_items``, when
    given, is a CSR (n, n_items) of the users' current histories and replaces the training
    rows — the hook for request-time history and for users unseen in training.
    """

    name: ClassVar[str]
    #: Whether :meth:`similar_items` relates items ("more like this"): models with item
    #: vectors or item–item weights set it and implement :meth:`_item_similarity` (or
    #: override :meth:`similar_items` itself, as the content model does with Faiss).
    relates_items: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.default_params())
        if unknown:
            raise ModelError(f"{self.name}: unknown parameter(s) {sorted(unknown)}")
        self.params: dict[str, Any] = {**self.default_params(), **params}
        self.seen: sp.csr_matrix | None = None

    # ----- what a subclass declares -------------------------------------------------
    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """Hyperparameters and their defaults (JSON-serialisable values)."""
        return {}

    @classmethod
    def search_space(cls) -> SearchSpace:
        """Values tried on the validation split (empty: none).

        Each entry is a list of ordered values, or an ``IntRange`` / ``FloatRange`` from
        :mod:`cinerec.models.space` (searched with optuna).
        """
        return {}

    @abstractmethod
    def _fit(self, data: InteractionMatrix) -> None: ...

    @abstractmethod
    def score(
        self,
        user_idx: np.ndarray,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray: ...

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Fitted arrays to save (the seen matrix is saved by the base class)."""

    @abstractmethod
    def _restore(self, arrays: dict[str, np.ndarray]) -> None: ...

    def _restore_files(self, folder: Path) -> None:  # noqa: B027  (optional hook)
        """Read extra files a subclass's ``save`` wrote beside ``arrays.npz``.

        Called by :func:`load_model` after :meth:`_restore`; a no-op by default. Neural
        models use it to load ``weights.safetensors`` (no pickle either).
        """

    # ----- shared behaviour -----------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self._seen().shape[1]

    @property
    def n_users(self) -> int:
        return self._seen().shape[0]

    def fit(self, data: InteractionMatrix) -> Self:
        self.seen = data.matrix.tocsr().astype(np.float32)
        self._fit(data)
        return self

    def history(self, user_idx: np.ndarray, user_items: sp.csr_matrix | None) -> sp.csr_matrix:
        """The (n, n_items) history rows used to score ``user_idx``."""
        if user_items is not None:
            if user_items.shape != (len(user_idx), self.n_items):
                raise ModelError(
                    f"user_items has shape {user_items.shape}, "
                    f"expected ({len(user_idx)}, {self.n_items})"
                )
            return user_items.tocsr()
        user_idx = np.asarray(user_idx, dtype=np.int64)
        if user_idx.size and (user_idx.min() < 0 or user_idx.max() >= self.n_users):
            raise ModelError(f"{self.name}: user index out of range [0, {self.n_users})")
        seen = self._seen()
        if user_idx.size == 1:  # one request's user: slice the arrays, skip scipy's indexing
            start, stop = seen.indptr[user_idx[0]], seen.indptr[user_idx[0] + 1]
            return sp.csr_matrix(
                (seen.data[start:stop].copy(), seen.indices[start:stop].copy(), [0, stop - start]),
                shape=(1, seen.shape[1]),
            )
        return seen[user_idx]

    def recommend(
        self,
        user_idx: np.ndarray,
        k: int = 10,
        exclude_seen: bool = True,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores per user, best first.

        Returns int64 (n, k) indices into the catalog and float32 (n, k) scores; where
        fewer than ``k`` items are eligible the row is padded with -1 and -inf.
        """
        user_idx = np.asarray(user_idx, dtype=np.int64)
        scores = self.score(user_idx, items=items, user_items=user_items).astype(np.float32)
        candidates = None if items is None else np.asarray(items, dtype=np.int64)
        if exclude_seen:
            seen = self.history(user_idx, user_items)
            if candidates is not None:
                seen = seen[:, candidates]
            rows, cols = seen.nonzero()
            scores[rows, cols] = -np.inf
        top, top_scores = top_k(scores, k)
        if candidates is not None:
            top = np.where(top >= 0, candidates[np.maximum(top, 0)], -1)
        return top, top_scores

    def similar_items(self, item_idx: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """ "More like this": the ``k`` items most related to each of ``item_idx``, best first.

        Returns int64 (n, k) item indices and float32 (n, k) scores; an item is never its
        own neighbour, only positively related items are returned, and rows are padded
        with -1 / -inf. Raises :class:`~cinerec.errors.ModelError` for a model that does
        not relate items (``relates_items`` False) or an index outside the catalog.
        """
        if not self.relates_items:
            raise ModelError(f"model '{self.name}' cannot find similar items")
        item_idx = np.asarray(item_idx, dtype=np.int64).reshape(-1)
        if item_idx.size and (item_idx.min() < 0 or item_idx.max() >= self.n_items):
            raise ModelError(f"{self.name}: item index out of range [0, {self.n_items})")
        scores = np.asarray(self._item_similarity(item_idx), dtype=np.float32).copy()
        scores[np.arange(len(item_idx)), item_idx] = -np.inf
        scores[~(scores > 0)] = -np.inf
        return top_k(scores, k)

    def _item_similarity(self, item_idx: np.ndarray) -> np.ndarray:
        """(n, n_items) relatedness of ``item_idx`` to every item (models that relate items)."""
        raise ModelError(f"model '{self.name}' cannot find similar items")

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        seen = self._seen()
        arrays = {f"state.{k}": np.ascontiguousarray(v) for k, v in self._state().items()}
        arrays.update(
            {
                "seen.data": seen.data,
                "seen.indices": seen.indices,
                "seen.indptr": seen.indptr,
                "seen.shape": np.asarray(seen.shape, dtype=np.int64),
            }
        )
        pickled = sorted(key for key, value in arrays.items() if value.dtype.hasobject)
        if pickled:  # would save, then fail to load with allow_pickle=False
            raise ModelError(f"{self.name}: cannot save object arrays {pickled}")
        np.savez(folder / "arrays.npz", allow_pickle=False, **arrays)
        meta = {"name": self.name, "params": self.params}
        (folder / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, folder: str | Path) -> Model:
        return load_model(folder)

    def _seen(self) -> sp.csr_matrix:
        if self.seen is None:
            raise ModelError(f"{self.name} is not fitted")
        return self.seen

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({params})"


def load_model(folder: str | Path) -> Model:
    """Load any registered model from a folder written by :meth:`Model.save`."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.json").read_text())
        with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot load model from {folder}: {exc}") from exc
    model = get_model_class(meta["name"])(**meta["params"])
    shape = tuple(int(x) for x in arrays["seen.shape"])
    model.seen = sp.csr_matrix(
        (arrays["seen.data"], arrays["seen.indices"], arrays["seen.indptr"]), shape=shape
    )
    model._restore({k[6:]: v for k, v in arrays.items() if k.startswith("state.")})
    model._restore_files(folder)
    return model
