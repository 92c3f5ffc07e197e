"""One training loop shared by every neural model, plus its validation helpers.

A model supplies three things: the ``torch.nn.Module``, a batch factory
``make_batches(rng)`` (a fresh, shuffled pass over the training data per epoch, drawn from
the numpy generator it is given) and ``loss_fn(module, batch) -> scalar tensor``.
:func:`train_loop` owns everything else — seeding, the optimiser (AdamW), the thread
count, a tqdm progress bar, validation after each epoch, early stopping on validation
NDCG@10 and restoring the best epoch's weights — so every model trains the same way and
is reproducible: the same seed gives bit-identical weights on CPU.

Validation for next-item models is "leave last": :func:`leave_last_validation` holds out
each user's latest event and :func:`ndcg_at_10` ranks it against the full catalog.
Weights are persisted with safetensors (:func:`save_weights` / :func:`load_weights`),
never pickle.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from cinerec.errors import ModelError

#: The model's module type and its batch type: ``loss_fn`` and ``validate`` receive the very
#: module handed to :func:`train_loop`, and ``loss_fn`` the batches ``make_batches`` yields.
ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)
BatchT = TypeVar("BatchT")


@dataclass
class TrainConfig:
    """Optimisation settings of :func:`train_loop`.

    ``patience``: epochs without a better validation NDCG before stopping; ``threads``:
    torch intra-op threads while training (restored afterwards); ``max_seconds``: stop
    after the epoch that crosses this wall-clock budget (None: no budget).
    """

    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 3
    seed: int = 0
    threads: int = 2
    max_seconds: float | None = None


@dataclass
class EpochLog:
    """One finished epoch: 1-based ``epoch``, mean batch loss, validation NDCG@10, seconds."""

    epoch: int
    loss: float
    val_ndcg: float | None
    seconds: float


@dataclass
class TrainHistory:
    """All epochs run; ``best_epoch`` (1-based) is the one whose weights the module holds."""

    epochs: list[EpochLog] = field(default_factory=list)
    best_epoch: int = 0
    best_val_ndcg: float | None = None


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch's global generator (init, dropout) and return a numpy generator."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def train_loop(
    module: ModuleT,
    make_batches: Callable[[np.random.Generator], Iterable[BatchT]],
    loss_fn: Callable[[ModuleT, BatchT], torch.Tensor],
    config: TrainConfig,
    *,
    validate: Callable[[ModuleT], float] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> TrainHistory:
    """Train ``module`` in place and return its history.

    Each epoch draws batches from ``make_batches(rng)`` (``rng`` seeded by
    ``config.seed``), minimises ``loss_fn`` with AdamW, then calls ``validate(module)`` in
    eval mode under ``torch.no_grad``. Training stops after ``config.epochs``, after
    ``config.patience`` epochs without a strictly better validation score, or once
    ``config.max_seconds`` have passed; with ``validate`` the module ends holding the best
    epoch's weights, without it the last epoch's. The module is left in eval mode.
    """
    if config.epochs < 1 or config.patience < 1:
        raise ModelError("epochs and patience must be at least 1")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(config.threads)))
    try:
        return _run(module, make_batches, loss_fn, config, validate, progress, desc)
    finally:
        torch.set_num_threads(previous_threads)
        module.eval()


def _run(
    module: ModuleT,
    make_batches: Callable[[np.random.Generator], Iterable[BatchT]],
    loss_fn: Callable[[ModuleT, BatchT], torch.Tensor],
    config: TrainConfig,
    validate: Callable[[ModuleT], float] | None,
    progress: bool,
    desc: str,
) -> TrainHistory:
    rng = seed_everything(config.seed)
    optimizer = torch.optim.AdamW(
        module.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    history = TrainHistory()
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    started = time.perf_counter()
    last_val = "-"
    bar = tqdm(total=config.epochs, desc=desc, disable=not progress, leave=False, unit="epoch")
    try:
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            module.train()
            total, count = 0.0, 0
            for batch in make_batches(rng):
                loss = loss_fn(module, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
                count += 1
                if count % 10 == 0:
                    bar.set_postfix(loss=f"{total / count:.4f}", ndcg10=last_val)
            if count == 0:
                raise ModelError(f"{desc}: make_batches produced no batch")
            val: float | None = None
            if validate is not None:
                module.eval()
                with torch.no_grad():
                    val = float(validate(module))
                last_val = f"{val:.4f}"
            mean_loss = total / count
            history.epochs.append(EpochLog(epoch, mean_loss, val, time.perf_counter() - t0))
            bar.set_postfix(loss=f"{mean_loss:.4f}", ndcg10=last_val)
            bar.update(1)
            if val is None:
                history.best_epoch = epoch
            elif history.best_val_ndcg is None or val > history.best_val_ndcg:
                history.best_epoch, history.best_val_ndcg = epoch, val
                best_state = copy.deepcopy(module.state_dict())
                stale = 0
            else:
                stale += 1
                if stale >= config.patience:
                    break
            if (
                config.max_seconds is not None
                and time.perf_counter() - started >= config.max_seconds
            ):
                break
    finally:
        bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    return history


def save_weights(module: torch.nn.Module, path: str | Path) -> None:
    """Write the module's state dict to ``path`` as safetensors (tensors only, no pickle)."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    save_file(tensors, str(path))


def load_weights(module: torch.nn.Module, path: str | Path) -> None:
    """Load weights written by :func:`save_weights`; every key must match (strict)."""
    try:
        tensors = load_file(str(path))
        module.load_state_dict(tensors, strict=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelError(f"cannot load weights from {path}: {exc}") from exc


def leave_last_validation(
    events: pd.DataFrame, n_users: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Hold out the last event of every user with at least 3 events, for early stopping.

    ``events`` must be in time order (as :class:`InteractionMatrix` keeps them); the last
    row per user in that order is held out. Returns the remaining events (order kept)
    and the held-out pairs as int64 arrays (n_val,) sorted by user.
    """
    users = events["user_idx"].to_numpy(np.int64)
    if users.size and (users.min() < 0 or users.max() >= n_users):
        raise ModelError(f"events name users outside [0, {n_users})")
    counts = np.bincount(users, minlength=n_users)
    from_end = events.groupby("user_idx", sort=False).cumcount(ascending=False).to_numpy()
    held = (from_end == 0) & (counts[users] >= 3)
    val_users = users[held]
    val_items = events["item_idx"].to_numpy(np.int64)[held]
    order = np.argsort(val_users, kind="stable")
    return events[~held].reset_index(drop=True), val_users[order], val_items[order]


def ndcg_at_10(
    scores: np.ndarray, targets: np.ndarray, exclude: sp.csr_matrix | None = None
) -> float:
    """Mean NDCG@10 of one held-out item per row, ranked against the full catalog.

    ``scores`` is (n, n_items), ``targets`` (n,) item indices; ``exclude`` (n, n_items)
    marks items to drop from the ranking (the user's training items) — the target itself
    is never dropped. The rank counts items scoring strictly higher than the target.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    targets = np.asarray(targets, dtype=np.int64)
    if len(targets) == 0:
        return 0.0
    rows = np.arange(len(targets))
    target_scores = scores[rows, targets]
    if exclude is not None:
        r, c = sp.csr_matrix(exclude).nonzero()
        scores[r, c] = -np.inf
    scores[rows, targets] = -np.inf
    rank = (scores > target_scores[:, None]).sum(axis=1)
    gains = np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0)
    return float(gains.mean())
