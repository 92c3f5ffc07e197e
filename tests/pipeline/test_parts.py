"""The pipeline's model state: built once per bundle, read-only and cached where it pays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.base import Model
from cinerec.pipeline.config import SourceConfig, default_config
from cinerec.pipeline.parts import (
    STATED_TASTE_ITEMS,
    ContentSimilarity,
    PipelineParts,
    content_vectors,
    histories_popularity,
)
from cinerec.pipeline.state import HistoryStore
from cinerec.pipeline.types import Preferences


def _parts(models: dict[str, Model], matrix: InteractionMatrix, **config: object) -> PipelineParts:
    base = default_config(list(models))
    cfg = base.model_copy(update=config) if config else base
    assert matrix.catalog is not None
    return PipelineParts(
        models,
        matrix.users,
        matrix.items,
        matrix.catalog,
        HistoryStore.from_events(matrix.events, matrix.n_users),
        cfg,
        default_model="ease",
    )


@pytest.fixture(scope="module")
def parts(models: dict[str, Model], matrix: InteractionMatrix) -> PipelineParts:
    return _parts(models, matrix)


def test_country_masks_are_built_once_read_only_and_match_the_catalog(
    parts: PipelineParts, matrix: InteractionMatrix
) -> None:
    india = parts.country_mask("India")
    assert india is not None and india.dtype == bool and matrix.catalog is not None
    expected = [countries == ["India"] for countries in matrix.catalog["country"]]
    assert india.tolist() == expected
    assert parts.country_mask("  india ") is india  # normalised key, one mask per country
    with pytest.raises(ValueError):
        india[0] = not india[0]
    assert parts.country_mask("Atlantis") is None


def test_content_similarity_is_the_cosine_of_the_content_vectors(parts: PipelineParts) -> None:
    assert parts.content_name == "content" and parts.vectors is not None
    items, history = np.array([0, 5, 9]), np.array([1, 2])
    sims = parts.similarity(items, history)
    assert sims.shape == (3, 2)
    np.testing.assert_allclose(sims, parts.vectors[items] @ parts.vectors[history].T)
    np.testing.assert_allclose(np.linalg.norm(parts.vectors, axis=1), 1.0, rtol=1e-5)
    assert not ContentSimilarity(None)(items, history).any()
    assert ContentSimilarity(None)(items, history).shape == (3, 2)


def test_without_a_content_model_there_are_no_vectors(models: dict[str, Model]) -> None:
    without = {k: m for k, m in models.items() if k != "content"}
    assert content_vectors(without) == (None, None)
    assert content_vectors(models)[0] == "content"


def test_popularity_counts_distinct_users_per_item() -> None:
    events = pd.DataFrame(
        {
            "user_idx": [0, 0, 0, 1, 1, 2],
            "item_idx": [3, 3, 1, 3, 0, 3],  # user 0 watched item 3 twice
            "confidence": np.ones(6),
            "timestamp": np.arange(6),
        }
    )
    popularity = histories_popularity(HistoryStore.from_events(events, 3), n_items=5)
    assert popularity.dtype == np.float32
    assert popularity.tolist() == [1.0, 1.0, 0.0, 3.0, 0.0]


def test_item_ids_unknown_ones_dropped_or_named(parts: PipelineParts) -> None:
    assert parts.indices(["i3", "nope", "i1"]).tolist() == [3, 1]
    assert parts.indices(()).dtype == np.int64 and not len(parts.indices(()))
    assert parts.item_index(["i2", "i0"]).tolist() == [2, 0]
    with pytest.raises(ModelError, match="nope"):
        parts.item_index(["i2", "nope"])


def test_stated_taste_is_the_most_popular_full_matches_cached(parts: PipelineParts) -> None:
    prefs = Preferences(genres=("g1",), languages=("en",))
    row = parts.stated_taste(prefs)
    chosen = row.indices
    assert row.shape == (1, len(parts.items)) and 0 < len(chosen) <= STATED_TASTE_ITEMS
    everything = np.arange(len(parts.items))
    match = parts.facts.preference_match(everything, ("g1",), ("en",), ()) >= 1.0
    assert set(chosen) == set(everything[match][:STATED_TASTE_ITEMS])  # all fit here
    assert parts.stated_taste(Preferences(genres=("g1",), languages=("en",))) is row


def test_sources_skip_disabled_ones_and_models_the_bundle_lacks(
    models: dict[str, Model], matrix: InteractionMatrix
) -> None:
    config = default_config(list(models))
    sources = list(config.recall.sources)
    sources[0] = sources[0].model_copy(update={"enabled": False})
    sources.append(SourceConfig(name="seq", kind="sequence", model="sasrec", quota=10))
    recall = config.recall.model_copy(update={"sources": tuple(sources)})
    parts = _parts(models, matrix, recall=recall)
    names = [s.name for s in parts.sources]
    assert sources[0].name not in names and "seq" not in names
    assert names == [s.name for s in sources[1:-1]]
    assert parts.features.source_names == (*names, "continue_watching")


def test_stated_taste_keeps_the_most_popular_matches_when_there_are_too_many(
    models: dict[str, Model], matrix: InteractionMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cinerec.pipeline.parts.STATED_TASTE_ITEMS", 3)
    parts = _parts(models, matrix)
    chosen = parts.stated_taste(Preferences(languages=("tr",))).indices
    everything = np.arange(len(parts.items))
    match = everything[parts.facts.preference_match(everything, (), ("tr",), ()) >= 1.0]
    assert len(match) > 3 and len(chosen) == 3
    least_chosen = parts.popularity[chosen].min()
    assert (parts.popularity[np.setdiff1d(match, chosen)] <= least_chosen).all()


def test_stated_taste_cache_is_bounded_and_keeps_recent_sets(
    models: dict[str, Model], matrix: InteractionMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients may send any preference combination: the cache keeps the latest few."""
    import cinerec.pipeline.parts as parts_module

    monkeypatch.setattr(parts_module, "STATED_TASTE_CACHE", 3)
    fresh = _parts(models, matrix)
    asked = [Preferences(languages=(f"l{i}",)) for i in range(5)]
    rows = [fresh.stated_taste(p) for p in asked]
    assert len(fresh._tastes) == 3
    assert fresh.stated_taste(asked[-1]) is rows[-1]  # recent: served from the cache
    assert fresh.stated_taste(asked[0]) is not rows[0]  # evicted: rebuilt, same content
    assert (fresh.stated_taste(asked[0]) != rows[0]).nnz == 0
