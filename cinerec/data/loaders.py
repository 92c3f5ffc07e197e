"""One entry point that turns a dataset name or a folder into a :class:`Dataset`."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from cinerec.data.dataset import Dataset
from cinerec.data.movielens import VARIANTS, load_movielens
from cinerec.errors import DataError

#: Names :func:`load_dataset` knows besides saved dataset folders.
DATASET_NAMES: Final = (*VARIANTS, "demo")


def load_dataset(
    name_or_path: str | Path,
    *,
    mirror: str | Path | None = None,
    cache: str | Path | None = None,
    progress: bool = True,
) -> Dataset:
    """Load a dataset by name (see :data:`DATASET_NAMES`) or from a saved folder.

    * a MovieLens name (``ml-latest-small`` … ``ml-latest``) is fetched through the cache
      and ``mirror`` (falling back to ``$CINEREC_DATA_MIRROR``);
    * ``demo`` builds the demo dataset (MovieLens joined with streaming catalogs);
    * a folder holding ``items.parquet`` and ``interactions.parquet`` is read as written by
      :meth:`Dataset.save`.

    Anything else raises :class:`DataError` listing the known names.
    """
    key = str(name_or_path)
    if key in VARIANTS:
        return load_movielens(key, mirror=mirror, cache=cache, progress=progress)
    if key == "demo":
        from cinerec.data.demo import build_demo

        return build_demo(mirror=mirror, cache=cache, progress=progress)
    folder = Path(key).expanduser()
    if folder.is_dir() and (folder / "items.parquet").is_file():
        return Dataset.load(folder)
    if folder.is_dir():
        raise DataError(
            "folder is not a saved dataset (needs items.parquet and interactions.parquet)",
            file=str(folder),
        )
    if folder.is_file():  # a user's own table: the importer reads those
        raise DataError(
            "is a file, not a dataset: import it (cinerec data import / --interactions)",
            file=str(folder),
        )
    raise DataError(
        f"unknown dataset {key!r}: use one of {', '.join(DATASET_NAMES)} "
        "or a folder written by Dataset.save"
    )
