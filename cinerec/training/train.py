"""The train job: tune every requested model on validation, refit on all data, write a bundle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from cinerec.data.dataset import Dataset
from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.splits import make_split
from cinerec.models.base import Model, get_model_class
from cinerec.models.content import start_embedding_prefetch
from cinerec.pipeline.config import PipelineConfig, default_config
from cinerec.pipeline.offline import RankerChoice, train_ranker
from cinerec.pipeline.persist import write_pipeline
from cinerec.pipeline.state import HistoryStore
from cinerec.training.bundle import save_bundle
from cinerec.training.tuning import SearchResult, tune

#: BPR is left out of the default bundle: on every split measured it trails ALS and takes
#: minutes to tune (it stays available with ``--models``).
DEFAULT_TRAIN_MODELS = ("pop", "trending", "itemknn", "ease", "als", "content")
#: Leave each user's last 5 interactions out for validation: by time (what a live system
#: predicts) and with several held-out items per user, for a low-variance choice.
DEFAULT_VALIDATION = "leave-last:5"


@dataclass
class TrainReport:
    """What ``cinerec train`` did: where the bundle is, what was chosen, how long it took."""

    bundle: Path
    default_model: str
    searches: dict[str, SearchResult]
    timings: dict[str, float]
    pipeline: dict[str, Any] | None = None
    #: wall-clock (start, end) epochs of "tuning", "encoding", "ranker" and "fitting"
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)
    embeddings: dict[str, Any] | None = None  # what the background encoding did

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "default_model": self.default_model,
            "validation": {
                name: {"params": s.best_params, s.metric: round(s.best_value, 5)}
                for name, s in self.searches.items()
            },
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "pipeline": self.pipeline,
            "embeddings": self.embeddings,
        }


def train_bundle(
    dataset: Dataset,
    out: str | Path,
    *,
    model_names: tuple[str, ...] | list[str] = DEFAULT_TRAIN_MODELS,
    validation_spec: str = DEFAULT_VALIDATION,
    metric: str = "ndcg@10",
    seed: int = 0,
    tune_time_budget_s: float | None = None,
    progress: bool = True,
    pipeline: PipelineConfig | None = None,
    hybrid: bool = True,
) -> TrainReport:
    """Tune, train the pipeline's ranker, refit on every interaction and save a bundle.

    Each model is tuned on the validation carve; with ``hybrid`` the models are then
    fitted on the carve's training part and the pipeline's ranker is trained and chosen
    on its held-out part (:func:`~cinerec.pipeline.offline.choose_ranker`); finally every
    model is refitted on all interactions. The content model's text embeddings are
    encoded in a background process from the start (:func:`start_embedding_prefetch`),
    while the models before it are tuned. The bundle's ``default_model`` is the best
    single model (what ``Bundle.recommend`` uses); the pipeline (config, ranker, user
    histories) goes in ``pipeline/``.
    """
    console = Console(stderr=True, quiet=not progress)
    timings: dict[str, float] = {}
    item_index = IdIndex.from_ids(dataset.items["item_id"])
    validation = make_split(validation_spec, dataset.interactions, seed=seed)
    searches: dict[str, SearchResult] = {}
    models: dict[str, Model] = {}
    full = InteractionMatrix.build(dataset.interactions, items=dataset.items, item_index=item_index)
    phases: dict[str, tuple[float, float]] = {}
    embeddings: dict[str, Any] | None = None
    tuning_started = time.time()
    prefetch = start_embedding_prefetch(full.catalog) if "content" in model_names else None
    try:
        for name in model_names:
            if name == "content" and prefetch is not None:
                done = prefetch.wait()
                phases["encoding"] = (done.started, done.finished)
                embeddings = done.to_dict()
                console.log(
                    f"text embeddings: {done.encoded} of {done.texts} texts encoded in the "
                    f"background in {done.finished - done.started:.0f}s (waited "
                    f"{done.waited:.0f}s){'' if done.ok else f'; failed: {done.error}'}"
                )
            started = time.perf_counter()
            searches[name] = tune(
                name,
                validation,
                items=dataset.items,
                item_index=item_index,
                metric=metric,
                time_budget_s=tune_time_budget_s,
                seed=seed,
            )
            timings[f"tune.{name}"] = time.perf_counter() - started
            console.log(
                f"{name}: {metric} {searches[name].best_value:.4f} on validation with "
                f"{searches[name].best_params or 'no parameters'}"
            )
    finally:
        if prefetch is not None:
            prefetch.stop()
    phases["tuning"] = (tuning_started, time.time())
    default = max(searches, key=lambda n: searches[n].best_value)
    config = pipeline or default_config(list(model_names))
    choice: RankerChoice | None = None
    if hybrid:
        started = time.perf_counter()
        ranker_started = time.time()
        choice = train_ranker(
            validation,
            dataset.items,
            item_index,
            {name: searches[name].best_params for name in model_names},
            config,
            default_model=default,
            seed=seed,
            progress=progress,
        )
        timings["ranker"] = time.perf_counter() - started
        phases["ranker"] = (ranker_started, time.time())
        config = choice.config or config
        console.log(
            f"pipeline ranker: {choice.chosen_kind} ({choice.validation}); "
            f"re-rank: {choice.rerank.get('chosen')}"
        )
    fitting_started = time.time()
    for name in model_names:
        started = time.perf_counter()
        models[name] = get_model_class(name)(**searches[name].best_params).fit(full)
        timings[f"fit.{name}"] = time.perf_counter() - started
    histories = HistoryStore.from_events(full.events, full.n_users)
    pipeline_info = {"config_hash": config.digest(), "config": config.model_dump(mode="json")}
    if choice is not None:
        pipeline_info.update(choice.to_dict())
    bundle = save_bundle(
        out,
        full.users,
        item_index,
        models,
        default_model=default,
        catalog=dataset.items,
        info={
            "dataset": {
                "name": dataset.name,
                "fingerprint": dataset.fingerprint(),
                "interactions": len(dataset.interactions),
                "items": len(dataset.items),
            },
            "validation": {"split": validation_spec, "metric": metric, "seed": seed},
            "search": {name: s.to_dict() for name, s in searches.items()},
            "pipeline": pipeline_info,
        },
        extras=lambda folder: write_pipeline(
            folder, config, choice.chosen if choice else None, histories
        ),
    )
    phases["fitting"] = (fitting_started, time.time())
    console.log(f"bundle written to {bundle} (default model: {default})")
    return TrainReport(
        bundle=bundle,
        default_model=default,
        searches=searches,
        timings=timings,
        pipeline=pipeline_info,
        phases=phases,
        embeddings=embeddings,
    )


def frame_summary(frame: pd.DataFrame) -> dict[str, int]:
    """Row and distinct-id counts of an interactions frame."""
    return {
        "rows": len(frame),
        "users": int(frame["user_id"].nunique()),
        "items": int(frame["item_id"].nunique()),
    }
