"""Content model: the contract on a catalog with text, plus taste, skips, cold items, decay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models import content as content_module
from cinerec.models.base import load_model
from cinerec.models.content import ContentModel, clear_feature_cache
from tests.models.contract import ModelContract, synthetic_frames

GROUP_WORDS = {
    "Comedy": "funny wedding prank laugh family holiday party awkward",
    "Horror": "ghost haunted zombie terror blood night curse demon",
    "Sci-Fi": "space alien robot galaxy future planet starship android",
    "Documentary": "nature ocean history interview wildlife archive real story",
    "Western": "cowboy desert sheriff outlaw horse saloon frontier gold",
}


def contract_catalog() -> pd.DataFrame:
    """The contract's 40 items with text and genres matching the three taste groups."""
    rng = np.random.default_rng(3)
    genres = ["Comedy"] * 10 + ["Horror"] * 10 + ["Sci-Fi"] * 10 + ["Documentary"] * 4
    genres += ["Western"] * 6  # the cold items 34..39: a taste nobody in the data has
    rows = []
    for i, genre in enumerate(genres):
        words = GROUP_WORDS[genre].split()
        synopsis = " ".join(rng.choice(words, size=5, replace=False))
        rows.append((f"i{i}", f"Title {i}", "movie", [genre], synopsis, 1990 + i % 30))
    columns = ["item_id", "title", "type", "genres", "synopsis", "year"]
    return pd.DataFrame(rows, columns=columns)


class TestContentContract(ModelContract):
    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> InteractionMatrix:
        interactions, _ = synthetic_frames()
        return InteractionMatrix.build(interactions, items=contract_catalog())

    def model_factory(self) -> ContentModel:
        # No decay: the contract compares training rows with the same rows given as
        # request-time history, which carries no timestamps.
        return ContentModel(embed_weight=0.0, half_life_days=0.0, svd_dims=8)


# ----- a small hand-made catalog of movies and series ---------------------------------------
ITEMS = [  # item_id, title, type, genres
    ("sf1", "Star Voyage", "movie", ["Sci-Fi"]),
    ("sf2", "Robot Uprising", "movie", ["Sci-Fi"]),
    ("sf3", "Mars Colony", "movie", ["Sci-Fi"]),
    ("sf4", "Time Lab", "series", ["Sci-Fi"]),
    ("sf5", "Galaxy Patrol", "series", ["Sci-Fi"]),
    ("co1", "Wedding Blues", "movie", ["Comedy", "Romance"]),
    ("co2", "Paris in Love", "movie", ["Comedy", "Romance"]),
    ("co3", "Office Pranks", "series", ["Comedy"]),
    ("ho1", "Hill Manor", "movie", ["Horror"]),
    ("ho2", "Night of the Dead", "movie", ["Horror"]),
    ("ho3", "Cursed Doll", "series", ["Horror"]),
    ("do1", "Ocean Life", "movie", ["Documentary"]),
]
SYNOPSES = [
    "A starship crew explores a distant galaxy in deep space.",
    "Androids from space rebel against humans in the future.",
    "Astronauts settle a red planet far out in space.",
    "A scientist travels through space and time to the future.",
    "Space police patrol the galaxy and chase alien smugglers.",
    "A funny wedding goes wrong for the bride.",
    "A couple falls in love in Paris in a funny romance.",
    "Coworkers play funny pranks at the office.",
    "A family moves into a haunted house full of ghosts.",
    "Zombies and ghosts attack a small town at night.",
    "A demonic doll haunts a family with ghosts.",
    "Whales and coral reefs of the ocean.",
]
INDEX = {item_id: i for i, (item_id, *_rest) in enumerate(ITEMS)}
DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def small_catalog() -> pd.DataFrame:
    frame = pd.DataFrame(ITEMS, columns=["item_id", "title", "type", "genres"])
    frame["synopsis"] = SYNOPSES
    frame["year"] = 2020
    return frame


