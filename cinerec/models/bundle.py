"""Versioned model bundles: a folder with a manifest, the id maps and each model's arrays.

Layout::

    manifest.json        format version, creation time, data fingerprint, config,
                         search results, validation metrics, default model, sha256 of files
    users.parquet        user_id in row order (the models' user indices)
    items.parquet        item_id in column order (the models' item indices)
    catalog.parquet      the item table (titles, types, … for people and content models)
    models/<name>/       model.json + arrays.npz (see :class:`cinerec.models.base.Model`)

A bundle is written atomically and verified on load: a missing or altered file raises
:class:`~cinerec.errors.IntegrityError`, so a corrupt bundle is refused rather than served.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cinerec import __version__
from cinerec.data.io import atomic_path
from cinerec.data.matrix import IdIndex
from cinerec.data.schemas import conform
from cinerec.errors import IntegrityError, ModelError
from cinerec.models.base import Model, load_model
from cinerec.models.similar import similar_items

FORMAT_VERSION = 1


@dataclass
class Bundle:
    """Trained models plus the id maps that turn their indices back into ids."""

    users: IdIndex
    items: IdIndex
    models: dict[str, Model]
    manifest: dict[str, Any]
    catalog: pd.DataFrame | None = None
    folder: Path | None = None  # where it was loaded from (pipeline parts live there)

    @property
    def default_model(self) -> str:
        return str(self.manifest["default_model"])

    def model(self, name: str | None = None) -> Model:
        name = name or self.default_model
        if name not in self.models:
            raise ModelError(f"bundle has no model '{name}' (has: {', '.join(self.models)})")
        return self.models[name]

    def similar(self, item_ids: list[str], k: int = 10, model: str | None = None) -> pd.DataFrame:
        """ "More like this" (:func:`~cinerec.models.similar.similar_items`) with titles.

        ``model`` None lets the preferred model answer (content first, so items without
        any interaction work too). Unknown ids raise a ModelError naming them.
        """
        frame = similar_items(self.models, self.items, item_ids, k, model)
        if self.catalog is not None and "title" in self.catalog.columns:
            titles = self.catalog.set_index("item_id")["title"]
            frame["title"] = frame["similar_id"].map(titles)
            if "type" in self.catalog.columns:
                frame["type"] = frame["similar_id"].map(self.catalog.set_index("item_id")["type"])
        return frame

    def recommend(
        self,
        user_ids: list[str] | np.ndarray | None = None,
        k: int = 10,
        model: str | None = None,
        batch_size: int = 2048,
    ) -> pd.DataFrame:
        """user_id, item_id, score, rank (1-based) for the given users (default: all).

        Users unknown to the bundle are skipped; seen items are excluded.
        """
        chosen = self.model(model)
        if user_ids is None:
            user_idx = np.arange(len(self.users))
        else:
            user_idx = self.users.lookup(np.asarray(user_ids, dtype=object))
            user_idx = user_idx[user_idx >= 0]
        frames = []
        for start in range(0, len(user_idx), batch_size):
            batch = user_idx[start : start + batch_size]
            top, scores = chosen.recommend(batch, k=k, exclude_seen=True)
            valid = top >= 0
            rows = np.repeat(batch, k).reshape(len(batch), k)
            ranks = np.broadcast_to(np.arange(1, k + 1), top.shape)
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": self.users.ids[rows[valid]],
                        "item_id": self.items.ids[top[valid]],
                        "score": scores[valid],
                        "rank": ranks[valid],
                    }
                )
            )
        if not frames:
            return pd.DataFrame(columns=["user_id", "item_id", "score", "rank"])
        return pd.concat(frames, ignore_index=True)


def save_bundle(
    folder: str | Path,
    users: IdIndex,
    items: IdIndex,
    models: dict[str, Model],
    *,
    default_model: str,
    info: dict[str, Any] | None = None,
    catalog: pd.DataFrame | None = None,
    extras: Callable[[Path], None] | None = None,
) -> Path:
    """Write a bundle atomically and return its folder.

    ``extras(folder)`` may write more files (the pipeline's config, ranker and user
    histories); they are checksummed in the manifest like the rest.
    """
    if default_model not in models:
        raise ModelError(f"default model '{default_model}' is not among {list(models)}")
    folder = Path(folder)
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        pq.write_table(
            pa.table({"user_id": pa.array(users.ids, pa.string())}), tmp / "users.parquet"
        )
        pq.write_table(
            pa.table({"item_id": pa.array(items.ids, pa.string())}), tmp / "items.parquet"
        )
        if catalog is not None:
            pq.write_table(conform(catalog, "items"), tmp / "catalog.parquet")
        for name, model in models.items():
            model.save(tmp / "models" / name)
        if extras is not None:
            extras(tmp)
        manifest = {
            "format_version": FORMAT_VERSION,
            "cinerec_version": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "default_model": default_model,
            "models": {name: {"class": m.name, "params": m.params} for name, m in models.items()},
            "n_users": len(users),
            "n_items": len(items),
            **(info or {}),
            "files": {
                str(path.relative_to(tmp)): _sha256(path)
                for path in sorted(tmp.rglob("*"))
                if path.is_file()
            },
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_json_default))
    return folder


def load_bundle(folder: str | Path) -> Bundle:
    """Load and verify a bundle; raise IntegrityError if anything is missing or altered."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise IntegrityError(f"{folder} is not a cinerec bundle (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise IntegrityError(f"{manifest_path}: unreadable manifest ({exc})") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IntegrityError(
            f"{folder}: unsupported bundle format {manifest.get('format_version')}"
        )
    for relative, expected in manifest["files"].items():
        path = folder / relative
        if not path.exists():
            raise IntegrityError(f"{folder}: missing file {relative}")
        if _sha256(path) != expected:
            raise IntegrityError(f"{folder}: checksum mismatch for {relative}")
    users = IdIndex(
        pq.read_table(folder / "users.parquet")["user_id"]
        .to_numpy(zero_copy_only=False)
        .astype(object)
    )
    items = IdIndex(
        pq.read_table(folder / "items.parquet")["item_id"]
        .to_numpy(zero_copy_only=False)
        .astype(object)
    )
    models = {name: load_model(folder / "models" / name) for name in manifest["models"]}
    catalog_path = folder / "catalog.parquet"
    catalog = pq.read_table(catalog_path).to_pandas() if catalog_path.exists() else None
    return Bundle(
        users=users,
        items=items,
        models=models,
        manifest=manifest,
        catalog=catalog,
        folder=folder,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
