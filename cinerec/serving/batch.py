"""Nightly batch scoring: every user's list through the pipeline, into Redis and Parquet;
every item's "more like this" list into Parquet.

The API answers a known user with no activity since the batch run from these lists (a
Redis GET instead of the pipeline); any feedback, filter or preference sends the request
through the live pipeline again. Keys are per model version and per editor picks
(:func:`~cinerec.serving.picks.picks_tag`), so a promoted model never serves another
version's lists, nor lists made with picks an operator has changed since. Each user's
stored parental limit applies as in the API (the pipeline enforces it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import redis
from tqdm.auto import tqdm

from cinerec.data.io import atomic_path
from cinerec.models.similar import COLUMNS, similar_items
from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.types import Request
from cinerec.serving.picks import picks_tag
from cinerec.serving.present import CatalogView

TTL_S = 2 * 86400


def _key(prefix: str, version: str, picks: str, user_id: str) -> str:
    return f"{prefix}:batch:{version}:{picks}:{user_id}"


class BatchStore:
    """Read side: the stored list of one user for one model version (None when absent)."""

    def __init__(self, redis_url: str, *, prefix: str = "cinerec") -> None:
        self.client = redis.Redis.from_url(
            redis_url, socket_timeout=0.2, socket_connect_timeout=0.2
        )
        self.prefix = prefix

    def get(self, version: str, user_id: str, *, picks: str) -> list[dict[str, Any]] | None:
        """``picks``: the :func:`picks_tag` of the editor picks in force."""
        try:
            raw = self.client.get(_key(self.prefix, version, picks, user_id))
        except redis.RedisError:
            return None  # the live pipeline answers instead
        return None if raw is None else json.loads(raw)  # type: ignore[arg-type]  # redis-py: sync results typed Awaitable | Any


def batch_score(
    rec: Recommender,
    *,
    k: int = 50,
    out: str | Path | None = None,
    redis_url: str | None = None,
    prefix: str = "cinerec",
    progress: bool = False,
    editor_picks: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Score every known user; write Parquet (``out``) and/or Redis; return a summary.

    ``editor_picks``: the operator's (as the API serves them); None: the bundle's own."""
    client = redis.Redis.from_url(redis_url) if redis_url else None
    rows: list[dict[str, Any]] = []
    pipe = client.pipeline(transaction=False) if client is not None else None
    users = [str(u) for u in rec.users.ids]
    view = CatalogView(rec)
    tag = picks_tag(editor_picks)
    for n, user in enumerate(tqdm(users, desc="batch scoring", disable=not progress), start=1):
        result = rec.recommend(Request(user_id=user, k=k, editor_picks=editor_picks))
        payload = [
            view.item(item, item_id).model_dump()
            for item, item_id in zip(result.items, result.item_ids, strict=True)
        ]
        if pipe is not None:
            pipe.set(_key(prefix, rec.model_version, tag, user), json.dumps(payload), ex=TTL_S)
            if n % 500 == 0:
                pipe.execute()
        for entry in payload:
            rows.append(
                {
                    "user_id": user,
                    "item_id": entry["item_id"],
                    "rank": entry["rank"],
                    "score": entry["score"],
                    "reason": entry["reason"]["text"],
                    "model_version": rec.model_version,
                }
            )
    if pipe is not None:
        pipe.execute()
    if out is not None:
        frame = pd.DataFrame(rows)
        with atomic_path(Path(out)) as tmp:
            frame.to_parquet(tmp, index=False)
    return {
        "users": len(users),
        "rows": len(rows),
        "model_version": rec.model_version,
        "editor_picks": tag,
        "out": str(out) if out else None,
        "redis": bool(client),
    }


def batch_similar(
    rec: Recommender,
    out: str | Path,
    *,
    k: int = 20,
    model: str | None = None,
    chunk: int = 512,
    progress: bool = False,
) -> dict[str, Any]:
    """Every catalog item's "more like this" list into Parquet (item_id, similar_id, score,
    rank), through :func:`~cinerec.models.similar.similar_items` like the API and the CLI."""
    ids = [str(i) for i in rec.items.ids]
    frames = [
        similar_items(rec.models, rec.items, ids[start : start + chunk], k, model)
        for start in tqdm(range(0, len(ids), chunk), desc="similar items", disable=not progress)
    ]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    frame["model_version"] = rec.model_version
    with atomic_path(Path(out)) as tmp:
        frame.to_parquet(tmp, index=False)
    return {
        "items": len(ids),
        "rows": len(frame),
        "model_version": rec.model_version,
        "out": str(out),
    }
