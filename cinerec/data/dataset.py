"""The dataset container: items, interactions and optional users, stored as Parquet."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cinerec.data.io import atomic_path
from cinerec.data.matrix import epoch_seconds
from cinerec.data.schemas import conform, empty_frame
from cinerec.errors import DataError


@dataclass
class Dataset:
    """One recommendation dataset in cinerec's schemas.

    ``interactions`` only reference items present in ``items`` (loaders guarantee it), so
    catalog items without any interaction — cold-start items — are simply rows of ``items``
    that no interaction names.
    """

    name: str
    items: pd.DataFrame
    interactions: pd.DataFrame
    users: pd.DataFrame = field(default_factory=lambda: empty_frame("users"))
    info: dict[str, object] = field(default_factory=dict)

    def save(self, folder: str | Path) -> Path:
        """Write the three tables to ``folder`` atomically (all or nothing)."""
        folder = Path(folder)
        with atomic_path(folder) as tmp:
            tmp.mkdir(parents=True)
            pq.write_table(conform(self.items, "items"), tmp / "items.parquet")
            pq.write_table(conform(self.interactions, "interactions"), tmp / "interactions.parquet")
            pq.write_table(conform(self.users, "users"), tmp / "users.parquet")
        return folder

    @classmethod
    def load(cls, folder: str | Path, name: str | None = None) -> Dataset:
        """Read a folder written by :meth:`save`."""
        folder = Path(folder)
        for table in ("items", "interactions"):
            if not (folder / f"{table}.parquet").exists():
                raise DataError(f"missing {table}.parquet", file=str(folder))
        users_path = folder / "users.parquet"
        return cls(
            name=name or folder.name,
            items=pq.read_table(folder / "items.parquet").to_pandas(),
            interactions=pq.read_table(folder / "interactions.parquet").to_pandas(),
            users=pq.read_table(users_path).to_pandas()
            if users_path.exists()
            else empty_frame("users"),
        )

    def fingerprint(self) -> str:
        """A short content hash of the interactions and item ids (for bundle manifests)."""
        digest = hashlib.sha256()
        inter = self.interactions
        canonical = pd.DataFrame(
            {
                "user_id": inter["user_id"].astype(str).to_numpy(dtype=object),
                "item_id": inter["item_id"].astype(str).to_numpy(dtype=object),
                "value": inter["value"].to_numpy(dtype="float64", na_value=float("nan")),
                "timestamp": epoch_seconds(inter["timestamp"]),
            }
        )
        digest.update(pd.util.hash_pandas_object(canonical, index=False).to_numpy().tobytes())
        item_ids = pd.Series(self.items["item_id"].astype(str).to_numpy(dtype=object))
        digest.update(pd.util.hash_pandas_object(item_ids, index=False).to_numpy().tobytes())
        return digest.hexdigest()[:16]

    def summary(self) -> dict[str, object]:
        """Counts a person wants to see after loading."""
        inter = self.interactions
        return {
            "items": len(self.items),
            "interactions": len(inter),
            "users": int(inter["user_id"].nunique()),
            "items_with_interactions": int(inter["item_id"].nunique()),
            "series": int((self.items["type"] == "series").sum()),
            **self.info,
        }
