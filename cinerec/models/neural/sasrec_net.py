"""The SASRec network and its training objective: the torch half of
:class:`cinerec.models.sasrec.SASRec`.

:class:`SASRecNet` is a stack of pre-LayerNorm causal transformer blocks over item and
position embeddings; :func:`next_item_loss` is the softmax cross-entropy of the next item
at every position (full, or sampled over shared uniform negatives); :func:`catalog_scores`
scores whole catalogs for validation. The model class keeps data preparation, fitting,
real-time scoring and persistence.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from cinerec.errors import ModelError
from cinerec.models.neural.sequences import SequenceBatch, pad_left


class _Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)), then x + FFN(LN(x)); x is (B, L, d)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """``allowed`` is bool (B, 1, L, L): query i may attend to key j."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, d/H)
        p = self.attn_dropout if self.training else 0.0
        att = functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ffn(self.norm2(x)))


class SASRecNet(nn.Module):
    """The SASRec network.

    ``forward(inputs)`` takes LongTensor (B, L) of item ids shifted +1, left-padded with 0
    (L <= max_len), and returns float (B, L, d): at each position the representation of
    the sequence up to it. :meth:`item_vectors` gives the (n_items + 1, d) embeddings
    (row 0 = padding) used both as input and as the output layer. ``genres`` (n_items + 1,
    g), when given, adds a learned projection of each item's genre multi-hot to its
    embedding, which helps items with few interactions.
    """

    def __init__(
        self,
        n_items: int,
        dim: int,
        blocks: int,
        heads: int,
        dropout: float,
        max_len: int,
        genres: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ModelError(f"sasrec: dim {dim} is not divisible by heads {heads}")
        self.max_len = max_len
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=dim**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        self.pos_emb = nn.Embedding(max_len, dim)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        self.genre_proj: nn.Linear | None = None
        if genres is not None and genres.shape[1] > 0:
            self.register_buffer("genres", genres.float(), persistent=False)
            self.genre_proj = nn.Linear(genres.shape[1], dim, bias=False)
            nn.init.normal_(self.genre_proj.weight, std=0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(dim)

    def item_vectors(self) -> torch.Tensor:
        """(n_items + 1, d) item representations; row 0 is padding."""
        if self.genre_proj is None:
            return self.item_emb.weight
        return self.item_emb.weight + self.genre_proj(self.genres)

    def forward(self, inputs: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        items = self.item_vectors() if items is None else items
        n = inputs.shape[1]
        positions = torch.arange(self.max_len - n, self.max_len, device=inputs.device)
        x = self.drop(functional.embedding(inputs, items) + self.pos_emb(positions))
        pad = inputs == 0
        x = x * (~pad).unsqueeze(-1)
        causal = torch.ones(n, n, dtype=torch.bool, device=inputs.device).tril()
        # Real keys at or before the query; every position also sees itself, so a padding
        # row is never fully masked (which would give NaN).
        allowed = (causal & ~pad[:, None, :]) | torch.eye(n, dtype=torch.bool)
        allowed = allowed.unsqueeze(1)  # (B, 1, L, L)
        for block in self.blocks:
            x = block(x, allowed)
        return self.norm(x)


def catalog_scores(module: SASRecNet, sequences: list[np.ndarray], max_len: int) -> np.ndarray:
    """Full-catalog next-item scores (n, n_items) of ``sequences`` under the module's
    current weights (training mode included: validation between epochs), 256 at a time."""
    items = module.item_vectors()
    out = []
    for i in range(0, len(sequences), 256):
        h = module(pad_left(sequences[i : i + 256], max_len), items)[:, -1]
        out.append((h @ items[1:].T).numpy())
    return np.vstack(out)


def next_item_loss(module: SASRecNet, batch: SequenceBatch, num_negatives: int) -> torch.Tensor:
    """Softmax cross-entropy of the next item at every non-padded position.

    Full softmax over all items when ``num_negatives`` is 0; else a sampled softmax over
    the target and ``num_negatives`` uniform items shared by the batch (a negative equal
    to the target is masked out).
    """
    items = module.item_vectors()
    h = module(batch.inputs, items)  # (B, L, d)
    mask = batch.targets > 0
    h, targets = h[mask], batch.targets[mask]  # (N, d), (N,)
    if num_negatives <= 0:
        logits = h @ items[1:].T  # (N, n_items)
        return functional.cross_entropy(logits, targets - 1)
    negatives = torch.randint(1, items.shape[0], (num_negatives,))
    positive = (h * items[targets]).sum(-1, keepdim=True)  # (N, 1)
    negative = h @ items[negatives].T  # (N, K)
    negative = negative.masked_fill(negatives[None, :] == targets[:, None], -math.inf)
    logits = torch.cat([positive, negative], dim=1)
    return functional.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long))
