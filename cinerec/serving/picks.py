"""The operator's editor picks: stored beside the event log, applied to every version served.

Editor picks are operator state, not model state. An operator sets them (``PUT
/v1/admin/editor-picks``) and they must outlive a hot reload to another version and a
restart of the service, so they are kept in the event-log database (SQLite by default,
PostgreSQL with ``DATABASE_URL``) in a small key-value table, ``operator_state``: written
there (committed) before the change is acknowledged, read at start-up, and read again every
``poll_s`` seconds so that replicas sharing a PostgreSQL database follow a change made on
another one. The API hands them to the pipeline with every request
(:attr:`cinerec.pipeline.types.Request.editor_picks`), so whichever version answers, in
whichever worker process, uses them. Until an operator has set any (or after
:meth:`EditorPicks.reset`), the served bundle's own config picks apply.

Answers depend on the picks, so cache keys and nightly-list keys name them
(:func:`picks_tag`): a change makes every answer computed with the old picks unreachable,
in every replica, with no cache-wide purge.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from cinerec.errors import CinerecError
from cinerec.serving.eventlog import EventLog, EventLogError

log = logging.getLogger("cinerec.serving")

OPERATOR_TABLE = "operator_state"
PICKS_KEY = "editor_picks"
#: The tag of "no operator picks: the served bundle's own".
BUNDLE_TAG = "bundle"
#: At most this many picks (the editor recall source takes its quota of them anyway).
MAX_PICKS = 500

Picks = tuple[str, ...]


def picks_tag(picks: Sequence[str] | None) -> str:
    """A short name of a picks list, for cache and nightly-list keys: :data:`BUNDLE_TAG`
    for the bundle's own picks (None), else a hash of the ids in order."""
    if picks is None:
        return BUNDLE_TAG
    return "p" + hashlib.sha1("\n".join(picks).encode()).hexdigest()[:12]


class EditorPicks:
    """The editor picks in force (see the module docstring); safe across threads.

    :attr:`current` and :attr:`tag` are read on every request and never touch the
    database; :meth:`replace` and :meth:`reset` write through, :meth:`refresh` (the poll
    thread started by :meth:`start`) re-reads.
    """

    def __init__(self, events: EventLog, *, poll_s: float = 5.0, table: str = OPERATOR_TABLE):
        self.events = events
        self.poll_s = poll_s
        self.table = sa.Table(
            table,
            sa.MetaData(),
            sa.Column("key", sa.String(), primary_key=True),
            sa.Column("value", sa.Text(), nullable=False),  # JSON
            sa.Column("updated_at", sa.BigInteger(), nullable=False),  # epoch microseconds
        )
        self._write = threading.Lock()  # a write and a re-read never interleave
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            with events.transaction("create the operator state table") as conn:
                self.table.create(conn, checkfirst=True)
        except EventLogError:  # another process may have created it meanwhile
            if not sa.inspect(events.engine).has_table(table):
                raise
        self._state: tuple[Picks | None, str] = (None, BUNDLE_TAG)
        self.refresh()

    @property
    def current(self) -> Picks | None:
        """The operator's picks, in order; None when the bundle's own apply."""
        return self._state[0]

    @property
    def tag(self) -> str:
        """:func:`picks_tag` of :attr:`current`."""
        return self._state[1]

    def replace(self, item_ids: Sequence[str]) -> Picks:
        """Store ``item_ids`` (committed when this returns) as the picks of every version."""
        picks = tuple(str(i) for i in item_ids)
        if len(picks) > MAX_PICKS:
            raise CinerecError(f"at most {MAX_PICKS} editor picks, got {len(picks)}")
        dialect = sqlite if self.events.engine.dialect.name == "sqlite" else postgresql
        row = {"key": PICKS_KEY, "value": json.dumps(list(picks)), "updated_at": _now()}
        upsert = dialect.insert(self.table).values(**row)
        upsert = upsert.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": upsert.excluded.value, "updated_at": upsert.excluded.updated_at},
        )
        with self._write:
            with self.events.transaction("store the editor picks") as conn:
                conn.execute(upsert)
            self._state = (picks, picks_tag(picks))
        return picks

    def reset(self) -> None:
        """Forget the operator's picks: the served bundle's own apply again."""
        with self._write:
            with self.events.transaction("reset the editor picks") as conn:
                conn.execute(sa.delete(self.table).where(self.table.c.key == PICKS_KEY))
            self._state = (None, BUNDLE_TAG)

    def refresh(self) -> bool:
        """Re-read the stored picks (another replica may have changed them); True when
        they changed here."""
        query = sa.select(self.table.c.value).where(self.table.c.key == PICKS_KEY)
        with self._write:
            with self.events.connection("read the editor picks") as conn:
                raw = conn.execute(query).scalar()
            picks = None if raw is None else _parse(raw)
            if picks == self._state[0]:
                return False
            self._state = (picks, picks_tag(picks))
        log.info("editor picks: %s", "the bundle's" if picks is None else f"{len(picks)} set")
        return True

    def start(self) -> None:
        """Re-read every ``poll_s`` seconds in a daemon thread (nothing when ``poll_s`` <= 0)."""
        if self.poll_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="cinerec-picks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.refresh()
            except (CinerecError, SQLAlchemyError) as exc:  # keep the last known picks
                log.warning("editor picks not re-read: %s", exc)


def _parse(raw: str) -> Picks:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise CinerecError(f"the stored editor picks are not a list of item ids: {raw[:80]!r}")
    return tuple(value)


def _now() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)
