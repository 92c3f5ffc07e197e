"""Neural Collaborative Filtering: NeuMF (He et al., WWW 2017) on implicit feedback.

NeuMF scores a user-item pair with two towers over *separate* embeddings — GMF, the
element-wise product of a user and an item vector (a generalised matrix factorisation),
and an MLP over the concatenated user and item vectors — fused by one final linear layer
into a logit. It is trained as a pointwise classifier (binary cross-entropy) on the
binarised interaction matrix: every observed pair is a positive and ``num_negatives``
items the user never interacted with, drawn uniformly and redrawn every epoch, are the
negatives. Training runs in the shared loop of :mod:`cinerec.models.neural.loop` with
early stopping on NDCG@10 of a leave-last-1 validation carved from the training events.

The model is transductive (one embedding per training user). Request-time histories
(``user_items`` rows that differ from the user's training row, or unknown users) are
*folded in*: the network is frozen and a fresh pair of user embeddings, started at the
mean trained user, is fitted by ``fold_in_steps`` Adam steps on the history's items as
positives plus sampled negatives — the training objective restricted to one user.

Known result: on MovieLens-style data a well-tuned NeuMF does not beat tuned linear
item models or matrix factorisation (Dacrema et al., RecSys 2019; Rendle et al., RecSys
2020); it is here as the neural reference point, not as the expected winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from cinerec.data.matrix import InteractionMatrix
from cinerec.errors import ModelError
from cinerec.models.base import Model, register
from cinerec.models.neural.loop import (
    TrainConfig,
    TrainHistory,
    leave_last_validation,
    load_weights,
    ndcg_at_10,
    save_weights,
    train_loop,
)

WEIGHTS_FILE = "weights.safetensors"
#: Upper bound on user x item x hidden floats materialised per scoring chunk.
_CHUNK_FLOATS = 1 << 22


@dataclass
class PairBatch:
    """One training mini-batch of (user, item, label) triples.

    ``users`` LongTensor (B,) user rows, ``items`` LongTensor (B,) item columns,
    ``labels`` FloatTensor (B,): 1.0 for an observed pair, 0.0 for a sampled negative.
    """

    users: Tensor
    items: Tensor
    labels: Tensor


class NeuMFNet(nn.Module):
    """GMF and MLP towers over separate embeddings, fused by a linear output layer.

    Embeddings: GMF user/item (n, factors); MLP user/item (n, mlp_layers[0] // 2). The MLP
    maps the concatenation (mlp_layers[0]) through mlp_layers[1:] with ReLU and dropout;
    its first layer is stored split into a user half and an item half (``W [u; i] =
    W_u u + W_i i``) so that full-catalog scoring computes the item half once.
    The output layer reads [GMF product (factors); last MLP layer] -> one logit.
    """

    def __init__(
        self, n_users: int, n_items: int, factors: int, mlp_layers: list[int], dropout: float
    ) -> None:
        super().__init__()
        half = mlp_layers[0] // 2
        self.gmf_user = nn.Embedding(n_users, factors)
        self.gmf_item = nn.Embedding(n_items, factors)
        self.mlp_user = nn.Embedding(n_users, half)
        self.mlp_item = nn.Embedding(n_items, half)
        self.first_user = nn.Linear(half, mlp_layers[1])
        self.first_item = nn.Linear(half, mlp_layers[1], bias=False)
        tower: list[nn.Module] = [nn.ReLU(), nn.Dropout(dropout)]
        for width_in, width_out in pairwise(mlp_layers[1:]):
            tower += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(dropout)]
        self.tower = nn.Sequential(*tower)
        self.out = nn.Linear(factors + mlp_layers[-1], 1)
        for emb in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(emb.weight, std=0.01)  # as in the paper

    def pair_logits(self, user_gmf: Tensor, user_mlp: Tensor, items: Tensor) -> Tensor:
        """Logits (B,) for user vectors (B, factors), (B, half) and item ids (B,)."""
        w_gmf, w_mlp = self._out_weights()
        gmf = (user_gmf * self.gmf_item(items)) @ w_gmf
        hidden = self.tower(self.first_user(user_mlp) + self.first_item(self.mlp_item(items)))
        return gmf + hidden @ w_mlp + self.out.bias

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits (B,) for user ids (B,) and item ids (B,)."""
        return self.pair_logits(self.gmf_user(users), self.mlp_user(users), items)

    def score_matrix(self, user_gmf: Tensor, user_mlp: Tensor, items: Tensor) -> Tensor:
        """Logits (n, m) of every user vector (n, ·) against item ids (m,), in chunks."""
        w_gmf, w_mlp = self._out_weights()
        item_gmf = self.gmf_item(items)  # (m, factors)
        item_first = self.first_item(self.mlp_item(items))  # (m, h1)
        user_first = self.first_user(user_mlp)  # (n, h1)
        gmf = (user_gmf * w_gmf) @ item_gmf.T  # (n, m)
        rows = max(1, _CHUNK_FLOATS // max(1, len(items) * item_first.shape[1]))
        parts = []
        for start in range(0, len(user_first), rows):
            hidden = self.tower(user_first[start : start + rows, None, :] + item_first[None])
            parts.append(hidden @ w_mlp)  # (rows, m)
        mlp = torch.cat(parts) if parts else gmf.new_zeros(gmf.shape)
        return gmf + mlp + self.out.bias

    def _out_weights(self) -> tuple[Tensor, Tensor]:
        w = self.out.weight[0]
        factors = self.gmf_user.embedding_dim
        return w[:factors], w[factors:]


def sample_negatives(
    positives: sp.csr_matrix, users: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Items (len(users), n) drawn uniformly from those each user has *not* interacted with.

    Vectorised rejection sampling: draw all, redraw the draws that hit a positive (looked
    up by binary search in the sorted user*n_items+item keys of ``positives``). A user
    who interacted with every item gets -1 slots.
    """
    n_items = positives.shape[1]
    csr = sp.csr_matrix(positives)
    csr.sum_duplicates()  # sorted indices, so the keys below are sorted
    counts = np.diff(csr.indptr)
    keys = np.repeat(np.arange(csr.shape[0], dtype=np.int64), counts) * n_items + csr.indices
    users = np.asarray(users, dtype=np.int64)
    out = rng.integers(0, n_items, size=(len(users), n), dtype=np.int64)
    full = counts[users] >= n_items
    out[full] = -1
    todo = np.ones(out.shape, dtype=bool)
    todo[full] = False
    while True:
        rows, cols = np.nonzero(todo)
        if not rows.size:
            return out
        wanted = users[rows] * n_items + out[rows, cols]
        hit = np.searchsorted(keys, wanted)
        bad = (hit < len(keys)) & (keys[np.minimum(hit, len(keys) - 1)] == wanted)
        todo[rows[~bad], cols[~bad]] = False
        rows, cols = rows[bad], cols[bad]
        out[rows, cols] = rng.integers(0, n_items, size=rows.size, dtype=np.int64)


def pair_batches(
    positives: sp.csr_matrix, num_negatives: int, batch_size: int, rng: np.random.Generator
) -> list[PairBatch]:
    """One epoch of shuffled :class:`PairBatch` es: every positive + fresh negatives."""
    coo = positives.tocoo()
    users = coo.row.astype(np.int64)
    items = coo.col.astype(np.int64)
    negatives = sample_negatives(positives, users, num_negatives, rng)
    all_users = np.concatenate([users, np.repeat(users, num_negatives)])
    all_items = np.concatenate([items, negatives.ravel()])
    labels = np.concatenate([np.ones(len(users)), np.zeros(negatives.size)]).astype(np.float32)
    keep = all_items >= 0
    order = rng.permutation(np.flatnonzero(keep))
    u, i, y = torch.from_numpy(all_users), torch.from_numpy(all_items), torch.from_numpy(labels)
    return [
        PairBatch(u[chunk], i[chunk], y[chunk])
        for chunk in (
            torch.from_numpy(order[s : s + batch_size]) for s in range(0, len(order), batch_size)
        )
    ]


def _binary(matrix: sp.spmatrix) -> sp.csr_matrix:
    X = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    X.eliminate_zeros()
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


@register
class NeuMF(Model):
    """Neural matrix factorisation: GMF + MLP towers fused by a linear layer (He et al. 2017).

    Params: ``factors`` (GMF width), ``mlp_layers`` (concat width, then hidden widths),
    ``dropout``, ``num_negatives`` per positive, and the training loop's ``epochs``,
    ``batch_size``, ``lr``, ``weight_decay``, ``patience`` (0: no validation carve, train
    on everything for ``epochs``; with a carve, the held-out last events are not trained
    on — no refit), ``max_seconds``, ``seed``, ``threads`` (1, as for ALS: the dev
    machine's second core is busy); fold-in takes ``fold_in_steps`` Adam steps at
    ``fold_in_lr``. ``search_space`` is empty on purpose: one fit takes minutes on
    MovieLens-small here, too slow to tune. After ``fit``, ``train_history`` holds the
    :class:`TrainHistory` (per-epoch loss, validation NDCG@10, seconds). Scores are
    logits (float32); weights are saved to ``weights.safetensors``.
    """

    name = "neumf"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        layers = self.params["mlp_layers"]
        if len(layers) < 2 or layers[0] % 2 or min(layers) < 1:
            raise ModelError(f"neumf: mlp_layers needs >= 2 positive widths, first even: {layers}")
        self.net: NeuMFNet | None = None
        self.train_history: TrainHistory | None = None
        self._shape = (0, 0)  # (n_users, n_items) between _restore and _restore_files

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {
            "factors": 32,
            "mlp_layers": [64, 32, 16],
            "dropout": 0.0,
            "num_negatives": 4,
            "epochs": 20,
            "batch_size": 1024,
            "lr": 1e-3,
            "weight_decay": 0.0,
            "patience": 3,
            "max_seconds": None,
            "fold_in_steps": 30,
            "fold_in_lr": 0.05,
            "seed": 0,
            "threads": 1,
        }

    def _build(self, n_users: int, n_items: int) -> NeuMFNet:
        p = self.params
        return NeuMFNet(n_users, n_items, int(p["factors"]), list(p["mlp_layers"]), p["dropout"])

    def _fit(self, data: InteractionMatrix) -> None:
        p = self.params
        config = TrainConfig(
            epochs=int(p["epochs"]),
            batch_size=int(p["batch_size"]),
            lr=float(p["lr"]),
            weight_decay=float(p["weight_decay"]),
            patience=max(1, int(p["patience"])),
            seed=int(p["seed"]),
            threads=int(p["threads"]),
            max_seconds=p["max_seconds"],
        )
        torch.manual_seed(config.seed)  # the initial weights
        net = self._build(data.n_users, data.n_items)
        positives = _binary(data.matrix)
        validate = None
        train_events, val_users, val_items = leave_last_validation(data.events, data.n_users)
        if int(p["patience"]) > 0 and len(val_users):
            pairs = (train_events["user_idx"], train_events["item_idx"])
            ones = np.ones(len(train_events), dtype=np.float32)
            positives = _binary(sp.csr_matrix((ones, pairs), shape=data.matrix.shape))
            validate = self._validator(positives, np.asarray(val_users), np.asarray(val_items))
        negatives, batch_size = int(p["num_negatives"]), config.batch_size

        def make_batches(rng: np.random.Generator) -> list[PairBatch]:
            return pair_batches(positives, negatives, batch_size, rng)

        def loss_fn(module: NeuMFNet, batch: PairBatch) -> Tensor:
            logits = module(batch.users, batch.items)
            return nn.functional.binary_cross_entropy_with_logits(logits, batch.labels)

        self.train_history = train_loop(
            net, make_batches, loss_fn, config, validate=validate, progress=False, desc="neumf"
        )
        self.net = net  # in eval mode: the loop leaves it so

    @staticmethod
    def _validator(train: sp.csr_matrix, users: np.ndarray, targets: np.ndarray) -> Any:
        exclude = train[users]
        ids = torch.from_numpy(users.astype(np.int64))

        def validate(module: NeuMFNet) -> float:  # the loop calls it in eval mode, no_grad
            items = torch.arange(module.gmf_item.num_embeddings)
            scores = module.score_matrix(module.gmf_user(ids), module.mlp_user(ids), items)
            return float(ndcg_at_10(scores.numpy(), targets, exclude))

        return validate

    # ----- scoring ---------------------------------------------------------------------
    def score(
        self,
        user_idx: np.ndarray,
        items: np.ndarray | None = None,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        net = self._net()
        user_idx = np.asarray(user_idx, dtype=np.int64)
        n_users = net.gmf_user.num_embeddings
        if user_items is None:
            if user_idx.size and (user_idx.min() < 0 or user_idx.max() >= n_users):
                raise ModelError(f"{self.name}: user index out of range [0, {n_users})")
            ids = torch.from_numpy(user_idx)
            with torch.no_grad():
                user_gmf, user_mlp = net.gmf_user(ids), net.mlp_user(ids)
        else:
            user_gmf, user_mlp = self._request_vectors(user_idx, self.history(user_idx, user_items))
        cols = np.arange(self.n_items) if items is None else np.asarray(items, dtype=np.int64)
        with torch.no_grad():
            scores = net.score_matrix(user_gmf, user_mlp, torch.from_numpy(cols))
        return scores.numpy().astype(np.float32, copy=False)

    def _request_vectors(self, user_idx: np.ndarray, rows: sp.csr_matrix) -> tuple[Tensor, Tensor]:
        """User vectors for request-time rows: trained ones where the row is unchanged."""
        net = self._net()
        rows = _binary(rows)
        seen = _binary(self._seen())
        same = np.zeros(len(user_idx), dtype=bool)
        known = np.flatnonzero((user_idx >= 0) & (user_idx < seen.shape[0]))
        if known.size:
            diff = (rows[known] - seen[user_idx[known]]).tocsr()
            diff.eliminate_zeros()
            same[known] = np.diff(diff.indptr) == 0
        with torch.no_grad():
            ids = torch.from_numpy(np.where(same, user_idx, 0))
            user_gmf, user_mlp = net.gmf_user(ids).clone(), net.mlp_user(ids).clone()
        changed = np.flatnonzero(~same)
        if changed.size:
            gmf, mlp = self.fold_in(rows[changed])
            user_gmf[changed], user_mlp[changed] = gmf, mlp
        return user_gmf, user_mlp

    def fold_in(self, rows: sp.csr_matrix) -> tuple[Tensor, Tensor]:
        """User vectors (n, factors), (n, half) fitted to history rows (n, n_items).

        The network is frozen; each row's vectors start at the mean trained user and take
        ``fold_in_steps`` Adam steps on BCE over its items (positives) and
        ``num_negatives`` uniform non-history items per positive, redrawn each step from
        a generator seeded by ``seed``: deterministic, and vectorised over the rows.
        """
        net, p = self._net(), self.params
        rows = _binary(rows)
        coo = rows.tocoo()
        pos_rows, pos_items = coo.row.astype(np.int64), coo.col.astype(np.int64)
        with torch.no_grad():
            start_gmf = net.gmf_user.weight.mean(0).expand(rows.shape[0], -1)
            start_mlp = net.mlp_user.weight.mean(0).expand(rows.shape[0], -1)
        user_gmf = nn.Parameter(start_gmf.clone())
        user_mlp = nn.Parameter(start_mlp.clone())
        if not len(pos_rows):
            return user_gmf.detach(), user_mlp.detach()
        rng = np.random.default_rng(int(p["seed"]))
        optimizer = torch.optim.Adam([user_gmf, user_mlp], lr=float(p["fold_in_lr"]))
        n_neg = int(p["num_negatives"])
        net.eval()
        for param in net.parameters():
            param.requires_grad_(False)
        try:
            for _ in range(int(p["fold_in_steps"])):
                negatives = sample_negatives(rows, pos_rows, n_neg, rng).ravel()
                who = np.concatenate([pos_rows, np.repeat(pos_rows, n_neg)])
                what = np.concatenate([pos_items, negatives])
                labels = np.concatenate([np.ones(len(pos_rows)), np.zeros(negatives.size)])
                keep = what >= 0
                who_t = torch.from_numpy(who[keep])
                logits = net.pair_logits(
                    user_gmf[who_t], user_mlp[who_t], torch.from_numpy(what[keep])
                )
                target = torch.from_numpy(labels[keep].astype(np.float32))
                loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        finally:
            for param in net.parameters():
                param.requires_grad_(True)
        return user_gmf.detach(), user_mlp.detach()

    # ----- persistence -----------------------------------------------------------------
    def _net(self) -> NeuMFNet:
        if self.net is None:
            raise ModelError(f"{self.name} is not fitted")
        return self.net

    def _state(self) -> dict[str, np.ndarray]:
        net = self._net()
        return {"shape": np.array([net.gmf_user.num_embeddings, net.gmf_item.num_embeddings])}

    def save(self, folder: str | Path) -> None:
        """Write the bundle; network weights go to ``weights.safetensors`` (no pickle)."""
        net = self._net()
        super().save(folder)
        save_weights(net, Path(folder) / WEIGHTS_FILE)

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._shape = (int(arrays["shape"][0]), int(arrays["shape"][1]))

    def _restore_files(self, folder: Path) -> None:
        net = self._build(*self._shape)
        load_weights(net, Path(folder) / WEIGHTS_FILE)
        net.eval()
        self.net = net
