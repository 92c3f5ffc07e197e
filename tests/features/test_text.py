"""Composed item texts, TF-IDF / LSA, and the cached sentence encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cinerec.features import text as text_module
from cinerec.features.text import (
    EmbeddingCache,
    SentenceEncoder,
    compose_text,
    default_model_path,
    reduce_dense,
    text_key,
    tfidf_matrix,
)


def test_compose_text_uses_every_field_and_skips_missing() -> None:
    catalog = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["Heat", "Dark", None],
            "type": ["movie", "series", None],
            "year": pd.array([1995, 2017, None], dtype="Int32"),
            "genres": [["Action", "Crime"], np.array(["Drama", "Sci-Fi"]), None],
            "tags": [["heist", "heist", "la"], [], None],
            "cast": [["Al Pacino", "Robert De Niro", "Val Kilmer", "Jon Voight", "Tom"], [], None],
            "director": [["Michael Mann"], [], None],
            "synopsis": ["A detective hunts a thief.", None, None],
        }
    )
    heat, dark, empty = compose_text(catalog)
    assert heat == (
        "Heat (1995). Movie. Genres: Action, Crime. A detective hunts a thief. "
        "Tags: heist, la. Cast: Al Pacino, Robert De Niro, Val Kilmer, Jon Voight. "
        "Director: Michael Mann."
    )
    assert dark == "Dark (2017). TV series. Genres: Drama, Sci-Fi."
    assert empty == ""
    # Missing columns are fine (MovieLens has title, year, genres, tags only).
    assert compose_text(catalog[["item_id", "title"]]) == ["Heat.", "Dark.", ""]
    assert compose_text(catalog.iloc[:0]) == []


def test_tfidf_shape_bigrams_and_stop_words() -> None:
    texts = [
        "Tom Hanks stars in a space drama",
        "Tom Hanks in a courtroom drama",
        "a space opera with aliens",
        "aliens invade the earth in space",
    ] * 6
    matrix = tfidf_matrix(texts, max_features=100, min_df=2)
    assert matrix.shape[0] == len(texts) and matrix.dtype == np.float32
    assert 0 < matrix.shape[1] <= 100
    np.testing.assert_allclose(np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1, 1.0, rtol=1e-5)
    dense = reduce_dense(matrix, n_components=3, seed=0)
    assert dense.shape == (len(texts), 3) and dense.dtype == np.float32
    np.testing.assert_array_equal(dense, reduce_dense(matrix, n_components=3, seed=0))
    # Too small to reduce: returned dense as it is.
    assert reduce_dense(matrix[:2], n_components=8).shape == (2, matrix.shape[1])
    assert tfidf_matrix(["the", "a"]).shape == (2, 0)  # only stop words


def test_tfidf_vocabulary_has_bigrams_without_stop_words() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["Tom Hanks in space", "Tom Hanks on trial"] * 3
    matrix = tfidf_matrix(texts, min_df=1)
    names = set(TfidfVectorizer(stop_words="english", ngram_range=(1, 2)).fit(texts).vocabulary_)
    assert matrix.shape[1] == len(names)
    assert "tom hanks" in names and "in" not in names


class FakeModel:
    """Stands in for a sentence model: deterministic unit vectors, counts what it encodes."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, len(text) % 8] = 1.0
        return out


@pytest.fixture
def fake_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[FakeModel]:
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CINEREC_TEXT_PRECISION", "float32")
    loaded: list[FakeModel] = []

    def load(path: str, precision: str) -> FakeModel:
        assert precision == "float32"
        loaded.append(FakeModel())
        return loaded[-1]

    monkeypatch.setattr(text_module, "load_sentence_model", load)
    return loaded


def test_cache_hit_does_not_load_the_model(fake_loads: list[FakeModel], tmp_path: Path) -> None:
    texts = ["one", "three", "three", "sixteen"]
    first = SentenceEncoder("fake-model", progress=False)
    vectors = first.encode(texts)
    assert vectors.shape == (4, 8) and vectors.dtype == np.float32
    assert len(fake_loads) == 1 and first.encoded == 3  # the duplicate is encoded once
    assert (tmp_path / "cache" / "embeddings" / "fake-model").is_dir()

    second = SentenceEncoder("fake-model", progress=False)
    np.testing.assert_array_equal(second.encode(texts), vectors)
    assert len(fake_loads) == 1 and second.encoded == 0  # not even loaded

    changed = SentenceEncoder("fake-model", progress=False)
    again = changed.encode(["one", "three!", "sixteen"])
    assert len(fake_loads) == 2 and fake_loads[-1].calls == [["three!"]]
    np.testing.assert_array_equal(again[[0, 2]], vectors[[0, 3]])


def test_cache_survives_compaction_and_bad_shards(
    fake_loads: list[FakeModel], tmp_path: Path
) -> None:
    encoder = SentenceEncoder("fake-model", progress=False, batch_size=2, save_every=2)
    encoder.cache.max_shards = 2
    texts = [f"text {i}" * (i + 1) for i in range(9)]
    vectors = encoder.encode(texts)
    shards = encoder.cache.shards()
    assert len(shards) == 1  # five shards written, then merged
    (shards[0].parent / "shard-0-broken.npz").write_bytes(b"not a zip")
    reread = SentenceEncoder("fake-model", progress=False)
    np.testing.assert_array_equal(reread.encode(texts), vectors)
    assert reread.encoded == 0
    assert not list(shards[0].parent.glob(".tmp-*"))


def test_embedding_cache_round_trip(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c")
    assert cache.load()[0] == {}
    keys = [text_key("a", "m"), text_key("b", "m")]
    cache.add(keys, np.eye(2, 3, dtype=np.float32))
    index, vectors, read = cache.load()
    assert len(read) == 1 and vectors.shape == (2, 3)
    np.testing.assert_array_equal(vectors[index[keys[1]]], [0, 1, 0])
    assert text_key("a", "m") != text_key("a", "other model")


def test_model_path_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CINEREC_TEXT_MODEL", raising=False)
    assert Path(default_model_path()).is_dir()
    assert SentenceEncoder(progress=False).name == "all-MiniLM-L6-v2"
    monkeypatch.setenv("CINEREC_TEXT_MODEL", "/models/my-encoder")
    encoder = SentenceEncoder(progress=False)
    assert encoder.model_path == "/models/my-encoder" and encoder.name == "__models__my-encoder"


@pytest.mark.slow
def test_real_encoder_similar_sentences_are_closer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path))
    monkeypatch.delenv("CINEREC_TEXT_MODEL", raising=False)
    encoder = SentenceEncoder(progress=False)
    assert encoder.dimension() == 384 and encoder._model is None
    vectors = encoder.encode(
        [
            "Astronauts explore a distant galaxy aboard a starship.",
            "A space crew travels to another planet.",
            "A romantic comedy about a wedding in Paris.",
        ]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
