"""Per-user item sequences and the left-padded batches next-item models train on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


@dataclass
class SequenceBatch:
    """A batch of next-item training windows, left-padded with 0.

    ``inputs``: LongTensor (B, L) of item ids shifted by +1 (0 is padding);
    ``targets``: LongTensor (B, L), the id that follows each input position (0 where there
    is nothing to predict). Position ``L - 1`` always holds the latest item.
    """

    inputs: torch.Tensor
    targets: torch.Tensor


def user_sequences(events: pd.DataFrame, n_users: int) -> list[np.ndarray]:
    """Each user's item indices (int64) in the order of ``events`` (time order, ties stable)."""
    users = events["user_idx"].to_numpy(np.int64)
    items = events["item_idx"].to_numpy(np.int64)
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    sorted_items = items[order]
    return [sorted_items[bounds[u] : bounds[u + 1]] for u in range(n_users)]


def training_windows(sequences: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """All (input, target) windows as int64 arrays (n_windows, max_len), ids shifted +1.

    A sequence longer than ``max_len + 1`` is cut, from its end, into consecutive windows
    of ``max_len`` predictions each, so every transition is trained on exactly once.
    Sequences with fewer than 2 items give no window.
    """
    inputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for seq in sequences:
        end = len(seq)
        while end >= 2:
            start = max(0, end - max_len - 1)
            window = seq[start:end] + 1
            row_in = np.zeros(max_len, dtype=np.int64)
            row_out = np.zeros(max_len, dtype=np.int64)
            n = len(window) - 1
            row_in[max_len - n :] = window[:-1]
            row_out[max_len - n :] = window[1:]
            inputs.append(row_in)
            targets.append(row_out)
            end = start + 1
    if not inputs:
        empty = np.zeros((0, max_len), dtype=np.int64)
        return empty, empty.copy()
    return np.stack(inputs), np.stack(targets)


def iterate_windows(
    inputs: np.ndarray, targets: np.ndarray, batch_size: int, rng: np.random.Generator
) -> Iterator[SequenceBatch]:
    """Shuffled :class:`SequenceBatch` es over the windows, trimmed to their longest row."""
    order = rng.permutation(len(inputs))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        x, y = inputs[rows], targets[rows]
        width = int((x != 0).sum(axis=1).max())
        yield SequenceBatch(torch.from_numpy(x[:, -width:]), torch.from_numpy(y[:, -width:]))


def pad_left(sequences: list[np.ndarray], max_len: int) -> torch.Tensor:
    """LongTensor (n, W) of the last ``max_len`` items of each sequence, shifted +1.

    ``W`` is the longest (truncated) sequence, at least 1; an empty sequence becomes a
    row of padding only.
    """
    tails = [np.asarray(s, dtype=np.int64)[-max_len:] for s in sequences]
    width = max([1, *(len(t) for t in tails)])
    out = np.zeros((len(tails), width), dtype=np.int64)
    for row, tail in enumerate(tails):
        if len(tail):
            out[row, width - len(tail) :] = tail + 1
    return torch.from_numpy(out)
