"""Content-based recommendations: item vectors from text and metadata, user taste profiles."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.features.metadata import describes_items, metadata_features
from cinerec.features.prefetch import EmbeddingPrefetch
from cinerec.features.text import SentenceEncoder, compose_text, reduce_dense, tfidf_matrix
from cinerec.models.base import Model, register
from cinerec.models.space import SearchSpace
from cinerec.retrieval.ann import VectorIndex

DAY_SECONDS: Final = 86_400.0
#: Trained users whose taste vectors are kept between requests (a few KB each).
PROFILE_CACHE: Final = 20_000
_META_COLUMNS: Final = ("genres", "type", "country", "language", "year", "min_age",
                        "duration_min", "seasons")  # fmt: skip
#: Feature blocks kept in memory across fits (a tuning run refits on one catalog).
_CACHE_SIZE: Final = 6
_FEATURES: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
_FEATURES_LOCK = threading.Lock()


def clear_feature_cache() -> None:
    """Forget the in-process feature blocks (tests, or to free memory)."""
    with _FEATURES_LOCK:
        _FEATURES.clear()


def _cached(key: tuple[Any, ...], compute: Callable[[], np.ndarray]) -> np.ndarray:
    with _FEATURES_LOCK:
        if key in _FEATURES:
            _FEATURES.move_to_end(key)
            return _FEATURES[key]
    value = compute()
    value.setflags(write=False)  # shared between models: never modified in place
    with _FEATURES_LOCK:
        _FEATURES[key] = value
        while len(_FEATURES) > _CACHE_SIZE:
            _FEATURES.popitem(last=False)
    return value


def _digest(*parts: bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(len(part).to_bytes(8, "little"))
        sha.update(part)
    return sha.hexdigest()


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


@register
class ContentModel(Model):
    """Recommends items whose description and metadata resemble what the user engaged with.

    Why: it needs no co-interactions, so it reaches cold items (new titles, the catalog's
    series nobody has watched yet) and gives "more like this" for any item.

    Item vectors are the L2-normalised concatenation of three blocks, each L2-normalised
    first and then scaled by its weight: ``text_weight`` · TF-IDF of the composed
    description reduced by TruncatedSVD (``svd_dims``), ``embed_weight`` · its sentence
    embedding (all-MiniLM-L6-v2 unless ``text_model`` names another model; cached on disk),
    ``meta_weight`` · categorical metadata (genres, type, country, decade, age, length).
    Only the weights' ratios matter. Blocks with weight 0 are not computed, so
    ``embed_weight=0`` needs no sentence model at all.

    A user's profile is the weighted mean of the vectors of the items they engaged with —
    weight = confidence × 0.5^(age / ``half_life_days``), age measured back from the
    user's own latest event (``half_life_days=0``: no decay) — minus ``skip_weight`` × the
    mean vector of the items they skipped, normalised; scores are cosine similarities in
    [-1, 1]. Request-time ``user_items`` rows carry no time nor skips: their values are the
    weights. Fitting needs ``data.catalog``.

    Search space: the tuner walks an ordered grid by coordinate ascent (one step in one
    parameter at a time), so it is kept to three short axes — about 15-25 fits, cheap since
    the feature blocks are computed once per catalog and reused across trials.
    ``embed_weight`` stays at 1 as the reference scale: ``text_weight`` and ``meta_weight``
    from 0 to 4 then cover every mix from embeddings alone to mostly lexical or mostly
    metadata. ``skip_weight`` is not searched: the offline data (MovieLens, the demo) has
    no skip events, so every such trial would tie and be wasted.
    """

    name = "content"
    relates_items = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        for key in ("text_weight", "embed_weight", "meta_weight", "half_life_days", "skip_weight"):
            value = self.params[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ModelError(f"content: {key} must be a number >= 0, got {value!r}")
        for key in ("svd_dims", "max_features", "min_df"):
            value = self.params[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"content: {key} must be a positive int, got {value!r}")
        if self.params["text_model"] is not None and not isinstance(self.params["text_model"], str):
            raise ModelError("content: text_model must be a model folder / name or null")
        self.vectors: np.ndarray | None = None  # (n_items, d) float32, unit rows
        self._index: VectorIndex | None = None  # built on first use (vector_index)
        self._lock = threading.Lock()  # guards the index build and the profile cache
        self._profile_cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.weights: sp.csr_matrix | None = None  # (n_users, n_items) profile weights
        self.skipped: sp.csr_matrix | None = None  # (n_users, n_items) 1 where skipped

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {
            "text_weight": 1.0,
            "embed_weight": 1.0,
            "meta_weight": 1.0,
            "half_life_days": 180.0,
            "skip_weight": 0.5,
            "svd_dims": 128,
            "max_features": 50_000,
            "min_df": 2,
            "text_model": None,
        }

    @classmethod
    def search_space(cls) -> SearchSpace:
        # half_life_days is ordered from strong decay to none (0 = no decay).
        return {
            "text_weight": [0.0, 0.5, 1.0, 2.0, 4.0],
            "meta_weight": [0.0, 0.5, 1.0, 2.0, 4.0],
            "half_life_days": [30.0, 180.0, 730.0, 0.0],
        }

    # ----- fitting ------------------------------------------------------------------------
    def _fit(self, data: InteractionMatrix) -> None:
        if data.catalog is None:
            raise ModelError(
                "content: needs the item catalog (data.catalog is None); build the "
                "InteractionMatrix with items=<the items table>"
            )
        if len(data.catalog) != data.n_items:
            raise ModelError(
                f"content: catalog has {len(data.catalog)} rows for {data.n_items} items"
            )
        if not describes_items(data.catalog):  # every item would get the same vector
            raise ModelError(
                "content: no item of the catalog has a title, genres or any other "
                "description to compare items by; it needs an items table"
            )
        self.vectors = np.ascontiguousarray(self.item_vectors(data.catalog))
        self._index = None
        self._profile_cache = OrderedDict()
        self.weights = self._profile_weights(data)
        skips = data.skips
        if skips is None:
            skips = sp.csr_matrix((data.n_users, data.n_items), dtype=np.float32)
        self.skipped = sp.csr_matrix(skips, dtype=np.float32)

    def item_vectors(self, catalog: pd.DataFrame) -> np.ndarray:
        """(len(catalog), d) float32 unit vectors of the catalog rows under these weights."""
        p = self.params
        texts = compose_text(catalog)
        text_hash = _digest(*(t.encode() for t in texts))
        blocks = []
        key: tuple[Any, ...]  # the feature cache's: (kind, content hash, parameters...)
        if p["text_weight"] > 0:
            key = ("tfidf", text_hash, p["svd_dims"], p["max_features"], p["min_df"])
            blocks.append(p["text_weight"] * _cached(key, lambda: self._tfidf(texts)))
        if p["embed_weight"] > 0:
            encoder = SentenceEncoder(p["text_model"])
            key = ("embed", text_hash, encoder.variant)
            blocks.append(p["embed_weight"] * _cached(key, lambda: encoder.encode(texts)))
        if p["meta_weight"] > 0:
            key = ("meta", _metadata_hash(catalog))
            blocks.append(p["meta_weight"] * _cached(key, lambda: _metadata(catalog)))
        if not blocks:
            return np.zeros((len(catalog), 1), dtype=np.float32)
        return _normalise_rows(np.hstack(blocks).astype(np.float32))

    def _tfidf(self, texts: list[str]) -> np.ndarray:
        p = self.params
        matrix = tfidf_matrix(texts, max_features=p["max_features"], min_df=p["min_df"])
        return _normalise_rows(reduce_dense(matrix, p["svd_dims"], seed=0))

    def _profile_weights(self, data: InteractionMatrix) -> sp.csr_matrix:
        """Confidence × recency decay per (user, item), as a CSR like ``data.matrix``."""
        matrix = sp.csr_matrix(data.matrix, dtype=np.float32)
        half_life = float(self.params["half_life_days"]) * DAY_SECONDS
        if half_life <= 0 or data.events.empty:
            return matrix
        events = data.events
        pairs = events.groupby(["user_idx", "item_idx"], sort=True).agg(
            confidence=("confidence", "max"), last=("timestamp", "max")
        )
        users = pairs.index.get_level_values(0).to_numpy()
        items = pairs.index.get_level_values(1).to_numpy()
        user_last = events.groupby("user_idx")["timestamp"].max()
        age = user_last.reindex(users).to_numpy(np.float64) - pairs["last"].to_numpy(np.float64)
        decay = np.power(0.5, np.maximum(age, 0.0) / half_life)
        confidence = pairs["confidence"].to_numpy(np.float64)
        weights = sp.csr_matrix(
            ((confidence * decay).astype(np.float32), (users, items)),
            shape=matrix.shape,
            dtype=np.float32,
        )
        weights.sort_indices()
        return weights

    # ----- scoring -------------------------------------------------------------------------
    def score(
        self,
        user_idx: np.ndarray,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        vectors = self._fitted()[0]
        profiles = self.embed_users(user_idx, user_items)
        targets = vectors if items is None else vectors[np.asarray(items, dtype=np.int64)]
        return np.asarray(profiles @ targets.T, dtype=np.float32)

    def embed_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix | None) -> np.ndarray:
        """Unit taste vectors (n, d); their dot product with :meth:`embed_items` is the score."""
        vectors, weights, skipped = self._fitted()
        history = self.history(user_idx, user_items)  # validates indices and shape
        if user_items is None:
            rows = np.asarray(user_idx, dtype=np.int64)
            if len(rows) == 1:  # one request: the stored user's profile, computed once
                return self._stored_profile(int(rows[0]))[None, :]
            return self._profiles(weights[rows], skipped[rows], vectors)
        return self._profiles(history, None, vectors)

    def _stored_profile(self, user: int) -> np.ndarray:
        """A trained user's taste vector (read-only), like ALS's stored user factors but
        computed on first use and kept for the last :data:`PROFILE_CACHE` users."""
        with self._lock:
            found = self._profile_cache.get(user)
            if found is not None:
                self._profile_cache.move_to_end(user)
                return found
        vectors, weights, skipped = self._fitted()
        profile = self._profiles(weights[user], skipped[user], vectors)[0]
        profile.flags.writeable = False
        with self._lock:
            self._profile_cache[user] = profile
            while len(self._profile_cache) > PROFILE_CACHE:
                self._profile_cache.popitem(last=False)
        return profile

    def embed_items(self) -> np.ndarray:
        """Unit item vectors (n_items, d)."""
        return self._fitted()[0]

    def _profiles(
        self, positive: sp.csr_matrix, skipped: sp.csr_matrix | None, vectors: np.ndarray
    ) -> np.ndarray:
        """Unit taste vectors: weighted mean of engaged items minus the skipped mean."""
        positive = sp.csr_matrix(positive, dtype=np.float32)
        positive.data = np.maximum(positive.data, 0.0)
        profiles = _row_mean(positive) @ vectors
        skip_weight = float(self.params["skip_weight"])
        if skipped is not None and skip_weight > 0 and skipped.nnz:
            profiles = profiles - skip_weight * (_row_mean(skipped) @ vectors)
        return _normalise_rows(np.asarray(profiles, dtype=np.float32))

    def similar_items(self, item_idx: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """ "More like this": the ``k`` items most similar to each of ``item_idx``.

        Works for every catalog item, interactions or not. Served by a Faiss
        :class:`~cinerec.retrieval.ann.VectorIndex` over the item vectors (exact for small
        catalogs, IVF for large ones), built on first use. Returns int64 (n, k) item
        indices and float32 (n, k) cosine similarities, best first; the item itself is
        never returned (rows are padded with -1 / -inf when the catalog is too small).
        """
        vectors, _, _ = self._fitted()
        item_idx = np.asarray(item_idx, dtype=np.int64).reshape(-1)
        n_items = len(vectors)
        if item_idx.size and (item_idx.min() < 0 or item_idx.max() >= n_items):
            raise ModelError(f"content: item index out of range [0, {n_items})")
        index = self.vector_index()
        return index.search(vectors[item_idx], k, exclude=[[i] for i in item_idx])

    def vector_index(self) -> VectorIndex:
        """The Faiss index over the item vectors (built once; "more like this" and the
        pipeline's content recall share it)."""
        with self._lock:
            if self._index is None:
                self._index = VectorIndex.build(self._fitted()[0], kind="auto", metric="ip")
            return self._index

    # ----- persistence ---------------------------------------------------------------------
    def _fitted(self) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
        if self.vectors is None or self.weights is None or self.skipped is None:
            raise ModelError(f"{self.name} is not fitted")
        return self.vectors, self.weights, self.skipped

    def _state(self) -> dict[str, np.ndarray]:
        vectors, weights, skipped = self._fitted()
        state = {"vectors": vectors.astype(np.float32)}
        for prefix, matrix in (("weights", weights), ("skipped", skipped)):
            state[f"{prefix}.data"] = matrix.data.astype(np.float32)
            state[f"{prefix}.indices"] = matrix.indices
            state[f"{prefix}.indptr"] = matrix.indptr
            state[f"{prefix}.shape"] = np.asarray(matrix.shape, dtype=np.int64)
        return state

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.vectors = arrays["vectors"].astype(np.float32, copy=False)
        self._index = None
        self._profile_cache = OrderedDict()
        self.weights, self.skipped = (
            sp.csr_matrix(
                (arrays[f"{p}.data"], arrays[f"{p}.indices"], arrays[f"{p}.indptr"]),
                shape=tuple(int(x) for x in arrays[f"{p}.shape"]),
            )
            for p in ("weights", "skipped")
        )


def start_embedding_prefetch(
    catalog: pd.DataFrame | None, params: dict[str, Any] | None = None
) -> EmbeddingPrefetch | None:
    """Start encoding ``catalog``'s descriptions into the embedding cache in a background
    process (:mod:`cinerec.features.prefetch`) so that a later fit finds them cached.

    ``params`` are :class:`ContentModel` parameters, defaults filled in (the search space
    never varies ``embed_weight`` nor ``text_model``). None when they use no embeddings or
    there is no catalog.
    """
    p = {**ContentModel.default_params(), **(params or {})}
    if catalog is None or not p["embed_weight"] > 0:
        return None
    return EmbeddingPrefetch(compose_text(catalog), model_path=p["text_model"]).start()


def _row_mean(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum to 1 (all-zero rows stay zero)."""
    scaled = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    sums = np.asarray(scaled.sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0).astype(np.float32)
    scaled.data *= np.repeat(scale, np.diff(scaled.indptr))
    return scaled


def _metadata(catalog: pd.DataFrame) -> np.ndarray:
    matrix = metadata_features(catalog).matrix
    return _normalise_rows(np.asarray(matrix.toarray(), dtype=np.float32))


def _metadata_hash(catalog: pd.DataFrame) -> str:
    columns = [c for c in _META_COLUMNS if c in catalog.columns]
    frame = catalog[columns].astype(str).reset_index(drop=True)
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return _digest(",".join(columns).encode(), hashed.tobytes())