def small_data(events: list[tuple[str, str, str, int]] | None = None) -> InteractionMatrix:
    """Interactions (user, item, event, day) over the small catalog; sf4/sf5 stay cold."""
    events = events or [
        ("fan", "sf1", "like", 0),
        ("fan", "sf2", "like", 1),
        ("romantic", "co1", "like", 0),
        ("romantic", "co2", "like", 1),
        ("scared", "ho1", "like", 0),
        ("scared", "ho2", "like", 1),
        ("mixed", "sf1", "like", 0),
        ("mixed", "co1", "like", 1),
        ("mixed", "co2", "skip", 2),
        ("mixed", "co3", "skip", 2),
        ("nature", "do1", "like", 0),
    ]
    frame = pd.DataFrame(events, columns=["user_id", "item_id", "event", "day"])
    frame["value"] = 1.0
    frame["timestamp"] = T0 + DAY * frame.pop("day").astype(float)
    return InteractionMatrix.build(frame, items=small_catalog())


def ranked(model: ContentModel, data: InteractionMatrix, user: str, k: int = 3) -> list[str]:
    top, _ = model.recommend(data.users.lookup([user]), k=k)
    return [ITEMS[i][0] for i in top[0] if i >= 0]


FAST = {"embed_weight": 0.0, "svd_dims": 64}  # 12 items: TF-IDF kept unreduced


def test_sci_fi_fan_gets_sci_fi_first() -> None:
    data = small_data()
    model = ContentModel(**FAST).fit(data)
    assert set(ranked(model, data, "fan")) == {"sf3", "sf4", "sf5"}  # two of them cold
    assert set(ranked(model, data, "scared", k=1)) == {"ho3"}


def test_skips_are_subtracted() -> None:
    data = small_data()
    users = data.users.lookup(["mixed"])
    romance = [INDEX["co2"], INDEX["co3"]]
    without = ContentModel(**FAST, skip_weight=0.0).fit(data).score(users)
    with_skips = ContentModel(**FAST, skip_weight=1.0).fit(data).score(users)
    assert (with_skips[0, romance] < without[0, romance] - 0.05).all()
    # The skipped romance drops below the sci-fi half of the user's taste.
    assert ranked(ContentModel(**FAST, skip_weight=0.0).fit(data), data, "mixed", k=1) == ["co2"]
    assert set(ranked(ContentModel(**FAST, skip_weight=1.0).fit(data), data, "mixed", k=2)) == {
        "sf2",
        "sf3",
    }


def test_similar_items_for_a_cold_series() -> None:
    data = small_data()
    cold = INDEX["sf5"]
    assert data.matrix[:, cold].nnz == 0
    model = ContentModel(**FAST).fit(data)
    top, scores = model.similar_items(np.array([cold, INDEX["ho3"]]), k=3)
    assert top.shape == (2, 3) and top.dtype == np.int64 and scores.dtype == np.float32
    assert cold not in top[0]
    # On twelve items "TV series" weighs as much as the genre in TF-IDF, so only the
    # nearest neighbours are sure to share the genre.
    assert {ITEMS[i][3][0] for i in top[0, :2]} == {"Sci-Fi"}
    assert ITEMS[top[1, 0]][3] == ["Horror"]
    assert (np.diff(scores, axis=1) <= 0).all()
    everything, _ = model.similar_items(np.array([0]), k=20)
    assert (everything[0, : len(ITEMS) - 1] >= 0).all() and (
        everything[0, len(ITEMS) - 1 :] == -1
    ).all()
    assert model.similar_items(np.array([], dtype=np.int64), k=2)[0].shape == (0, 2)
    with pytest.raises(ModelError):
        model.similar_items(np.array([len(ITEMS)]))


def test_one_stored_user_profile_is_the_batch_row_kept_read_only() -> None:
    """A request's single stored user gets the same taste vector as a batch of users,
    computed once and kept (read-only) for later requests; a refit forgets it."""
    data = small_data()
    model = ContentModel(**FAST, skip_weight=1.0).fit(data)
    users = data.users.lookup(["fan", "mixed", "nature"])
    batch = model.embed_users(users, None)
    for row, user in enumerate(users):
        one = model.embed_users(np.array([user]), None)
        np.testing.assert_allclose(one[0], batch[row], rtol=1e-6, atol=1e-7)
        assert np.shares_memory(model.embed_users(np.array([user]), None), one)  # kept
        assert not one[0].flags.writeable
    model.fit(data)
    assert not model._profile_cache  # a new fit starts with no stored profiles


