"""The durable feedback log behind ``POST /feedback``: acknowledged means committed.

An append returns only after its transaction has committed (SQLite in WAL mode with
``synchronous=FULL``, PostgreSQL with ``synchronous_commit`` on), so feedback the API
acknowledged survives a ``kill -9`` of the service. Writes are idempotent on
``event_id``: a client retrying a request stores nothing twice.

The log position (``id``) grows in commit order — appends are serialised (SQLite has a
single writer anyway; PostgreSQL takes a transaction-level advisory lock) — so a consumer
that catches up with :meth:`EventLog.read` from its last position never skips an event
that committed late.

Timestamps are stored as integer microseconds since the Unix epoch (UTC): exact to the
microsecond on every database, and cheap to compare.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from cinerec.errors import CinerecError
from cinerec.serving.events import FeedbackEvent

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
#: Rows fetched per query while exporting, so millions of events never sit in memory.
EXPORT_CHUNK = 50_000
#: Seconds SQLite waits for another process's write lock before failing.
SQLITE_BUSY_SECONDS = 30


@dataclass
class _Ticket:
    """One caller's events waiting for a group commit."""

    events: list[FeedbackEvent]
    stored: int = 0
    done: bool = False
    error: BaseException | None = None


class EventLogError(CinerecError):
    """The event log's database is unreachable, misconfigured or refused a statement."""


def _micros(stamp: datetime) -> int:
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return (stamp - _EPOCH) // _MICRO


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


def _safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


