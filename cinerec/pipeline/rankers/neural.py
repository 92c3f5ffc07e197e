"""Neural ranker: attention-based fusion of the feature groups, trained listwise.

Why: the feature groups (model scores, recall sources, item, user, context) are different
kinds of evidence whose usefulness depends on each other — e.g. trust the sequence model
more when the context says "binge session". Making each group a token and letting one
self-attention layer mix them learns such gated, cross-group interactions compactly, and a
listwise loss optimises the order inside a query rather than per-row relevance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from cinerec.errors import ModelError
from cinerec.models.neural.loop import (
    TrainConfig,
    load_weights,
    save_weights,
    seed_everything,
    train_loop,
)
from cinerec.pipeline.rankers.base import QueryMetric, Ranker, RankingData, register

WEIGHTS_FILE = "weights.safetensors"
#: Standardised values are clipped to +-CLIP so one extreme row cannot dominate.
CLIP = 8.0
PREDICT_CHUNK = 65536


class SelfAttention(nn.Module):
    """Multi-head self-attention over a few tokens: (n, G, d) -> (n, G, d).

    Fused q/k/v projection plus ``scaled_dot_product_attention``: cheaper than
    ``nn.MultiheadAttention`` for many rows of only G tokens.
    """

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        if d % heads:
            raise ModelError(f"d_model {d} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, g, d = x.shape
        q, k, v = self.qkv(x).view(n, g, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mixed = functional.scaled_dot_product_attention(q, k, v)  # (n, heads, G, d / heads)
        return self.out(mixed.transpose(1, 2).reshape(n, g, d))


class GroupAttentionNet(nn.Module):
    """Scores rows: (n, f) standardised features -> (n,) scores.

    Each feature group ``g`` (column indices ``groups[g]``) is projected by its own
    bias-free linear map to a ``d``-dim token, plus a learned group embedding (which acts
    as that token's bias) -> tokens (n, G, d). One pre-LayerNorm transformer block
    (``heads``-head self-attention + FFN, both residual) mixes the G tokens; they are
    mean-pooled, normalised and an MLP gives the score. The G projections are held as one
    block-masked (f, G, d) tensor so the whole step is a single matmul.
    """

    mask: torch.Tensor  # a buffer (register_buffer), stated here for the type checker

    def __init__(
        self, groups: list[list[int]], n_features: int, d: int, heads: int, hidden: int
    ) -> None:
        super().__init__()
        self.n_groups, self.d = len(groups), d
        mask = torch.zeros(n_features, self.n_groups, 1)
        weight = torch.empty(n_features, self.n_groups, d)
        for g, cols in enumerate(groups):
            mask[cols, g] = 1.0
            bound = 1.0 / math.sqrt(len(cols))
            nn.init.uniform_(weight[:, g], -bound, bound)
        self.register_buffer("mask", mask, persistent=False)
        self.weight = nn.Parameter(weight)
        self.group_embedding = nn.Parameter(torch.randn(self.n_groups, d) * 0.02)
        self.norm_attn = nn.LayerNorm(d)
        self.attn = SelfAttention(d, heads)
        self.norm_ffn = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, d))
        self.norm_out = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight * self.mask).reshape(x.shape[1], self.n_groups * self.d)
        tokens = (x @ w).view(-1, self.n_groups, self.d) + self.group_embedding
        tokens = tokens + self.attn(self.norm_attn(tokens))
        tokens = tokens + self.ffn(self.norm_ffn(tokens))
        return self.head(self.norm_out(tokens.mean(dim=1))).squeeze(-1)


class _Batch:
    """Whole queries for one step: rows ``x`` (N, f) of B queries, concatenated.

    ``pos`` (N,) is each row's flat index in the padded (B, L) score matrix (L = the
    largest query), ``target`` (B, L) the labels normalised to sum 1 per query (the
    ListNet target distribution; 0 on padding).
    """

    def __init__(self, x: torch.Tensor, pos: torch.Tensor, target: torch.Tensor) -> None:
        self.x, self.pos, self.target = x, pos, target


def listnet_loss(module: nn.Module, batch: _Batch) -> torch.Tensor:
    """Mean over queries of the cross-entropy between target and softmax(scores)."""
    b, length = batch.target.shape
    scores = torch.full((b * length,), -torch.inf)
    scores = scores.index_put((batch.pos,), module(batch.x)).view(b, length)
    log_p = torch.log_softmax(scores, dim=1)
    log_p = torch.where(batch.target > 0, log_p, torch.zeros_like(log_p))
    return -(batch.target * log_p).sum(dim=1).mean()


@register
class NeuralRanker(Ranker):
    """Attention fusion of feature groups (:class:`GroupAttentionNet`), ListNet loss.

    Features are standardised with the training mean / std (NaN -> 0, i.e. the mean,
    clipped to +-8). Batches are ``queries_per_batch`` whole queries; queries without a
    positive label are skipped in training. AdamW via the shared
    :func:`~cinerec.models.neural.loop.train_loop`: early stopping on validation
    NDCG@10 (``patience`` epochs), best weights restored, the same seed gives the same
    weights. ``threads`` torch threads while fitting (restored after); ``predict`` uses
    the caller's torch thread setting.
    """

    kind = "neural"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.net: GroupAttentionNet | None = None
        self.groups: list[list[int]] = []
        self.group_names: list[str] = []
        self.mean = np.zeros(0, dtype=np.float32)
        self.std = np.ones(0, dtype=np.float32)

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {
            "d_model": 32,
            "heads": 2,
            "hidden": 64,
            "epochs": 30,
            "queries_per_batch": 32,
            "lr": 1e-3,
            "weight_decay": 1e-4,
            "patience": 4,
            "threads": 1,  # more only on a free machine (see LightGBMRanker's threads)
            "max_seconds": None,
        }

    def _build(self) -> GroupAttentionNet:
        p = self.params
        return GroupAttentionNet(
            self.groups,
            len(self.feature_names),
            int(p["d_model"]),
            int(p["heads"]),
            int(p["hidden"]),
        )

    def _standardise(self, features: np.ndarray) -> torch.Tensor:
        z = (features - self.mean) / self.std
        np.nan_to_num(z, copy=False, nan=0.0, posinf=CLIP, neginf=-CLIP)
        np.clip(z, -CLIP, CLIP, out=z)
        return torch.from_numpy(z)

    def _batches(self, data: RankingData, rng: np.random.Generator) -> Iterator[_Batch]:
        starts, sizes = data.query_starts(), data.group_sizes
        positive = np.bincount(
            np.repeat(np.arange(data.n_queries), sizes),
            weights=data.labels,
            minlength=data.n_queries,
        )
        queries = rng.permutation(np.flatnonzero(positive > 0))
        step = max(1, int(self.params["queries_per_batch"]))
        for i in range(0, len(queries), step):
            chosen = queries[i : i + step]
            b_sizes, length = sizes[chosen], int(sizes[chosen].max())
            offsets = np.cumsum(b_sizes) - b_sizes
            local = np.arange(int(b_sizes.sum())) - np.repeat(offsets, b_sizes)
            rows = np.repeat(starts[chosen], b_sizes) + local
            pos = np.repeat(np.arange(len(chosen)) * length, b_sizes) + local
            target = np.zeros(len(chosen) * length, dtype=np.float32)
            target[pos] = data.labels[rows] / np.repeat(positive[chosen], b_sizes)
            yield _Batch(
                self._standardise(data.features[rows]),
                torch.from_numpy(pos),
                torch.from_numpy(target).view(len(chosen), length),
            )

    def fit(
        self,
        train: RankingData,
        valid: RankingData | None = None,
        *,
        seed: int = 0,
        progress: bool = False,
    ) -> Self:
        """Standardise on ``train``, build the net and train it (see the class docstring)."""
        if valid is not None and valid.feature_names != train.feature_names:
            raise ModelError("neural ranker: train and valid have different features")
        if not (train.labels > 0).any():
            raise ModelError("neural ranker: no query in train has a positive label")
        self.feature_names = train.feature_names
        self.group_names = list(train.feature_groups)
        self.groups = [list(cols) for cols in train.feature_groups.values()]
        mean, std = _column_stats(train.features)
        self.mean, self.std = mean, std
        p = self.params
        config = TrainConfig(
            epochs=int(p["epochs"]),
            lr=float(p["lr"]),
            weight_decay=float(p["weight_decay"]),
            patience=int(p["patience"]),
            seed=seed,
            threads=int(p["threads"]),
            max_seconds=p["max_seconds"],
        )
        seed_everything(seed)  # the initial weights depend on the seed only
        self.net = self._build()
        validate: Callable[[nn.Module], float] | None = None
        if valid is not None:
            metric, valid_x = QueryMetric(valid.labels, valid.group_sizes, 10), valid.features
            validate = lambda module: metric(self._scores(valid_x))  # noqa: E731
        try:
            history = train_loop(
                self.net,
                lambda rng: self._batches(train, rng),
                listnet_loss,
                config,
                validate=validate,
                progress=progress,
                desc="neural ranker",
            )
        except BaseException:
            self.net, self.feature_names = None, ()  # never leave a half-trained ranker
            raise
        self.validation_ndcg = history.best_val_ndcg
        return self

    def _scores(self, features: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise ModelError("neural ranker is not fitted")
        out = np.empty(len(features), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(features), PREDICT_CHUNK):
                chunk = self._standardise(features[i : i + PREDICT_CHUNK])
                out[i : i + PREDICT_CHUNK] = self.net(chunk).numpy()
        return out

    def _predict(self, features: np.ndarray) -> np.ndarray:
        return self._scores(features)

    def _state(self) -> dict[str, Any]:
        return {
            "group_names": self.group_names,
            "groups": self.groups,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "weights_file": WEIGHTS_FILE,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.group_names = [str(g) for g in state["group_names"]]
        self.groups = [[int(c) for c in cols] for cols in state["groups"]]
        self.mean = np.asarray(state["mean"], dtype=np.float32)
        self.std = np.asarray(state["std"], dtype=np.float32)
        f = len(self.feature_names)
        if len(self.mean) != f or len(self.std) != f:
            raise ModelError(f"neural ranker state has {len(self.mean)} means for {f} features")

    def _save_files(self, folder: Path) -> None:
        if self.net is None:
            raise ModelError("neural ranker is not fitted")
        save_weights(self.net, folder / WEIGHTS_FILE)

    def _load_files(self, folder: Path) -> None:
        net = self._build()
        load_weights(net, folder / WEIGHTS_FILE)
        net.eval()
        self.net = net


def _column_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 (f,) mean and std of each column ignoring NaN (std 1 when ~constant/empty)."""
    f = features.shape[1]
    mean, std = np.zeros(f, dtype=np.float64), np.ones(f, dtype=np.float64)
    for j in range(f):  # column by column: no full float64 copy of a large matrix
        col = features[:, j].astype(np.float64)
        col = col[np.isfinite(col)]
        if col.size:
            mean[j] = col.mean()
            s = col.std()
            std[j] = s if s > 1e-6 else 1.0
    return mean.astype(np.float32), std.astype(np.float32)
