"""Final re-ranking: from ranker-ordered candidates to the list a viewer sees.

The ranker orders candidates by predicted relevance only. The last stage turns that order
into a list worth showing:

1. **Blend.** Ranker scores are min-max normalised to [0, 1] and blended with rule boosts
   (stated preferences) and freshness — the blended score is ``base``.
2. **Diversify.** Greedy MMR picks the next item by ``λ·base − (1−λ)·max cos(v, selected)``
   so near-duplicates (sequels, the same franchise) do not crowd the list.
3. **Cap genres.** At most ``genre_cap`` items of the list may share one genre, while the
   list can still be filled without breaking the cap.
4. **Serendipity.** A few reserved places in the second half go to well-ranked items far
   from the viewer's usual taste, so the list does not only confirm what they know.
5. **Pins.** Editor pins land exactly at their positions.

Everything works on positions into the candidate arrays; vectorised MMR keeps a running
max-similarity array, so one selection step costs a single matrix-vector product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from cinerec.pipeline.config import RerankConfig

#: Serendipity picks come from the best ``SERENDIPITY_DEPTH · k`` candidates (ranker order).
SERENDIPITY_DEPTH = 3
#: A candidate is "outside the usual taste" when its affinity is at most this quantile.
SERENDIPITY_QUANTILE = 0.25


@dataclass
class RerankResult:
    """The final list: items in display order with score and flags (all of length m ≤ k).

    ``scores`` is the blended score ``base`` of each item (not the MMR objective). A pinned
    item's own score says nothing about its place, so it gets the score of the item it
    displaced: the first non-pinned item after it in the list, else (a pin at the end) the
    best candidate that just missed the list; when there is none, the non-pinned item just
    above it, and in a list of pins only the highest ``base`` (1.0 with no candidates).
    """

    items: np.ndarray  # int64 (m,) catalog indices, final order
    scores: np.ndarray  # float32 (m,)
    pinned: np.ndarray  # bool (m,)
    serendipitous: np.ndarray  # bool (m,)

    def __len__(self) -> int:
        return len(self.items)


def normalise_scores(scores: np.ndarray) -> np.ndarray:
    """Min-max normalise to [0, 1] (float64); constant scores all become 1.

    Non-finite scores (NaN, ±inf) count as the worst finite score, so they end at 0.
    """
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    if not finite.any():
        return np.ones(s.shape, dtype=np.float64)
    lo, hi = float(s[finite].min()), float(s[finite].max())
    if hi <= lo:
        return np.where(finite, 1.0, 0.0)
    return np.where(finite, (s - lo) / (hi - lo), 0.0)


def blend_scores(
    rank_scores: np.ndarray,
    config: RerankConfig,
    rule_boost: np.ndarray | None = None,
    freshness: np.ndarray | None = None,
) -> np.ndarray:
    """``base = w·rank + (1−w)·rule_boost + freshness_weight·freshness`` (float64).

    ``rank`` is the normalised ranker score and ``w`` is ``config.rank_weight``. A missing
    ``rule_boost`` or ``freshness`` counts as 0; the rank part keeps its weight ``w``
    (which scales every base alike, so the order is the ranker's).
    """
    base = config.rank_weight * normalise_scores(rank_scores)
    if rule_boost is not None:
        base = base + (1.0 - config.rank_weight) * _unit(rule_boost, len(base), "rule_boost")
    if freshness is not None and config.freshness_weight > 0:
        base = base + config.freshness_weight * _unit(freshness, len(base), "freshness")
    return base


def serendipity_positions(m: int, slots: int) -> np.ndarray:
    """0-based positions of ``slots`` serendipity places in a list of length ``m``.

    The second half (positions ``m//2 … m−1``, length ``L = m − m//2``) is cut into
    ``slots`` equal blocks and each place sits at a block's centre:
    ``m//2 + ((2j+1)·L) // (2·slots)``. For m = 20: one slot → position 16 (1-based),
    two → 13 and 18; for m = 10, one slot → 8. At most ``L`` slots are placed. When a pin
    holds a place, the serendipity item takes the next free place (or the nearest earlier
    one in the second half).
    """
    half = m // 2
    length = m - half
    slots = min(int(slots), length)
    if slots <= 0:
        return np.zeros(0, dtype=np.int64)
    j = np.arange(slots, dtype=np.int64)
    return half + ((2 * j + 1) * length) // (2 * slots)


def rerank(
    items: np.ndarray,
    rank_scores: np.ndarray,
    k: int,
    config: RerankConfig,
    *,
    rule_boost: np.ndarray | None = None,
    freshness: np.ndarray | None = None,
    vectors: np.ndarray | None = None,
    genres: sp.spmatrix | np.ndarray | None = None,
    affinity: np.ndarray | None = None,
    pins: Sequence[tuple[int, int]] = (),
) -> RerankResult:
    """The final top-``k`` from candidates ``items`` given in ranker order (best first).

    Optional per-candidate arrays (length n, aligned with ``items``): ``rule_boost`` and
    ``freshness`` in [0, 1]; ``vectors`` unit rows for MMR (λ = ``config.mmr_lambda``;
    None or λ = 1 → plain sort by ``base``, ties in ranker order); ``genres`` (n, g) 0/1
    for ``config.genre_cap``; ``affinity`` (closeness to the viewer's usual taste) for
    ``config.serendipity_slots`` (None → no serendipity).

    ``pins`` are ``(item_idx, 1-based position)`` pairs, already filtered to eligible items.
    A pin lands exactly at its position; a pinned item leaves the normal pool so it appears
    once. Two pins at one position: the first wins, the other takes the next free position
    once every pin has claimed its own (so a bumped pin never displaces a later exact one).
    A pin positioned after ``k`` is ignored (the item may still come through the ranker); a
    pin positioned within ``k`` but after the end of a short list lands as far down as the
    list allows. Repeated candidates or pins count once (first occurrence).

    The genre cap and MMR count pinned candidates as already selected. Serendipity places
    (see :func:`serendipity_positions`) hold the best-``base`` candidates among the top
    ``3k`` (ranker order) whose affinity is in the lowest quartile of the candidates' and
    that the normal selection did not already place; they honour the genre cap if they can.
    Output length is ``min(k, distinct candidates ∪ pins within k)``.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    n_in = len(items)
    rank_scores = np.asarray(rank_scores).reshape(-1)
    if len(rank_scores) != n_in:
        raise ValueError(f"rank_scores has {len(rank_scores)} entries for {n_in} items")
    _, first = np.unique(items, return_index=True)
    keep = np.sort(first)  # rows of the first occurrence of each item, ranker order
    dedup = len(keep) < n_in

    def rows(arr: np.ndarray | None, name: str) -> np.ndarray | None:
        if arr is None:
            return None
        if arr.shape[0] != n_in:
            raise ValueError(f"{name} has {arr.shape[0]} rows for {n_in} items")
        return arr[keep] if dedup else arr

    items, rank_scores = (items[keep], rank_scores[keep]) if dedup else (items, rank_scores)
    base = blend_scores(
        rank_scores,
        config,
        rows(_opt(rule_boost), "rule_boost"),
        rows(_opt(freshness), "freshness"),
    )
    vecs = rows(None if vectors is None else np.asarray(vectors, dtype=np.float32), "vectors")
    if vecs is not None and vecs.ndim != 2:
        raise ValueError(f"vectors must be 2-d (n, d), got shape {vecs.shape}")
    gen = _dense_genres(genres, n_in, keep if dedup else None, config.genre_cap)
    aff = rows(_opt(affinity), "affinity")
    n = len(items)

    # Pins: the first applicable pin of an item, at a position within k.
    pin_list: list[tuple[int, int]] = []
    pinned_items: set[int] = set()
    for item, pos in pins:
        item, pos = int(item), int(pos)
        if pos < 1:
            raise ValueError(f"pin positions are 1-based, got {pos} for item {item}")
        if pos <= k and item not in pinned_items:
            pinned_items.add(item)
            pin_list.append((item, pos))
    if pinned_items:
        is_pinned_row = np.isin(items, np.fromiter(pinned_items, dtype=np.int64))
        pool = np.flatnonzero(~is_pinned_row)
        seeds = np.flatnonzero(is_pinned_row)
    else:
        pool = np.arange(n)
        seeds = np.zeros(0, dtype=np.int64)
    m = min(k, len(pin_list) + len(pool))

    out_items = np.full(m, -1, dtype=np.int64)
    out_rows = np.full(m, -1, dtype=np.int64)  # candidate row of each place, -1 for pins
    is_pin = np.zeros(m, dtype=bool)
    bumped: list[tuple[int, int]] = []
    for item, pos in pin_list:  # first pass: every pin whose own place is free
        if pos <= m and not is_pin[pos - 1]:
            out_items[pos - 1] = item
            is_pin[pos - 1] = True
        else:
            bumped.append((item, pos))
    for item, pos in bumped:  # then the next free place (or the last one before it)
        free = np.flatnonzero(~is_pin)
        if free.size == 0:
            break
        after = free[free >= pos - 1]
        slot = int(after[0]) if after.size else int(free[-1])
        out_items[slot] = item
        is_pin[slot] = True

    free = np.flatnonzero(~is_pin)
    r = len(free)
    lam = float(config.mmr_lambda)
    use_vecs = vecs if (vecs is not None and lam < 1.0) else None
    chosen = _select(base, pool, r + 1, lam, use_vecs, gen, config.genre_cap, seeds)
    runner_up = float(base[chosen[r]]) if len(chosen) > r else None  # first one left out
    chosen = chosen[:r]

    serendipitous = np.zeros(m, dtype=bool)
    reserved: list[int] = []
    picks: list[int] = []
    half_free = free[free >= m // 2]
    s_max = min(config.serendipity_slots, len(half_free), r)
    if aff is not None and s_max > 0:
        kept = chosen[: r - s_max]
        picks = _serendipity(base, pool, aff, kept, seeds, s_max, k, gen, config.genre_cap)
        if picks:
            picked = set(picks)
            tail = [x for x in chosen[r - s_max :].tolist() if x not in picked]
            chosen = np.concatenate([kept, np.asarray(tail[: s_max - len(picks)], np.int64)])
            for target in serendipity_positions(m, len(picks)):
                open_ = [s for s in half_free.tolist() if s not in reserved]
                later = [s for s in open_ if s >= target]
                reserved.append(later[0] if later else open_[-1])
    for slot, row in zip(reserved, picks, strict=True):
        out_rows[slot] = row
        serendipitous[slot] = True
    taken_slots = set(reserved)
    normal_slots = [s for s in free.tolist() if s not in taken_slots]
    out_rows[normal_slots] = chosen[: len(normal_slots)]
    filled = out_rows >= 0
    out_items[filled] = items[out_rows[filled]]

    scores = np.zeros(m, dtype=np.float64)
    scores[filled] = base[out_rows[filled]]
    for slot in np.flatnonzero(is_pin).tolist():
        below = np.flatnonzero(filled[slot + 1 :])
        above = np.flatnonzero(filled[:slot])
        if below.size:
            scores[slot] = scores[slot + 1 + below[0]]
        elif runner_up is not None:
            scores[slot] = runner_up
        elif above.size:
            scores[slot] = scores[above[-1]]
        else:
            scores[slot] = float(base.max()) if n else 1.0
    return RerankResult(out_items, scores.astype(np.float32), is_pin, serendipitous)


def _opt(arr: np.ndarray | None) -> np.ndarray | None:
    return None if arr is None else np.asarray(arr, dtype=np.float64).reshape(-1)


def _unit(arr: np.ndarray, n: int, name: str) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64).reshape(-1)
    if len(a) != n:
        raise ValueError(f"{name} has {len(a)} entries for {n} items")
    return np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0)


def _dense_genres(
    genres: sp.spmatrix | np.ndarray | None, n_in: int, keep: np.ndarray | None, cap: int | None
) -> np.ndarray | None:
    """Bool (n, g) genre membership of the candidates, or None when no cap applies."""
    if genres is None or cap is None:
        return None
    if genres.shape[0] != n_in:
        raise ValueError(f"genres has {genres.shape[0]} rows for {n_in} items")
    dense = np.asarray(genres) if isinstance(genres, np.ndarray) else genres.toarray()
    dense = dense != 0
    return dense[keep] if keep is not None else dense


def _select(
    base: np.ndarray,
    pool: np.ndarray,
    r: int,
    lam: float,
    vectors: np.ndarray | None,
    genres: np.ndarray | None,
    cap: int | None,
    seeds: np.ndarray,
) -> np.ndarray:
    """Greedy MMR with the genre cap: ``r`` candidate rows from ``pool`` (ranker order).

    Capped items are skipped while any uncapped item is left; ties go to ranker order
    (``argmax`` returns the first maximum and ``pool`` is in ranker order).
    """
    r = min(r, len(pool))
    if r <= 0:
        return np.zeros(0, dtype=np.int64)
    b = base[pool]
    if vectors is None and genres is None:
        return pool[np.argsort(-b, kind="stable")[:r]]
    p = len(pool)
    taken = np.zeros(p, dtype=bool)
    blocked = np.zeros(p, dtype=bool)
    if genres is not None and cap is not None:
        g_pool = genres[pool]
        counts = genres[seeds].sum(axis=0).astype(np.int64)
        full = counts >= cap
        if full.any():
            blocked = g_pool[:, full].any(axis=1)
    relevance = lam * b
    penalty: np.ndarray | None = None
    if vectors is not None:
        v_pool = vectors[pool]
        if seeds.size:
            penalty = (1.0 - lam) * (v_pool @ vectors[seeds].T).max(axis=1)
    out = np.empty(r, dtype=np.int64)
    neg_inf = -np.inf
    for step in range(r):
        score = relevance - penalty if penalty is not None else relevance.copy()
        score[taken] = neg_inf
        open_ = np.where(blocked, neg_inf, score)
        i = int(np.argmax(open_))
        if open_[i] == neg_inf:  # everything left is capped: fill anyway
            i = int(np.argmax(score))
        out[step] = i
        taken[i] = True
        if vectors is not None and step + 1 < r:
            sims = (1.0 - lam) * (v_pool @ v_pool[i])
            penalty = sims if penalty is None else np.maximum(penalty, sims)
        if genres is not None and cap is not None:
            mine = g_pool[i]
            counts += mine
            newly = mine & (counts >= cap)
            if newly.any():
                blocked |= g_pool[:, newly].any(axis=1)
    return pool[out]


def _serendipity(
    base: np.ndarray,
    pool: np.ndarray,
    affinity: np.ndarray,
    kept: np.ndarray,
    seeds: np.ndarray,
    slots: int,
    k: int,
    genres: np.ndarray | None,
    cap: int | None,
) -> list[int]:
    """Up to ``slots`` candidate rows far from the usual taste, best ``base`` first."""
    finite = np.isfinite(affinity)
    if not finite.any():
        return []
    low = np.quantile(affinity[finite], SERENDIPITY_QUANTILE)
    top = affinity[finite].max()
    eligible = np.zeros(len(base), dtype=bool)
    eligible[pool[pool < SERENDIPITY_DEPTH * k]] = True
    eligible[kept] = False
    eligible &= finite & (affinity <= low) & (affinity < top)
    rows = np.flatnonzero(eligible)
    if rows.size == 0:
        return []
    rows = rows[np.argsort(-base[rows], kind="stable")]
    if genres is None or cap is None:
        return rows[:slots].tolist()
    counts = genres[np.concatenate([seeds, kept])].sum(axis=0).astype(np.int64)
    picks: list[int] = []
    for row in rows.tolist():
        if len(picks) == slots:
            break
        if not (genres[row] & (counts >= cap)).any():
            picks.append(row)
            counts += genres[row]
    for row in rows.tolist():  # not enough under the cap: the best of the rest
        if len(picks) == slots:
            break
        if row not in picks:
            picks.append(row)
    return picks