class EventLog:
    """Append-only feedback log in a SQL database (SQLAlchemy Core), safe across threads.

    ``url`` is any SQLAlchemy URL: ``sqlite:///events.db`` for one machine, or
    ``postgresql+psycopg://…`` when several API replicas share the log. The table is
    created when missing. One instance is shared by all request threads: each call checks
    a connection out of the engine's pool.
    """

    def __init__(self, url: str = "sqlite:///events.db", *, table: str = "feedback_events") -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            scheme = url.split(":", 1)[0] if ":" in url else "?"
            raise EventLogError(f"invalid database URL (scheme {scheme!r})") from None
        self.url = _safe_url(parsed)
        self._password = parsed.password if isinstance(parsed.password, str) else None
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise EventLogError(f"event log {self.url}: use a sqlite:// or postgresql:// URL")
        self._sqlite = backend == "sqlite"
        memory = self._sqlite and parsed.database in (None, "", ":memory:")
        # SQLite has one writer: serialising in-process writes avoids busy-waiting; an
        # in-memory database is one shared connection, so every call is serialised.
        self._group = threading.Condition()
        self._queue: list[_Ticket] = []
        self._writing = False
        lock = threading.Lock()
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            lock if self._sqlite else contextlib.nullcontext()
        )
        self._read_lock: contextlib.AbstractContextManager[Any] = (
            lock if memory else contextlib.nullcontext()
        )
        self._lock_key = zlib.crc32(f"cinerec.eventlog:{table}".encode())
        self.engine = self._create_engine(parsed, memory)
        self.table = _define_table(sa.MetaData(), table)
        with self._errors("create the table"):
            self._create_table()

    # -- setup ---------------------------------------------------------------------------

    def _create_engine(self, url: URL, memory: bool) -> Engine:
        try:
            if not self._sqlite:
                timeout = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
                return sa.create_engine(url, pool_pre_ping=True, connect_args=timeout)
            if memory:
                return sa.create_engine(
                    url, connect_args={"check_same_thread": False}, poolclass=StaticPool
                )
            if url.database:
                Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS},
                pool_size=8,
                max_overflow=16,
            )
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise EventLogError(f"event log {self.url}: unsupported database URL ({exc})") from None
        except OSError as exc:
            raise EventLogError(f"event log {self.url}: {exc.strerror}") from None

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cursor.close()

        return engine

    def _create_table(self) -> None:
        try:
            self.table.create(self.engine, checkfirst=True)
        except SQLAlchemyError:
            # Another process may have created it between the check and the CREATE.
            if not sa.inspect(self.engine).has_table(self.table.name):
                raise

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn database errors into one clear EventLogError line (never with a password)."""
        try:
            yield
        except SQLAlchemyError as exc:
            original = getattr(exc, "orig", None) or exc
            reason = (str(original).strip().splitlines() or [type(original).__name__])[0]
            if self._password:
                reason = reason.replace(self._password, "***")
            raise EventLogError(f"event log {self.url}: cannot {doing}: {reason}") from None

    # -- writing -------------------------------------------------------------------------

    def append(self, events: Sequence[FeedbackEvent]) -> int:
        """Store ``events``, committed (durable) when this returns; the number of new rows.

        Idempotent on ``event_id``: events already stored (or repeated) are skipped.
        Concurrent callers share transactions (group commit): whoever finds no write in
        progress commits everything queued so far in one transaction — one fsync for many
        requests — and every caller returns once the transaction holding its events has
        committed, so an acknowledged event is never lost.
        """
        if not events:
            return 0
        ticket = _Ticket(list(events))
        with self._group:
            self._queue.append(ticket)
        while True:
            with self._group:
                while not ticket.done and self._writing:
                    self._group.wait()
                if ticket.done:
                    break
                self._writing = True
                batch, self._queue = self._queue, []
            try:
                inserted = self._insert([e for t in batch for e in t.events])
                for t in batch:
                    mine = {e.event_id for e in t.events} & inserted
                    t.stored = len(mine)
                    inserted -= mine  # a repeat in a later ticket is not new again
            except Exception as exc:
                for t in batch:
                    t.error = exc
            finally:
                with self._group:
                    self._writing = False
                    for t in batch:
                        t.done = True
                    self._group.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.stored

    def _insert(self, events: list[FeedbackEvent]) -> set[str]:
        """One transaction; the event ids that were new."""
        received = _micros(datetime.now(UTC))
        rows = [_row(event, received) for event in events]
        dialect = sqlite if self._sqlite else postgresql
        statement = (
            dialect.insert(self.table)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(self.table.c.event_id)
        )
        with self._errors("append events"), self._write_lock, self.engine.begin() as conn:
            if not self._sqlite:
                # Commit order == id order, so readers paging by position skip nothing.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._lock_key})
            return {row[0] for row in conn.execute(statement, rows).all()}

    # -- reading -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self, doing: str) -> Iterator[Connection]:
        with self._errors(doing), self._read_lock, self.engine.connect() as conn:
            yield conn

    def connection(self, doing: str) -> contextlib.AbstractContextManager[Connection]:
        """A connection to the log's database, for state kept beside the log (the editor
        picks, :mod:`cinerec.serving.picks`); a database error raises EventLogError."""
        return self._connect(doing)

    @contextlib.contextmanager
    def transaction(self, doing: str) -> Iterator[Connection]:
        """One committed write transaction beside the log's (serialised with appends on
        SQLite, its single writer); a database error raises EventLogError."""
        with self._errors(doing), self._write_lock, self.engine.begin() as conn:
            yield conn

    def user_events(self, user_id: str, limit: int = 200) -> list[FeedbackEvent]:
        """The user's latest ``limit`` events (by arrival), oldest first by timestamp."""
        t = self.table
        query = sa.select(t).where(t.c.user_id == user_id).order_by(t.c.id.desc()).limit(limit)
        with self._connect("read a user's events") as conn:
            rows = conn.execute(query).all()
        rows = sorted(rows, key=lambda row: (row.timestamp, row.id))
        return [_event(row) for row in rows]

    def read(self, after: int = 0, limit: int = 10_000) -> list[tuple[int, FeedbackEvent]]:
        """``(position, event)`` pairs with position > ``after``, in log order."""
        t = self.table
        query = sa.select(t).where(t.c.id > after).order_by(t.c.id).limit(limit)
        with self._connect("read the log") as conn:
            return [(row.id, _event(row)) for row in conn.execute(query)]

    def count(self) -> int:
        """How many events the log holds."""
        with self._connect("count events") as conn:
            query = sa.select(sa.func.count()).select_from(self.table)
            return int(conn.execute(query).scalar_one())

    def export_parquet(self, path: str | Path, *, since: datetime | None = None) -> int:
        """Write the events (``since``: timestamp >= it) as an interactions Parquet table.

        Columns and types are ``INTERACTIONS_SCHEMA``; ``value`` is 1.0 where the event had
        none. Written atomically in chunks of :data:`EXPORT_CHUNK` rows; returns the row count.
        """
        import pandas as pd
        import pyarrow.parquet as pq

        from cinerec.data.io import atomic_path
        from cinerec.data.schemas import INTERACTIONS_SCHEMA, conform

        t = self.table
        columns = [t.c.id, t.c.user_id, t.c.item_id, t.c.action, t.c.value]
        columns += [t.c.watch_seconds, t.c.timestamp, t.c.session_id]
        total, last = 0, 0
        with atomic_path(path) as tmp, pq.ParquetWriter(tmp, INTERACTIONS_SCHEMA) as writer:
            while True:
                query = sa.select(*columns).where(t.c.id > last)
                if since is not None:
                    query = query.where(t.c.timestamp >= _micros(since))
                query = query.order_by(t.c.id).limit(EXPORT_CHUNK)
                with self._connect("export events") as conn:
                    chunk = pd.DataFrame(
                        conn.execute(query).all(), columns=[c.name for c in columns]
                    )
                if chunk.empty:
                    break
                last = int(chunk["id"].iloc[-1])
                frame = pd.DataFrame(
                    {
                        "user_id": chunk["user_id"].astype(str),
                        "item_id": chunk["item_id"].astype(str),
                        "event": chunk["action"].astype(str),
                        "value": chunk["value"].astype("float64").fillna(1.0),
                        "watch_seconds": chunk["watch_seconds"].astype("float64"),
                        "timestamp": pd.to_datetime(
                            chunk["timestamp"].astype("int64"), unit="us", utc=True
                        ),
                        "session_id": chunk["session_id"].astype(object),
                    }
                )
                writer.write_table(conform(frame, "interactions"))
                total += len(frame)
        return total

    # -- lifecycle -----------------------------------------------------------------------

    def ping(self) -> bool:
        """Readiness: True when the database answers a trivial query."""
        try:
            with self._read_lock, self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection; the log must not be used afterwards."""
        self.engine.dispose()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventLog({self.url!r}, table={self.table.name!r})"


def _define_table(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("event_id", sa.String(), nullable=False, unique=True),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("item_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("watch_seconds", sa.Double(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),  # epoch microseconds, UTC
        sa.Column("session_id", sa.String(), nullable=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),  # epoch microseconds, UTC
        sa.Index(f"ix_{name}_user_id_id", "user_id", "id"),
    )


def _row(event: FeedbackEvent, received: int) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "user_id": event.user_id,
        "item_id": event.item_id,
        "action": event.action,
        "value": event.value,
        "watch_seconds": event.watch_seconds,
        "timestamp": _micros(event.timestamp),
        "session_id": event.session_id,
        "received_at": received,
    }


def _event(row: sa.Row) -> FeedbackEvent:
    return FeedbackEvent(
        user_id=row.user_id,
        item_id=row.item_id,
        action=row.action,
        timestamp=_from_micros(row.timestamp),
        value=row.value,
        watch_seconds=row.watch_seconds,
        session_id=row.session_id,
        event_id=row.event_id,
    )
