"""The Recommender's answers on the pipeline fixture, against answers recorded earlier.

Refactoring the pipeline (moving stages between modules, caching, vectorising) must not
change what users get. This runs a fixed set of requests — known users with and without
a request time, filters, stated preferences, new visitors, exclusions, skips, clicks,
timed events, live trending counts — under four configs (default; MMR over genre sets
with a genre cap, serendipity and freshness; pins and editor picks; continue watching
with MMR off) and compares every item, score, reason, source list, candidate count and
per-source count with ``golden/recommender.json``.

The file was recorded before the Recommender was split into parts / scoring / finish. A
change that is *meant* to change recommendations re-records it, and says so in review:

    PYTHONPATH=. python -m tests.pipeline.test_recommender_golden
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cinerec.data.matrix import InteractionMatrix
from cinerec.models.base import Model
from cinerec.pipeline.config import PipelineConfig, default_config
from cinerec.pipeline.types import Constraints, Context, Preferences, RecentEvent, Request
from tests.pipeline.conftest import NOW, fitted_models, make_recommender, rich_dataset

GOLDEN = Path(__file__).parent / "golden" / "recommender.json"
N_USERS = 8


def configs(models: dict[str, Model]) -> dict[str, PipelineConfig]:
    """The four pipeline configs the requests run under."""
    base = default_config(list(models))
    diverse = base.model_dump()
    diverse["rerank"].update(
        mmr_space="genres", mmr_lambda=0.6, genre_cap=3, serendipity_slots=2, freshness_weight=0.3
    )
    pinned = base.model_dump()
    pinned["rerank"]["pins"] = [
        {"item_id": "cold1", "position": 2},
        {"item_id": "i5", "position": 5},
    ]
    pinned["editor_picks"] = ["cold2", "cold4"]
    resume = base.model_dump()
    resume["filters"].update(continue_watching_days=10000.0, continue_watching_max=5)
    resume["rerank"]["mmr_lambda"] = 1.0
    return {
        "default": base,
        **{
            name: PipelineConfig.model_validate(data)
            for name, data in (("diverse", diverse), ("pinned", pinned), ("resume", resume))
        },
    }


def requests(users: list[str]) -> dict[str, Request]:
    """Named requests covering every request-time input of the pipeline."""
    at = Context(timestamp=NOW)
    u0, u1, u2 = users[:3]
    now = NOW.timestamp()
    out = {f"user:{u}": Request(user_id=u, k=10, context=at) for u in users}
    out |= {f"history-time:{u}": Request(user_id=u, k=10) for u in users[:3]}
    out |= {
        "series": Request(user_id=u0, context=at, constraints=Constraints(types=("series",))),
        "turkish-2010s": Request(
            user_id=u1, context=at, constraints=Constraints(languages=("tr",), year_min=2010)
        ),
        "age-13": Request(user_id=u2, context=at, constraints=Constraints(max_min_age=13)),
        "prefs": Request(
            user_id=u0, context=at, preferences=Preferences(genres=("g1",), languages=("fr",))
        ),
        "cold": Request(user_id=None, context=at),
        "cold-unknown-id": Request(user_id="nobody", context=at),
        "cold-prefs": Request(
            user_id=None, context=at, preferences=Preferences(genres=("g2",), countries=("India",))
        ),
        "cold-click": Request(user_id=None, context=at, recent_items=("i0", "i4")),
        "cold-india": Request(
            user_id=None, k=20, context=Context(timestamp=NOW, country="India", device="tv")
        ),
        "turkey-mobile": Request(
            user_id=u1, k=20, context=Context(timestamp=NOW, country="Turkey", device="mobile")
        ),
        "exclude": Request(user_id=u0, context=at, exclude_items=("i1", "i2", "i3")),
        "skipped": Request(user_id=u1, context=at, skipped_items=("i5", "i6")),
        "recent": Request(user_id=u2, context=at, recent_items=("i7", "i9")),
        "events": Request(
            user_id=u0,
            recent_events=(
                RecentEvent("i8", now - 100, 1.0),
                RecentEvent("i12", now - 50, 0.5, skip=True),
                RecentEvent("i13", now - 10, 2.0),
            ),
        ),
        "live-trending": Request(
            user_id=u1, context=at, live_trending=(("i3", 50.0), ("i17", 20.0), ("zzz", 4.0))
        ),
        "k40": Request(user_id=u2, k=40, context=at),
    }
    return out


def answers(models: dict[str, Model], matrix: InteractionMatrix) -> dict[str, Any]:
    """Every (config, request) answer as JSON-able data, keyed "config/request"."""
    users = [str(u) for u in np.asarray(matrix.users.ids)[:N_USERS]]
    out: dict[str, Any] = {}
    for config_name, config in configs(models).items():
        recommender = make_recommender(models, matrix, config)
        for name, request in requests(users).items():
            result = recommender.recommend(request)
            out[f"{config_name}/{name}"] = {
                "items": result.item_ids,
                "scores": [float(f"{r.score:.8g}") for r in result.items],
                "reasons": [[r.reason.code, r.reason.item_idx] for r in result.items],
                "sources": [",".join(r.sources) for r in result.items],
                "n_candidates": result.n_candidates,
                "per_source": result.per_source,
            }
    return out


def test_answers_match_the_recorded_ones(
    models: dict[str, Model], matrix: InteractionMatrix
) -> None:
    golden = json.loads(GOLDEN.read_text())
    got = answers(models, matrix)
    assert sorted(got) == sorted(golden)
    for key, want in golden.items():
        have = got[key]
        assert have["items"] == want["items"], key
        np.testing.assert_allclose(have["scores"], want["scores"], rtol=1e-6, err_msg=key)
        assert have["reasons"] == want["reasons"], key
        assert have["sources"] == want["sources"], key
        assert (have["n_candidates"], have["per_source"]) == (
            want["n_candidates"],
            want["per_source"],
        ), key


if __name__ == "__main__":
    dataset = rich_dataset()
    data = InteractionMatrix.build(dataset.interactions, items=dataset.items)
    recorded = answers(fitted_models(data), data)
    GOLDEN.parent.mkdir(exist_ok=True)
    lines = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(recorded.items()))
    GOLDEN.write_text("{\n" + lines + "\n}\n")
    print(f"recorded {len(recorded)} answers in {GOLDEN}")
