"""The sentence model's precision: how it is chosen, kept apart in the cache, and faithful."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cinerec.errors import CinerecError
from cinerec.features import sentence_model
from cinerec.features import text as text_module
from cinerec.features.sentence_model import load_sentence_model, longest_first, resolve_precision
from cinerec.features.text import SentenceEncoder, default_model_path


def test_precision_is_explicit_then_environment_then_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CINEREC_TEXT_PRECISION", raising=False)
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("BF16") == "bfloat16"
    assert resolve_precision(" fp32 ") == "float32"
    monkeypatch.setattr(sentence_model, "native_bfloat16", lambda: True)
    assert resolve_precision() == "bfloat16" and resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(sentence_model, "native_bfloat16", lambda: False)
    assert resolve_precision() == "float32"
    monkeypatch.setenv("CINEREC_TEXT_PRECISION", "bfloat16")
    assert resolve_precision() == "bfloat16"
    assert resolve_precision("float32") == "float32"  # the argument wins


def test_unknown_precision_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CINEREC_TEXT_PRECISION", "int4")
    with pytest.raises(CinerecError, match=r"'int4'.*auto, float32, bfloat16"):
        resolve_precision()
    with pytest.raises(CinerecError, match="float32 or bfloat16"):
        load_sentence_model("unused", precision="auto")


class ScaledModel:
    """A fake sentence model whose rows are not unit length (as a bfloat16 model's are not
    exactly); records the precision it was loaded with."""

    def __init__(self, precision: str) -> None:
        self.precision = precision

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        return np.array([[3.0, 4.0 + len(t)] for t in texts], dtype=np.float32)


def test_precisions_have_their_own_cache_and_unit_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loaded: list[ScaledModel] = []

    def load(path: str, precision: str) -> ScaledModel:
        loaded.append(ScaledModel(precision))
        return loaded[-1]

    monkeypatch.setattr(text_module, "load_sentence_model", load)
    batches: list[int] = []
    half = SentenceEncoder(
        "fake", cache=tmp_path, precision="bf16", progress=False, batch_size=2,
        before_batch=lambda: batches.append(1),
    )  # fmt: skip
    assert half.precision == "bfloat16" and half.variant == "fake-bf16" and half.name == "fake"
    vectors = half.encode(["a", "bb", "ccc"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert loaded[-1].precision == "bfloat16" and len(batches) == 2  # called per batch
    assert (tmp_path / "embeddings" / "fake-bf16").is_dir()

    full = SentenceEncoder("fake", cache=tmp_path, precision="float32", progress=False)
    full.encode(["a", "bb", "ccc"])
    assert full.encoded == 3  # bfloat16 vectors are never served as float32 ones
    assert loaded[-1].precision == "float32"
    again = SentenceEncoder("fake", cache=tmp_path, precision="bfloat16", progress=False)
    np.testing.assert_array_equal(again.encode(["ccc", "a"]), vectors[[2, 0]])
    assert again.encoded == 0


@pytest.mark.slow
def test_bfloat16_embeddings_match_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quantised encoder's vectors point where the float32 model's do."""
    monkeypatch.delenv("CINEREC_TEXT_MODEL", raising=False)
    texts = [
        "Heat (1995). Movie. Genres: Action, Crime. A detective hunts a crew of thieves.",
        "The Crown (2016). TV series. Genres: Drama. The reign of Queen Elizabeth II.",
        "Toy Story (1995). Movie. Genres: Animation, Children. Toys come to life.",
        "Planet Earth. TV series. Genres: Documentary. Cast: David Attenborough.",
        "A romantic comedy about a wedding in Paris.",
    ]
    path = default_model_path()
    full = load_sentence_model(path, "float32").encode(texts, normalize_embeddings=True)
    half = load_sentence_model(path, "bfloat16").encode(texts, normalize_embeddings=True)
    full = np.asarray(full, dtype=np.float32)
    half = np.asarray(half, dtype=np.float32)
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    cosine = np.sum(full * half, axis=1)
    assert cosine.min() > 0.999, cosine
    # the neighbourhoods agree: each text's ranking of the others is the same
    np.testing.assert_array_equal(
        np.argsort(-(full @ full.T), axis=1), np.argsort(-(half @ half.T), axis=1)
    )


class Tokenized:
    """A fake model with a tokenizer whose token counts disagree with character counts."""

    max_seq_length = 3

    @staticmethod
    def tokenizer(texts: list[str], truncation: bool, max_length: int) -> dict[str, list]:
        assert truncation
        return {"input_ids": [list(range(min(len(t.split()), max_length))) for t in texts]}


def test_texts_are_ordered_by_token_count_when_the_model_has_a_tokenizer() -> None:
    pending = [(b"a", "one two"), (b"b", "a-very-long-single-token"), (b"c", "x y z w v")]
    assert [k for k, _ in longest_first(pending, Tokenized())] == [b"c", b"a", b"b"]
    assert [k for k, _ in longest_first(pending, object())] == [b"b", b"c", b"a"]  # characters
