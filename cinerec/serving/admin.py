"""The admin API's work: reload the model, list versions, set the editor picks.

Operator actions change what every later answer is computed from, so each one leaves the
cache unable to serve an answer from before it: a reload serves another model version and
the editor picks are named in the cache key (:mod:`cinerec.serving.picks`), both part of
the key (:meth:`cinerec.serving.answers.Answers.cache_key`). The picks live beside the
event log, not on the served model: they outlive hot reloads and restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cinerec.serving.errors import NotFoundError, UnavailableError
from cinerec.serving.holders import ModelHolder
from cinerec.serving.metrics import Metrics

if TYPE_CHECKING:  # the picks' and registry's modules load SQLAlchemy and fsspec
    from cinerec.serving.picks import EditorPicks
    from cinerec.serving.registry import ModelRegistry


class Admin:
    """Reloads, versions and editor picks (see the module docstring).

    ``registry``: the model registry when the service follows one (else a fixed bundle).
    """

    def __init__(
        self,
        holder: ModelHolder,
        picks: EditorPicks,
        metrics: Metrics,
        registry: ModelRegistry | None = None,
    ) -> None:
        self.holder = holder
        self.picks = picks
        self.metrics = metrics
        self.registry = registry

    def reload(self) -> dict[str, Any]:
        """Load the promoted (or re-written) bundle now: the version served, whether it
        changed, and why the last version was refused if one was."""
        changed = bool(self.holder.check())
        self.metrics.reloads.labels(result="changed" if changed else "unchanged").inc()
        if self.holder.last_error and not changed:
            self.metrics.reloads.labels(result="failed").inc()
        self.note_model()
        return {
            "version": self.holder.version,
            "changed": changed,
            "last_error": self.holder.last_error,
        }

    def note_model(self) -> None:
        """Show the served version and config in the metrics."""
        rec = self.holder.value
        self.metrics.set_model(rec.model_version, rec.config_hash)

    def versions(self) -> dict[str, Any]:
        """The registry's versions (none without a registry) and the one served."""
        listed = [] if self.registry is None else [vars(v) for v in self.registry.versions()]
        return {"serving": self.holder.version, "versions": listed}

    def set_editor_picks(self, item_ids: list[str] | None) -> dict[str, Any]:
        """Store the operator's picks durably for every version served (None: the bundle's
        own again); the cache key names the picks, so no answer with the old ones is read."""
        rec = self.holder.value
        if item_ids is not None:
            index = rec.items.lookup(item_ids)
            unknown = [i for i, j in zip(item_ids, index, strict=True) if j < 0]
            if unknown:
                raise NotFoundError(f"unknown item id(s): {', '.join(unknown[:5])}")
        from cinerec.serving.eventlog import EventLogError

        try:
            if item_ids is None:
                self.picks.reset()
            else:
                self.picks.replace(item_ids)
        except EventLogError as exc:
            raise UnavailableError(f"editor picks not stored: {exc}") from exc
        return self.editor_picks()

    def editor_picks(self) -> dict[str, Any]:
        """The picks in force: the operator's, or the served bundle's own."""
        current = self.picks.current
        source = "bundle" if current is None else "operator"
        picks = self.holder.value.editor_picks if current is None else current
        return {"editor_picks": len(picks), "item_ids": list(picks), "source": source}
