"""The train job: tune every requested model on validation, refit on all data, write a bundle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from cinerec.data.dataset import Dataset
from cinerec.data.matrix import IdIndex, InteractionMatrix
from cinerec.evaluation.splits import make_split
from cinerec.models.bundle import save_bundle
from cinerec.models.content import start_embedding_prefetch
from cinerec.pipeline.config import PipelineConfig
from cinerec.pipeline.persist import write_pipeline
from cinerec.pipeline.state import HistoryStore, UserLimits
from cinerec.training.hybrid import fit_hybrid
from cinerec.training.tuning import SearchResult

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
    on its held-out part (:func:`~cinerec.training.hybrid.fit_hybrid`); finally every
    model is refitted on all interactions. The content model's text embeddings are
    encoded in a background process from the start (:func:`start_embedding_prefetch`),
    while the models before it are tuned. The bundle's ``default_model`` is the best
    single model (what ``Bundle.recommend`` uses); the pipeline (config, ranker, user
    histories) goes in ``pipeline/``.
    """
    console = Console(stderr=True, quiet=not progress)
    limits = UserLimits.from_users(dataset.users)  # parental limits every request obeys
    item_index = IdIndex.from_ids(dataset.items["item_id"])
    validation = make_split(validation_spec, dataset.interactions, seed=seed)
    full = InteractionMatrix.build(dataset.interactions, items=dataset.items, item_index=item_index)
    phases: dict[str, tuple[float, float]] = {}
    embeddings: dict[str, Any] | None = None
    prefetch = start_embedding_prefetch(full.catalog) if "content" in model_names else None

    def wait_for_embeddings(name: str) -> None:
        """Before content is tuned, its text embeddings must be ready (or failed)."""
        nonlocal embeddings
        if name != "content" or prefetch is None:
            return
        done = prefetch.wait()
        phases["encoding"] = (done.started, done.finished)
        embeddings = done.to_dict()
        console.log(
            f"text embeddings: {done.encoded} of {done.texts} texts encoded in the "
            f"background in {done.finished - done.started:.0f}s (waited "
            f"{done.waited:.0f}s){'' if done.ok else f'; failed: {done.error}'}"
        )

    try:
        fit = fit_hybrid(
            validation,
            full,
            dataset.items,
            model_names,
            pipeline=pipeline,
            with_pipeline=hybrid,
            metric=metric,
            seed=seed,
            tune_time_budget_s=tune_time_budget_s,
            progress=progress,
            console=console,
            before_tuning=wait_for_embeddings,
        )
    finally:
        if prefetch is not None:
            prefetch.stop()
    phases.update(fit.phases)
    histories = HistoryStore.from_events(full.events, full.n_users)
    pipeline_info = fit.pipeline_info()
    bundle = save_bundle(
        out,
        full.users,
        item_index,
        fit.models,
        default_model=fit.default_model,
        catalog=dataset.items,
        info={
            "dataset": {
                "name": dataset.name,
                "fingerprint": dataset.fingerprint(),
                "interactions": len(dataset.interactions),
                "items": len(dataset.items),
            },
            "validation": {"split": validation_spec, "metric": metric, "seed": seed},
            "search": {name: s.to_dict() for name, s in fit.searches.items()},
            "pipeline": pipeline_info,
        },
        extras=lambda folder: write_pipeline(folder, fit.config, fit.ranker, histories, limits),
    )
    phases["fitting"] = (phases["fitting"][0], time.time())  # the bundle written included
    console.log(f"bundle written to {bundle} (default model: {fit.default_model})")
    return TrainReport(
        bundle=bundle,
        default_model=fit.default_model,
        searches=fit.searches,
        timings=fit.timings,
        pipeline=pipeline_info,
        phases=phases,
        embeddings=embeddings,
    )
