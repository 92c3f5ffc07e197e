"""The pipeline's parts inside a bundle, and loading a ready :class:`Recommender`.

Layout (under the bundle folder, checksummed by its manifest like every other file)::

    pipeline/config.json     the PipelineConfig (its digest is in the manifest)
    pipeline/histories.npz   every user's events in time order (the stored histories)
    pipeline/ranker/         the chosen ranker (absent when the model order won)
    pipeline/limits.parquet  each user's stored parental limit (absent when no user has one)

Bundles written before the pipeline existed still load: they get the default config for
their models, no ranker, and histories rebuilt (without times) from the models' rows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from cinerec.errors import IntegrityError
from cinerec.models.bundle import Bundle, load_bundle
from cinerec.pipeline.config import PipelineConfig, default_config, parse_config
from cinerec.pipeline.rankers import Ranker, load_ranker
from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.state import HistoryStore, UserLimits

PIPELINE_DIR = "pipeline"


def write_pipeline(
    folder: Path,
    config: PipelineConfig,
    ranker: Ranker | None,
    histories: HistoryStore,
    limits: UserLimits | None = None,
) -> None:
    """Write the pipeline parts into a bundle folder being assembled."""
    target = Path(folder) / PIPELINE_DIR
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(json.dumps(config.model_dump(mode="json"), indent=2))
    histories.save(target / "histories.npz")
    if ranker is not None:
        ranker.save(target / "ranker")
    if limits is not None and len(limits):
        limits.save(target / "limits.parquet")


def model_version(bundle: Bundle) -> str:
    """A short, stable version id: creation date + a hash of creation time and checksums."""
    created = str(bundle.manifest.get("created_at", ""))
    files = json.dumps([created, bundle.manifest.get("files", {})], sort_keys=True).encode()
    stamp = created[:10].replace("-", "")
    return f"{stamp}-{hashlib.sha256(files).hexdigest()[:8]}"


def load_recommender(
    source: str | Path | Bundle, config: PipelineConfig | None = None
) -> Recommender:
    """A Recommender from a bundle folder (verified) or a loaded bundle.

    ``config`` overrides the bundle's pipeline config (e.g. a different re-rank policy);
    the ranker stays the bundle's.
    """
    bundle = source if isinstance(source, Bundle) else load_bundle(source)
    base = bundle.folder / PIPELINE_DIR if bundle.folder is not None else None
    stored_config = None
    ranker = None
    histories = None
    limits = None
    if base is not None and base.exists():
        try:
            stored_config = parse_config(
                json.loads((base / "config.json").read_text()), str(base / "config.json")
            )
        except (OSError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"{base}: unreadable pipeline config ({exc})") from exc
        histories = HistoryStore.load(base / "histories.npz")
        if (base / "ranker").exists():
            ranker = load_ranker(base / "ranker")
        if (base / "limits.parquet").exists():
            limits = UserLimits.load(base / "limits.parquet")
    if histories is None:
        histories = _histories_from_models(bundle)
    if bundle.catalog is None:
        import pandas as pd

        catalog = pd.DataFrame({"item_id": bundle.items.ids})
    else:
        catalog = (
            bundle.catalog.drop_duplicates("item_id")
            .set_index("item_id", drop=False)
            .reindex(bundle.items.ids)
            .assign(item_id=bundle.items.ids)
            .reset_index(drop=True)
        )
    recommender = Recommender(
        bundle.models,
        bundle.users,
        bundle.items,
        catalog,
        histories,
        config or stored_config or default_config(list(bundle.models)),
        ranker,
        default_model=bundle.default_model,
        model_version=model_version(bundle),
        limits=limits,
    )
    recommender.folder = bundle.folder
    return recommender


def _histories_from_models(bundle: Bundle) -> HistoryStore:
    seen = bundle.model().seen
    if seen is None:
        raise IntegrityError("bundle models carry no user rows")
    seen = seen.tocsr()
    return HistoryStore(
        seen.indptr.astype(np.int64),
        seen.indices.astype(np.int64),
        np.zeros(seen.nnz, dtype=np.float64),
        seen.data.astype(np.float32),
    )