def test_user_items_builds_the_profile() -> None:
    data = small_data()
    model = ContentModel(**FAST).fit(data)
    history = sp.csr_matrix(
        ([1.0, 1.0], ([0, 0], [INDEX["ho1"], INDEX["ho2"]])), shape=(1, data.n_items)
    )
    top, _ = model.recommend(data.users.lookup(["fan"]), k=1, user_items=history)
    assert ITEMS[top[0, 0]][0] == "ho3"


def test_recency_decay_favours_recent_taste() -> None:
    events = [
        ("u", "sf1", "like", 0),
        ("u", "sf2", "like", 1),
        ("u", "ho1", "like", 300),
        ("u", "ho2", "like", 301),
    ]
    data = small_data(events)
    user = data.users.lookup(["u"])
    recent = ContentModel(**FAST, half_life_days=30.0).fit(data).score(user)[0]
    flat = ContentModel(**FAST, half_life_days=0.0).fit(data).score(user)[0]
    assert recent[INDEX["ho3"]] > recent[INDEX["sf3"]]
    gap = recent[INDEX["ho3"]] - recent[INDEX["sf3"]]
    assert gap > flat[INDEX["ho3"]] - flat[INDEX["sf3"]]


def test_needs_a_catalog_and_valid_params() -> None:
    interactions, _ = synthetic_frames()
    with pytest.raises(ModelError, match="catalog"):
        ContentModel(**FAST).fit(InteractionMatrix.build(interactions))
    for bad in ({"text_weight": -1}, {"half_life_days": "long"}, {"svd_dims": 0}):
        with pytest.raises(ModelError):
            ContentModel(**bad)


def test_refuses_a_catalog_of_ids_alone() -> None:
    interactions, catalog = synthetic_frames()
    ids_only = catalog[["item_id"]].assign(title=None, genres=[[] for _ in range(len(catalog))])
    with pytest.raises(ModelError, match="no item of the catalog has a title, genres"):
        ContentModel(**FAST).fit(InteractionMatrix.build(interactions, items=ids_only))


def test_all_weights_zero_scores_zero() -> None:
    data = small_data()
    model = ContentModel(text_weight=0.0, embed_weight=0.0, meta_weight=0.0).fit(data)
    scores = model.score(np.arange(data.n_users))
    assert scores.shape == (data.n_users, len(ITEMS))
    np.testing.assert_array_equal(scores, 0.0)


def test_features_computed_once_and_no_encoder_without_embeddings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clear_feature_cache()
    calls: list[int] = []
    real = content_module.tfidf_matrix

    def counting(texts: list[str], **kwargs: object) -> sp.csr_matrix:
        calls.append(len(texts))
        return real(texts, **kwargs)  # type: ignore[arg-type]

    def no_encoder(*args: object, **kwargs: object) -> None:
        raise AssertionError("the sentence encoder must not be built with embed_weight=0")

    monkeypatch.setattr(content_module, "tfidf_matrix", counting)
    monkeypatch.setattr(content_module, "SentenceEncoder", no_encoder)
    data = small_data()
    for weight in (0.5, 1.0, 2.0):
        ContentModel(**FAST, text_weight=weight).fit(data)
    assert calls == [len(ITEMS)]


def test_save_load_keeps_similar_items(tmp_path: Path) -> None:
    data = small_data()
    model = ContentModel(**FAST).fit(data)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, ContentModel)
    items = np.arange(len(ITEMS))
    for got, want in zip(
        loaded.similar_items(items, 4), model.similar_items(items, 4), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))


@pytest.mark.slow
def test_sentence_embeddings_alone_find_the_genre(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path))
    monkeypatch.delenv("CINEREC_TEXT_MODEL", raising=False)
    clear_feature_cache()
    data = small_data()
    model = ContentModel(text_weight=0.0, meta_weight=0.0, embed_weight=1.0).fit(data)
    assert model.vectors is not None and model.vectors.shape == (len(ITEMS), 384)
    assert set(ranked(model, data, "fan", k=2)) == {"sf3", "sf5"}
    top, _ = model.similar_items(np.array([INDEX["sf5"]]), k=3)
    assert {ITEMS[i][3][0] for i in top[0]} == {"Sci-Fi"}
    assert list((tmp_path / "embeddings").iterdir())  # vectors went to the disk cache
