"""The shared neural training loop: early stopping, determinism, weights, helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from cinerec.errors import ModelError
from cinerec.models.neural import (
    TrainConfig,
    leave_last_validation,
    load_weights,
    ndcg_at_10,
    save_weights,
    seed_everything,
    train_loop,
)

X = torch.linspace(-1, 1, 64).reshape(32, 2)
Y = (X @ torch.tensor([[2.0], [-1.0]])) + 0.5


def make_module(seed: int = 0) -> nn.Module:
    seed_everything(seed)
    return nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.3), nn.Linear(8, 1))


def batches(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = torch.from_numpy(rng.permutation(len(X)))
    for start in range(0, len(X), 8):
        rows = order[start : start + 8]
        yield X[rows], Y[rows]


def mse(module: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return ((module(x) - y) ** 2).mean()


def test_early_stopping_restores_best_epoch() -> None:
    module = make_module()
    scores = iter([0.1, 0.3, 0.2, 0.25, 0.9])
    snapshots: list[dict[str, torch.Tensor]] = []

    def validate(m: nn.Module) -> float:
        assert not m.training and not torch.is_grad_enabled()
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return next(scores)

    config = TrainConfig(epochs=10, patience=2, lr=0.05)
    history = train_loop(module, batches, mse, config, validate=validate, progress=False)
    assert [e.epoch for e in history.epochs] == [1, 2, 3, 4]  # stopped after 2 stale epochs
    assert history.best_epoch == 2 and history.best_val_ndcg == pytest.approx(0.3)
    assert [e.val_ndcg for e in history.epochs] == pytest.approx([0.1, 0.3, 0.2, 0.25])
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, snapshots[1][key], rtol=0, atol=0)
    assert not module.training


def test_without_validation_runs_all_epochs_and_learns() -> None:
    module = make_module()
    threads = torch.get_num_threads()
    history = train_loop(
        module, batches, mse, TrainConfig(epochs=30, lr=0.02, threads=1), progress=False
    )
    assert len(history.epochs) == 30 and history.best_epoch == 30
    assert history.best_val_ndcg is None
    assert history.epochs[-1].loss < history.epochs[0].loss
    assert torch.get_num_threads() == threads  # restored


def test_same_seed_same_weights() -> None:
    def run(seed: int) -> list[torch.Tensor]:
        module = make_module()
        train_loop(module, batches, mse, TrainConfig(epochs=3, seed=seed), progress=False)
        return [p.detach().clone() for p in module.parameters()]

    first, second, other = run(1), run(1), run(2)
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, c) for a, c in zip(first, other, strict=True))


def test_max_seconds_stops_early() -> None:
    history = train_loop(
        make_module(), batches, mse, TrainConfig(epochs=50, max_seconds=0.0), progress=False
    )
    assert len(history.epochs) == 1


def test_weights_round_trip_with_safetensors(tmp_path: Path) -> None:
    module = make_module(3)
    path = tmp_path / "w.safetensors"
    save_weights(module, path)
    assert path.read_bytes()[8:9] == b"{"  # safetensors: 8-byte length, then a JSON header
    other = make_module(4)
    load_weights(other, path)
    for a, b in zip(module.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ModelError):
        load_weights(nn.Linear(3, 3), path)


def test_leave_last_validation() -> None:
    events = pd.DataFrame(
        {
            "user_idx": [0, 1, 0, 2, 0, 1, 1, 2],
            "item_idx": [10, 20, 11, 30, 12, 21, 22, 31],
            "timestamp": np.arange(8, dtype=np.int64),
        }
    )
    train, users, items = leave_last_validation(events, n_users=4)
    assert users.tolist() == [0, 1] and items.tolist() == [12, 22]  # user 2 has only 2
    assert train["item_idx"].tolist() == [10, 20, 11, 30, 21, 31]


def test_ndcg_at_10() -> None:
    scores = np.array([[0.9, 0.5, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    # Row 0: target 1 ranks second; row 1: target 0 is last, but items 2-3 are excluded.
    plain = ndcg_at_10(scores, np.array([1, 0]))
    assert plain == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / 2)
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 0, 1, 1]]))
    # The target itself (item 0 of row 1) is never excluded.
    assert ndcg_at_10(scores, np.array([1, 0]), exclude) == pytest.approx((1 + 1 / np.log2(3)) / 2)
