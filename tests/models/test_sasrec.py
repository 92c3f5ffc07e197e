"""SASRec: the model contract, learning a next-item rule, request-time sequences, bundles."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.base import Model, load_model
from cinerec.models.sasrec import WEIGHTS_FILE, SASRec
from tests.models.contract import ModelContract

TINY = {"dim": 16, "blocks": 1, "heads": 1, "dropout": 0.1, "max_len": 50, "threads": 1}
CONTRACT_PARAMS = {
    **TINY,
    "dim": 32,
    "dropout": 0.5,
    "epochs": 60,
    "patience": 60,
    "batch_size": 32,
    "lr": 1e-2,
}
RULE_ITEMS = 30


class TestSASRecContract(ModelContract):
    def model_factory(self) -> SASRec:
        return SASRec(**CONTRACT_PARAMS)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data: InteractionMatrix) -> Model:  # type: ignore[override]
        return cls().model_factory().fit(data)  # fitted once per class: training is slow


def rule_matrix(n_users: int = 200, seed: int = 0) -> tuple[InteractionMatrix, np.ndarray]:
    """Users watch i, i+1, i+2, ... (mod 30) from a random start; the last one is held out.

    Returns the training matrix and each user's held-out next item.
    """
    rng = np.random.default_rng(seed)
    rows, held = [], []
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for user in range(n_users):
        first, length = int(rng.integers(RULE_ITEMS)), int(rng.integers(5, 12))
        items = [(first + k) % RULE_ITEMS for k in range(length)]
        held.append(items[-1])
        for k, item in enumerate(items[:-1]):
            rows.append((f"u{user}", f"i{item}", "like", 1.0, start + pd.Timedelta(hours=k)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event", "value", "timestamp"])
    catalog = pd.DataFrame({"item_id": [f"i{i}" for i in range(RULE_ITEMS)]})
    data = InteractionMatrix.build(frame, items=catalog)
    return data, data.items.lookup([f"i{i}" for i in held])


@pytest.fixture(scope="module")
def rule() -> tuple[SASRec, InteractionMatrix, np.ndarray]:
    data, held = rule_matrix()
    model = SASRec(**TINY, epochs=15, patience=3, batch_size=64, lr=1e-2).fit(data)
    return model, data, held


def test_learns_the_next_item_rule(rule: tuple[SASRec, InteractionMatrix, np.ndarray]) -> None:
    model, data, held = rule
    top, _ = model.recommend(np.arange(data.n_users), k=1)
    assert np.mean(top[:, 0] == held) >= 0.9
    assert model.history_ is not None and model.history_.best_val_ndcg is not None


def test_a_click_changes_the_next_answer(
    rule: tuple[SASRec, InteractionMatrix, np.ndarray],
) -> None:
    model, data, _ = rule
    idx = {i: int(data.items.lookup([f"i{i}"])[0]) for i in range(RULE_ITEMS)}
    before = [idx[3], idx[4], idx[5]]
    after = [*before, idx[17]]  # a click seconds ago, never seen in training
    scores = model.score_sequences([np.array(before), np.array(after)])
    assert scores.shape == (2, data.n_items)
    assert scores[0].argmax() == idx[6]
    assert scores[1].argmax() == idx[18]
    items = np.array([idx[18], idx[6], idx[0]])
    # One sequence or two in a batch take different matrix-kernel paths: equal to float32
    # rounding (1 ulp seen), not bit for bit.
    np.testing.assert_allclose(
        model.score_sequences([after], items=items), scores[1:, items], rtol=1e-5
    )


def test_score_sequences_edge_cases(rule: tuple[SASRec, InteractionMatrix, np.ndarray]) -> None:
    model, data, _ = rule
    assert model.score_sequences([]).shape == (0, data.n_items)
    empty = model.score_sequences([np.array([], dtype=np.int64)])
    assert empty.shape == (1, data.n_items) and np.isfinite(empty).all()
    long = np.arange(200) % RULE_ITEMS  # longer than max_len: only the tail is read
    np.testing.assert_array_equal(
        model.score_sequences([long]), model.score_sequences([long[-model.params["max_len"] :]])
    )
    with pytest.raises(ModelError):
        model.score_sequences([np.array([0, data.n_items])])


def test_batched_scores_equal_single_requests(
    rule: tuple[SASRec, InteractionMatrix, np.ndarray],
) -> None:
    model, _, _ = rule
    seqs = [np.array([1, 2, 3]), np.array([7]), np.array([4, 5, 6, 7, 8, 9])]
    batched = model.score_sequences(seqs)
    for row, seq in enumerate(seqs):  # left padding must not change a sequence's scores
        np.testing.assert_allclose(batched[row], model.score_sequences([seq])[0], atol=1e-5)


def test_bundle_uses_safetensors(
    rule: tuple[SASRec, InteractionMatrix, np.ndarray], tmp_path: Path
) -> None:
    model, data, _ = rule
    model.save(tmp_path)
    assert (tmp_path / WEIGHTS_FILE).exists()
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as npz:
        assert not any("emb" in key or "block" in key for key in npz.files)
    loaded = load_model(tmp_path)
    assert isinstance(loaded, SASRec)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    seq = [np.array([2, 9, 4])]
    np.testing.assert_array_equal(loaded.score_sequences(seq), model.score_sequences(seq))


def test_sampled_softmax_and_genres_train() -> None:
    data, _ = rule_matrix(n_users=60, seed=1)
    data.catalog["genres"] = [["a"] if i % 2 else ["b", "c"] for i in range(RULE_ITEMS)]
    model = SASRec(**TINY, epochs=2, num_negatives=5, use_genres=True).fit(data)
    scores = model.score(np.arange(data.n_users))
    assert scores.shape == (data.n_users, data.n_items) and np.isfinite(scores).all()
    assert model.genres is not None and model.genres.shape == (RULE_ITEMS + 1, 3)
