"""The last two stages of one request: re-rank the ranked candidates, then explain them.

:mod:`cinerec.pipeline.rerank` and :mod:`cinerec.pipeline.explain` are pure functions over
arrays; this module feeds them from the bundle's parts and the request's
:class:`~cinerec.pipeline.scoring.Scored` state: the stated-preference boost, freshness
at the request's year, the unit rows MMR compares (content vectors or genre sets), genre
sets for the caps, taste affinity for serendipity, the editor pins still eligible; then,
for the reasons, each item's recall sources and anchor, the viewer's region and the
content similarity that names a history item.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cinerec.pipeline.config import RerankConfig
from cinerec.pipeline.explain import ExplainContext, explain
from cinerec.pipeline.parts import PipelineParts
from cinerec.pipeline.rerank import RerankResult, rerank
from cinerec.pipeline.scoring import Scored, request_time
from cinerec.pipeline.types import RankedItem, Request


def rerank_scored(
    parts: PipelineParts,
    scored: Scored,
    top: np.ndarray,
    scores: np.ndarray,
    request: Request,
    config: RerankConfig,
    pins: Sequence[tuple[str, int]],
) -> RerankResult:
    """Re-rank stage: the final top-``request.k`` of the ranked rows ``top`` (scores
    ``scores``) under the policy ``config``; ``pins`` are (item id, 1-based position),
    of which only the eligible ones are placed."""
    items = scored.candidates.items[top]
    now_year = request_time(request.context, scored.history).year
    freshness = None
    if config.freshness_weight > 0:
        freshness = parts.facts.freshness(now_year, config.freshness_years)[items]
    affinity = scored.features[top, parts.features.names.index("genre_affinity")]
    placed = []
    for item_id, position in pins:
        idx = parts.indices((item_id,))
        if len(idx) and scored.eligible[idx[0]]:
            placed.append((int(idx[0]), position))
    return rerank(
        items,
        scores.astype(np.float32),
        request.k,
        config,
        rule_boost=scored.preference[top],
        freshness=freshness,
        vectors=mmr_vectors(parts, items, config.mmr_space),
        genres=parts.features.genres(items),  # non-zero = member: caps read sets
        affinity=affinity if len(scored.history) else None,
        pins=placed,
    )


def mmr_vectors(parts: PipelineParts, items: np.ndarray, space: str) -> np.ndarray | None:
    """Unit rows MMR compares: the items' content vectors, or their genre sets."""
    if space == "genres":
        return parts.features.genres(items)  # unit rows, normalised once at load
    return None if parts.vectors is None else parts.vectors[items]


def regional_items(parts: PipelineParts, items: np.ndarray, country: str | None) -> frozenset[int]:
    """The ``items`` produced in ``country`` (empty when it is unknown or not given)."""
    mask = parts.country_mask(country) if country else None
    if mask is None:
        return frozenset()
    return frozenset(int(i) for i in items if mask[int(i)])


def explain_result(
    parts: PipelineParts, scored: Scored, result: RerankResult, request: Request
) -> list[RankedItem]:
    """Explain stage: the final list as :class:`RankedItem` rows, each with its reason and
    the recall sources that proposed it (``("editor",)`` for a pin no source proposed)."""
    cands = scored.candidates
    rows = [_row_of(cands.items, item) for item in result.items]
    sources = [tuple(cands.sources_of(r)) if r >= 0 else ("editor",) for r in rows]
    anchors = np.array([cands.anchors[r] if r >= 0 else -1 for r in rows], dtype=np.int64)
    resume = set(cands.items[cands.source_ranks[:, -1] > 0].tolist())
    reasons = explain(
        result.items,
        sources,
        anchors,
        result.pinned,
        ExplainContext(
            history=scored.history.items,
            titles=parts.titles,
            is_series=parts.facts.is_series,
            years=parts.facts.year,
            now_year=request_time(request.context, scored.history).year,
            region=request.context.country,
            regional=regional_items(parts, result.items, request.context.country),
            similarity=parts.similarity,
            continue_watching=frozenset(int(i) for i in resume),
        ),
    )
    return [
        RankedItem(int(item), float(score), rank, reason, src)
        for rank, (item, score, reason, src) in enumerate(
            zip(result.items, result.scores, reasons, sources, strict=True), start=1
        )
    ]


def _row_of(items: np.ndarray, item: int) -> int:
    """The candidate row holding ``item``, -1 when it is not a candidate (a pin)."""
    hit = np.flatnonzero(items == item)
    return int(hit[0]) if len(hit) else -1
