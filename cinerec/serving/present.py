"""How the service shows catalog items: one place for the API's item fields.

Built once per served model (the catalog is the bundle's), used by every endpoint and by
batch scoring, so a nightly list and a live answer carry the same fields.
"""

from __future__ import annotations

import numpy as np

from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.types import RankedItem
from cinerec.serving import schemas


def _column(rec: Recommender, name: str) -> np.ndarray:
    """Object array of a catalog column with missing values as None."""
    catalog = rec.catalog
    if name not in catalog:
        return np.full(len(catalog), None, dtype=object)
    values = catalog[name].astype(object).to_numpy()
    return np.array([None if v is None or v != v else v for v in values], dtype=object)


def _genre_lists(rec: Recommender) -> list[tuple[str, ...]]:
    """Each item's genre names (as the catalog spells them), from the genre matrix."""
    facts = rec.facts
    indptr, columns = facts.genres.indptr, facts.genres.indices
    names = facts.genre_names
    return [
        tuple(names[c] for c in columns[indptr[i] : indptr[i + 1]]) for i in range(facts.n_items)
    ]


class CatalogView:
    """Per-item title, type, year, genres and duration of one model's catalog, in
    item-index order."""

    def __init__(self, rec: Recommender) -> None:
        self.rec = rec
        self.version = rec.model_version
        self.titles = _column(rec, "title")
        self.types = _column(rec, "type")
        self.years = [int(y) if y >= 0 else None for y in rec.facts.year]
        self.genres = _genre_lists(rec)
        self.durations = (
            rec.catalog["duration_min"].to_numpy(dtype=float, na_value=np.nan)
            if "duration_min" in rec.catalog
            else np.full(len(rec.catalog), np.nan)
        )

    def item(self, ranked: RankedItem, item_id: str) -> schemas.RecommendedItem:
        """The API's representation of one ranked item."""
        anchor = ranked.reason.item_idx
        return schemas.RecommendedItem(
            item_id=item_id,
            rank=ranked.rank,
            score=round(float(ranked.score), 6),
            title=self.titles[ranked.item_idx],
            type=self.types[ranked.item_idx],
            year=self.years[ranked.item_idx],
            genres=list(self.genres[ranked.item_idx]),
            reason=schemas.Reason(
                code=ranked.reason.code,
                text=ranked.reason.text,
                item_id=str(self.rec.items.ids[anchor]) if anchor >= 0 else None,
            ),
            sources=list(ranked.sources),
        )


class LiveCatalog:
    """The :class:`CatalogView` of the model being served, built once per version.

    Shared by every request path (answers, similar items, history), so a hot reload builds
    the new version's view once, on the first request that sees the new model.
    """

    def __init__(self) -> None:
        self._view: CatalogView | None = None

    def of(self, rec: Recommender) -> CatalogView:
        """The view of ``rec``'s catalog (rebuilt when ``rec`` is another version)."""
        view = self._view
        if view is None or view.version != rec.model_version:
            view = self._view = CatalogView(rec)
        return view
