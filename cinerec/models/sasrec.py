"""SASRec: next-item recommendation with causal self-attention over the user's sequence.

Kang & McAuley (ICDM 2018) encode the items a user consumed, in time order, with a stack
of causal transformer blocks; the output at the last position is the user's "what next"
vector, scored against every item embedding by dot product. It captures order and
recency (a sequel after its first part, the next episode of a series) that bag-of-items
models such as ALS or EASE cannot see, and it reacts to events seconds old without any
refit: :meth:`SASRec.score_sequences` is the real-time path.

Training follows the later finding that full softmax cross-entropy over the catalog, at
every position, clearly beats the paper's binary cross-entropy with one sampled negative
(Klenitskiy & Vasilev 2023; Petrov & Macdonald, gSASRec 2023). For large catalogs
``num_negatives > 0`` switches to a sampled softmax over that many uniform negatives
shared by the batch. Blocks are pre-LayerNorm; early stopping uses each user's held-out
last event (see :mod:`cinerec.models.neural.loop`), and the stopped model is kept as is
(no refit on the held-out events — they are still part of the scoring sequence).

The network and its loss are in :mod:`cinerec.models.neural.sasrec_net`; this module
prepares the sequences, fits, scores and persists.

Persistence: the bundle's ``arrays.npz`` holds the training sequences (and the genre
multi-hot when used); the network weights go to ``weights.safetensors`` beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.features.categorical import multi_hot
from cinerec.models.base import Model, register
from cinerec.models.neural.loop import (
    TrainConfig,
    TrainHistory,
    leave_last_validation,
    load_weights,
    ndcg_at_10,
    save_weights,
    seed_everything,
    train_loop,
)
from cinerec.models.neural.sasrec_net import SASRecNet, catalog_scores, next_item_loss
from cinerec.models.neural.sequences import (
    iterate_windows,
    pad_left,
    training_windows,
    user_sequences,
)
from cinerec.models.space import SearchSpace

WEIGHTS_FILE = "weights.safetensors"


@register
class SASRec(Model):
    """Self-attentive sequential recommender (see the module docstring).

    Scores ``h_u · e_i`` where ``h_u`` (d,) is the network's output at the user's latest
    event and ``e_i`` the item's embedding. Training sequences are the user's events in
    time order (ties in the order the events came); at most the last ``max_len`` are
    read when scoring. ``fit`` keeps a :class:`TrainHistory` in ``self.history_``.
    """

    name = "sasrec"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.net: SASRecNet | None = None
        self.sequences: list[np.ndarray] | None = None
        self.genres: np.ndarray | None = None  # (n_items + 1, g) float32 or None
        self.history_: TrainHistory | None = None
        self._items: torch.Tensor | None = None  # cached item_vectors() for scoring

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {
            "dim": 64,
            "blocks": 2,
            "heads": 2,
            # Measured on ml-latest-small (leave-last:1, see the README): dropout 0.5 and
            # 200 positions beat the first defaults (0.2 / 50), which stopped at epoch 3.
            "dropout": 0.5,
            "max_len": 200,
            "num_negatives": 0,
            "use_genres": False,
            "epochs": 40,
            "batch_size": 128,
            "lr": 1e-3,
            "weight_decay": 0.0,
            "patience": 6,
            "max_seconds": None,
            "seed": 0,
            "threads": 2,
            "progress": False,
        }

    @classmethod
    def search_space(cls) -> SearchSpace:
        return {}  # neural training is too slow to tune on the development machine

    # ----- training ------------------------------------------------------------------
    def _fit(self, data: InteractionMatrix) -> None:
        p = self.params
        n_items = data.n_items
        self.genres = self._genre_features(data) if p["use_genres"] else None
        train_events, val_users, val_items = leave_last_validation(data.events, data.n_users)
        train_seqs = user_sequences(train_events, data.n_users)
        inputs, targets = training_windows(train_seqs, int(p["max_len"]))
        if len(inputs) == 0:
            raise ModelError("sasrec: no user has two events to learn a transition from")
        seed_everything(int(p["seed"]))
        net = self._build(n_items)
        validate = None
        if len(val_users):
            exclude = sp.csr_matrix(
                (
                    np.ones(len(train_events), dtype=np.float32),
                    (train_events["user_idx"].to_numpy(), train_events["item_idx"].to_numpy()),
                ),
                shape=(data.n_users, n_items),
            )[val_users]
            val_seqs = [train_seqs[u] for u in val_users]

            def validate(module: SASRecNet) -> float:
                scores = catalog_scores(module, val_seqs, int(p["max_len"]))
                return ndcg_at_10(scores, val_items, exclude)

        batch_size = int(p["batch_size"])
        negatives = int(p["num_negatives"])
        config = TrainConfig(
            epochs=int(p["epochs"]),
            batch_size=batch_size,
            lr=float(p["lr"]),
            weight_decay=float(p["weight_decay"]),
            patience=int(p["patience"]),
            seed=int(p["seed"]),
            threads=int(p["threads"]),
            max_seconds=p["max_seconds"],
        )
        self.history_ = train_loop(
            net,
            lambda rng: iterate_windows(inputs, targets, batch_size, rng),
            lambda module, batch: next_item_loss(module, batch, negatives),
            config,
            validate=validate,
            progress=bool(p["progress"]),
            desc="sasrec",
        )
        self.sequences = user_sequences(data.events, data.n_users)
        self._set_net(net)

    def _build(self, n_items: int) -> SASRecNet:
        p = self.params
        genres = None if self.genres is None else torch.from_numpy(self.genres)
        return SASRecNet(
            n_items, int(p["dim"]), int(p["blocks"]), int(p["heads"]), float(p["dropout"]),
            int(p["max_len"]), genres,
        )  # fmt: skip

    def _set_net(self, net: SASRecNet) -> None:
        net.eval()
        self.net = net
        with torch.no_grad():
            self._items = net.item_vectors().detach().clone()

    @staticmethod
    def _genre_features(data: InteractionMatrix) -> np.ndarray | None:
        catalog = data.catalog
        if catalog is None or "genres" not in catalog.columns:
            return None
        matrix, _ = multi_hot(catalog, "genres", data.items)
        dense = np.zeros((data.n_items + 1, matrix.shape[1]), dtype=np.float32)
        dense[1:] = matrix.toarray()
        return dense

    # ----- scoring -------------------------------------------------------------------
    def score_sequences(
        self, sequences: list[np.ndarray], items: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores float32 (n, n_items) — or (n, m) for ``items`` (m,) — of the next item.

        ``sequences`` are item indices in time order, latest last; only the last
        ``max_len`` are read. This is the real-time path: a sequence may end with events
        seconds old that training never saw. An empty sequence gets the model's
        "no history" scores.
        """
        net, cached = self._fitted()
        n_items = self.n_items
        for seq in sequences:
            seq = np.asarray(seq)
            if seq.size and (seq.min() < 0 or seq.max() >= n_items):
                raise ModelError(f"sasrec: item index out of range [0, {n_items})")
        if not sequences:
            m = n_items if items is None else len(items)
            return np.zeros((0, m), dtype=np.float32)
        cols = None if items is None else torch.from_numpy(np.asarray(items, dtype=np.int64) + 1)
        with torch.inference_mode():
            h = net(pad_left(sequences, net.max_len), cached)[:, -1]
            targets = cached[1:] if cols is None else cached[cols]
            return (h @ targets.T).numpy().astype(np.float32, copy=False)

    def score(
        self,
        user_idx: np.ndarray,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        """Scores of each user's next item from their sequence.

        Without ``user_items`` the sequence is the user's training events. A CSR row
        carries no order, so with ``user_items`` the sequence is assumed to be: the
        training events whose items are still in the row (training order), then the
        row's other items in ascending index order — i.e. new items are taken as more
        recent than everything in training. For exact order use :meth:`score_sequences`.
        """
        self._fitted()
        history = self.history(np.asarray(user_idx, dtype=np.int64), user_items)
        seqs = self._sequences_for(np.asarray(user_idx, dtype=np.int64), history, user_items)
        if not seqs:
            m = self.n_items if items is None else len(items)
            return np.zeros((0, m), dtype=np.float32)
        chunk = 512
        parts = [
            self.score_sequences(seqs[i : i + chunk], items) for i in range(0, len(seqs), chunk)
        ]
        return np.vstack(parts)

    def _sequences_for(
        self, user_idx: np.ndarray, history: sp.csr_matrix, user_items: sp.csr_matrix | None
    ) -> list[np.ndarray]:
        known = self.sequences or []
        if user_items is None:
            return [known[u] for u in user_idx]
        out = []
        for row, user in enumerate(user_idx):
            present = history.indices[history.indptr[row] : history.indptr[row + 1]]
            present = present[history.data[history.indptr[row] : history.indptr[row + 1]] != 0]
            past = known[user] if 0 <= user < len(known) else np.zeros(0, dtype=np.int64)
            kept = past[np.isin(past, present)]
            new = np.setdiff1d(present, past)
            out.append(np.concatenate([kept, new]).astype(np.int64))
        return out

    def _fitted(self) -> tuple[SASRecNet, torch.Tensor]:
        if self.net is None or self._items is None or self.sequences is None:
            raise ModelError("sasrec is not fitted")
        return self.net, self._items

    # ----- persistence ---------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        self._fitted()
        seqs = self.sequences or []
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        state = {
            "seq_items": np.concatenate([*seqs, np.zeros(0, np.int64)]).astype(np.int64),
            "seq_indptr": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        }
        if self.genres is not None:
            state["genres"] = self.genres
        return state

    def save(self, folder: str | Path) -> None:
        """Write the bundle; network weights go to ``weights.safetensors``."""
        net, _ = self._fitted()
        super().save(folder)
        save_weights(net, Path(folder) / WEIGHTS_FILE)

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        indptr = arrays["seq_indptr"]
        items = arrays["seq_items"]
        self.sequences = [items[indptr[u] : indptr[u + 1]] for u in range(len(indptr) - 1)]
        self.genres = arrays.get("genres")

    def _restore_files(self, folder: Path) -> None:
        net = self._build(self.n_items)
        load_weights(net, Path(folder) / WEIGHTS_FILE)
        self._set_net(net)
