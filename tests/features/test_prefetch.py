"""Background encoding into the embedding cache: what the trainer finds afterwards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cinerec.features.prefetch import EmbeddingPrefetch
from cinerec.features.text import SentenceEncoder

TEXTS = [
    "Heat (1995). Movie. Genres: Action, Crime. A detective hunts a crew of thieves.",
    "The Crown (2016). TV series. Genres: Drama. The reign of Queen Elizabeth II.",
    "Toy Story (1995). Movie. Genres: Animation, Children. Toys come to life.",
]


def test_misuse_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="threads"):
        EmbeddingPrefetch(TEXTS, cache=tmp_path, threads=0)
    prefetch = EmbeddingPrefetch(TEXTS, cache=tmp_path)
    with pytest.raises(RuntimeError, match="start"):
        prefetch.wait()
    prefetch.stop()  # never started: nothing to stop


def test_leaving_the_block_stops_the_process(tmp_path: Path) -> None:
    texts = [f"text number {i}, " * 20 for i in range(5000)]
    with EmbeddingPrefetch(texts, cache=tmp_path, precision="float32") as prefetch:
        assert prefetch.running
    assert not prefetch.running


@pytest.mark.slow
def test_prefetched_texts_are_not_encoded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CINEREC_TEXT_MODEL", raising=False)
    prefetch = EmbeddingPrefetch(TEXTS, cache=tmp_path, precision="float32").start()
    done = prefetch.wait(timeout=300)
    assert done.ok and done.error is None, done
    assert done.texts == 3 and done.encoded == 3
    assert done.finished >= done.started and done.waited >= 0
    assert not prefetch.running

    encoder = SentenceEncoder(cache=tmp_path, precision="float32", progress=False)
    vectors = encoder.encode(TEXTS)
    assert encoder.encoded == 0 and encoder._model is None  # all from the cache
    fresh = SentenceEncoder(cache=tmp_path / "other", precision="float32", progress=False)
    np.testing.assert_allclose(vectors, fresh.encode(TEXTS), atol=1e-5)

    again = EmbeddingPrefetch(TEXTS, cache=tmp_path, precision="float32").start().wait(300)
    assert again.ok and again.encoded == 0  # a second run finds everything cached


@pytest.mark.slow
def test_a_failing_prefetch_reports_why(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    done = (
        EmbeddingPrefetch(TEXTS, model_path=missing, cache=tmp_path, precision="float32")
        .start()
        .wait(timeout=300)
    )
    assert not done.ok and done.encoded == 0
    assert "no-such-model" in (done.error or "")
    assert not list(tmp_path.glob("embeddings/*/shard-*.npz"))
