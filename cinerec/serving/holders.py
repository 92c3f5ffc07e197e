"""Who holds the served model: a fixed bundle folder, or the registry's promoted version.

Every request grabs the holder's :attr:`ModelHolder.value` once and uses that one
:class:`Recommender` to the end, so a reload (one reference swap) never mixes two versions
in an answer. :class:`StaticHolder` serves one bundle folder and re-reads it on
:meth:`~StaticHolder.check`; :class:`~cinerec.serving.registry.HotReloader` follows the
registry's CURRENT. Both satisfy :class:`ModelHolder`, which is all the service knows of
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cinerec.errors import CinerecError
from cinerec.pipeline.persist import load_recommender
from cinerec.pipeline.recommender import Recommender


class ModelHolder(Protocol):
    """The served recommender and how to change it (:class:`StaticHolder`, or a
    :class:`~cinerec.serving.registry.HotReloader` of Recommenders)."""

    #: Why the last :meth:`check` refused a version (None: none refused yet).
    last_error: str | None

    @property
    def value(self) -> Recommender:
        """The live recommender: grab it once per request."""
        ...

    @property
    def version(self) -> str:
        """The live model version."""
        ...

    def check(self) -> bool:
        """Load and swap in a changed model now; True when a new version went live. A
        version that fails to load is refused (``last_error``) and the old one serves on."""
        ...

    def stop(self) -> None:
        """Stop any background polling (the live value stays usable)."""
        ...


def load_for_serving(folder: Path) -> Recommender:
    """A bundle's recommender, warmed up (see :meth:`Recommender.warm_up`) before it
    takes traffic — at start and on every hot reload."""
    recommender = load_recommender(folder)
    recommender.warm_up()
    return recommender


class StaticHolder:
    """Serves one bundle folder; :meth:`check` re-reads it (a broken folder is refused)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._value = load_for_serving(self.folder)
        self.last_error: str | None = None

    @property
    def value(self) -> Recommender:
        return self._value

    @property
    def version(self) -> str:
        return self._value.model_version

    def check(self) -> bool:
        try:
            fresh = load_for_serving(self.folder)
        except CinerecError as exc:
            self.last_error = str(exc)
            return False
        if fresh.model_version == self._value.model_version:
            return False
        self._value = fresh  # one reference swap: requests in flight keep the old object
        return True

    def stop(self) -> None:
        return None
