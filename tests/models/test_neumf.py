"""NeuMF: the model contract plus its sampler, fold-in, learning and persistence."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.evaluation.evaluator import evaluate_model
from cinerec.evaluation.splits import make_split
from cinerec.models.base import load_model
from cinerec.models.neumf import NeuMF, PairBatch, pair_batches, sample_negatives
from cinerec.models.popularity import MostPopular
from tests.models.contract import ModelContract, history_of, synthetic_matrix
from tests.synthetic import clustered_dataset

#: Tiny and fast; no validation carve (30 users are too few to early-stop on).
PARAMS = {
    "factors": 8,
    "mlp_layers": [16, 8],
    "epochs": 15,
    "batch_size": 128,
    "lr": 0.02,
    "patience": 0,
    "threads": 1,
}


class TestNeuMFContract(ModelContract):
    def model_factory(self) -> NeuMF:
        return NeuMF(**PARAMS)


@pytest.fixture(scope="module")
def data() -> InteractionMatrix:
    return synthetic_matrix()


@pytest.fixture(scope="module")
def fitted(data: InteractionMatrix) -> NeuMF:
    return NeuMF(**PARAMS).fit(data)


def test_sampler_never_returns_a_positive() -> None:
    rng = np.random.default_rng(0)
    dense = (rng.random((50, 30)) < 0.6).astype(np.float32)
    dense[3] = 1.0  # a user who has everything: no negative exists
    dense[4] = 0.0
    dense[4, :29] = 1.0  # exactly one negative exists: item 29
    positives = sp.csr_matrix(dense)
    users = np.repeat(np.arange(50), 20)
    negatives = sample_negatives(positives, users, 4, rng)
    assert negatives.shape == (len(users), 4)
    assert (negatives[users == 3] == -1).all()
    assert (negatives[users == 4] == 29).all()
    valid = negatives >= 0
    rows = np.broadcast_to(users[:, None], negatives.shape)
    assert (dense[rows[valid], negatives[valid]] == 0).all()
    # Uniform over the allowed items: every non-positive of user 0 shows up.
    user0 = negatives[users == 0].ravel()
    assert set(np.flatnonzero(dense[0] == 0)) >= set(user0.tolist())


def test_pair_batches_hold_every_positive_and_typed_tensors(data: InteractionMatrix) -> None:
    positives = sp.csr_matrix(data.matrix, dtype=np.float32)
    positives.data[:] = 1.0
    batches = pair_batches(positives, 3, 50, np.random.default_rng(1))
    assert all(isinstance(b, PairBatch) for b in batches)
    users = torch.cat([b.users for b in batches]).numpy()
    items = torch.cat([b.items for b in batches]).numpy()
    labels = torch.cat([b.labels for b in batches]).numpy()
    assert batches[0].users.dtype == torch.int64 and batches[0].labels.dtype == torch.float32
    assert len(labels) == 4 * positives.nnz and labels.sum() == positives.nnz
    dense = positives.toarray()
    np.testing.assert_array_equal(dense[users, items], labels)  # labels match membership


def test_learns_clustered_preferences_and_beats_popularity() -> None:
    dataset = clustered_dataset(n_users=80)
    split = make_split("leave-last:2", dataset.interactions)
    train = InteractionMatrix.build(split.train, items=dataset.items)
    neumf = NeuMF(**{**PARAMS, "patience": 3, "epochs": 40})
    values = {}
    for model in (neumf, MostPopular()):
        result = evaluate_model(
            model.fit(train), train, split.test, ks=(10,), progress=False, n_boot=0
        )
        values[model.name] = result.metrics["ndcg@10"]
    assert values["neumf"] > values["pop"] + 0.1, values
    history = neumf.train_history
    assert history is not None and history.best_val_ndcg is not None
    assert 1 <= history.best_epoch <= len(history.epochs)
    assert all(log.seconds >= 0 and np.isfinite(log.loss) for log in history.epochs)


def test_save_load_keeps_scores_and_fold_in(
    fitted: NeuMF, data: InteractionMatrix, tmp_path: Path
) -> None:
    fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.safetensors").is_file()
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, NeuMF)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded.score(users), fitted.score(users))
    history = history_of(data, [10, 11, 12], n_rows=2)
    np.testing.assert_array_equal(
        loaded.score(np.array([0, 99]), user_items=history),
        fitted.score(np.array([0, 99]), user_items=history),
    )


def test_same_seed_same_weights_other_seed_differs(data: InteractionMatrix) -> None:
    def weights(seed: int, epochs: int = 15) -> dict[str, np.ndarray]:
        net = NeuMF(**{**PARAMS, "epochs": epochs}, seed=seed).fit(data).net
        assert net is not None
        return {k: v.numpy() for k, v in net.state_dict().items()}

    first, second, other = weights(4), weights(4), weights(5, epochs=1)
    for key, value in first.items():
        np.testing.assert_array_equal(value, second[key])
    assert not np.array_equal(first["gmf_user.weight"], other["gmf_user.weight"])


def test_fold_in_points_unknown_users_at_their_history(
    fitted: NeuMF, data: InteractionMatrix
) -> None:
    history = history_of(data, [10, 11, 12, 13])
    top, _ = fitted.recommend(np.array([data.n_users + 5]), k=3, user_items=history)
    assert len(set(top[0].tolist()) & set(range(14, 20))) >= 2  # 30..33 are popular noise
    scores = fitted.score(np.array([data.n_users + 5]), user_items=history)[0]
    assert scores[14:20].mean() > max(scores[0:10].mean(), scores[20:30].mean())
    # An empty history gets the mean user: finite scores, no error.
    empty = sp.csr_matrix((1, data.n_items), dtype=np.float32)
    assert np.isfinite(fitted.score(np.array([0]), user_items=empty)).all()


def test_bad_mlp_layers_raise() -> None:
    for bad in ([16], [15, 8], [16, 0]):
        with pytest.raises(ModelError):
            NeuMF(mlp_layers=bad)
