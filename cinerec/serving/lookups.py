"""Items and users: more like this (``/v1/items/{id}/similar``) and a user's history.

Read-only views of the served model and the online state, kept apart from the
recommendation path: neither is cached or batched, and neither runs the pipeline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cinerec.models.similar import similar_items
from cinerec.serving import schemas
from cinerec.serving.errors import NotFoundError
from cinerec.serving.holders import ModelHolder
from cinerec.serving.present import LiveCatalog

if TYPE_CHECKING:  # the state's module loads redis-py
    from cinerec.serving.state import OnlineState


class Lookups:
    """Similar items and user histories from the served model (see the module docstring)."""

    def __init__(self, holder: ModelHolder, state: OnlineState, views: LiveCatalog) -> None:
        self.holder = holder
        self.state = state
        self.views = views

    def similar(self, item_id: str, k: int) -> list[schemas.SimilarItem]:
        """More like this (:func:`~cinerec.models.similar.similar_items`): content
        neighbours (any title, watched or not), else the first model relating items."""
        rec = self.holder.value
        index = rec.items.lookup([item_id])
        if index[0] < 0:
            raise NotFoundError(f"unknown item '{item_id}'")
        frame = similar_items(rec.models, rec.items, [item_id], k)
        view = self.views.of(rec)
        titles, types = view.titles, view.types
        return [
            schemas.SimilarItem(
                item_id=str(rec.items.ids[i]),
                score=round(float(s), 6),
                rank=r,
                title=titles[i],
                type=types[i],
            )
            for i, s, r in zip(
                rec.items.lookup(frame["similar_id"].to_numpy(object)),
                frame["score"],
                frame["rank"],
                strict=True,
            )
        ]

    def history(self, user_id: str, limit: int) -> list[schemas.HistoryEvent]:
        """The user's last ``limit`` events: the training history, then the online events
        received since. A user known to neither is a :class:`NotFoundError`."""
        rec = self.holder.value
        user = int(rec.users.lookup([user_id])[0])
        online = self.state.recent(user_id)
        if user < 0 and not online:
            raise NotFoundError(f"unknown user '{user_id}'")
        titles = self.views.of(rec).titles
        stored = rec.histories.get(user)
        out = [
            schemas.HistoryEvent(
                item_id=str(rec.items.ids[i]),
                action="history",
                source="training",
                timestamp=datetime.fromtimestamp(float(t), tz=UTC),
                title=titles[i],
                value=round(float(w), 4),
            )
            for i, t, w in zip(stored.items, stored.times, stored.weights, strict=True)
        ]
        index = rec.items.lookup([e.item_id for e in online])
        out += [
            schemas.HistoryEvent(
                item_id=e.item_id,
                action=e.action,
                source="online",
                timestamp=e.timestamp,
                value=e.value,
                title=titles[i] if i >= 0 else None,
            )
            for e, i in zip(online, index, strict=True)
        ]
        return out[-limit:]
