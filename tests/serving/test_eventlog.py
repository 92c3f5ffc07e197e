"""The durable feedback log: round trips, idempotency, paging, export, threads and kill -9."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from cinerec.data.matrix import InteractionMatrix
from cinerec.data.schemas import INTERACTIONS_SCHEMA, empty_frame
from cinerec.errors import CinerecError
from cinerec.serving import eventlog as eventlog_module
from cinerec.serving.eventlog import EventLog, EventLogError
from cinerec.serving.events import FeedbackEvent
from tests.services import POSTGRES_URL as PG_URL
from tests.services import postgres_or_skip

T0 = datetime(2024, 5, 1, 12, 30, 15, 123457, tzinfo=UTC)

MakeLog = Callable[[], tuple[str, str]]


@pytest.fixture(scope="module")
def postgres_url() -> str:
    """PostgreSQL's URL; skips when it is unreachable, except under CI (then fails)."""
    return postgres_or_skip(PG_URL)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeLog]:
    """Returns ``() -> (url, table)`` for a fresh, private log; PostgreSQL tables are dropped."""
    tables: list[str] = []
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'logs' / 'events.db'}"
    )

    def make() -> tuple[str, str]:
        table = f"test_feedback_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        tables.append(table)
        return url, table

    yield make
    if request.param == "postgresql":
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for table in tables:
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
        engine.dispose()


@pytest.fixture
def log(make_log: MakeLog) -> Iterator[EventLog]:
    url, table = make_log()
    with EventLog(url, table=table) as opened:
        yield opened


def _events(n: int, user: str = "u1", start: datetime = T0) -> list[FeedbackEvent]:
    return [
        FeedbackEvent(user, f"i{k}", "click", start + timedelta(seconds=k, microseconds=k))
        for k in range(n)
    ]


def test_round_trip_keeps_every_field(log: EventLog) -> None:
    plus2 = timezone(timedelta(hours=2))
    events = [
        FeedbackEvent("u1", "m1", "rating", T0, value=4.5, session_id="s1", event_id="e-1"),
        FeedbackEvent("u1", "m2", "watch", T0 + timedelta(microseconds=1), watch_seconds=1234.567),
        FeedbackEvent("u1", "m3", "skip", datetime(2024, 5, 1, 14, 30, 16, 999999, tzinfo=plus2)),
        FeedbackEvent("u1", "m4", "like", datetime(1999, 12, 31, 23, 59, 59, 1), value=1.0),
        FeedbackEvent("u1", "m5", "view", T0 + timedelta(days=3650, microseconds=999999)),
    ]
    assert log.append(events) == 5
    stored = [event for _, event in log.read()]
    assert stored == events  # aware datetimes compare as instants, to the microsecond
    for got, sent in zip(stored, events, strict=True):
        assert got.timestamp.utcoffset() == timedelta(0)
        assert got.timestamp == sent.timestamp
        assert got.timestamp.microsecond == sent.timestamp.astimezone(UTC).microsecond
        assert (got.value, got.watch_seconds, got.session_id, got.event_id) == (
            sent.value,
            sent.watch_seconds,
            sent.session_id,
            sent.event_id,
        )
    assert stored[0].value == 4.5 and stored[1].value is None and stored[2].session_id is None
    assert log.count() == 5
    assert log.ping()


def test_append_is_idempotent_on_event_id(log: EventLog) -> None:
    events = _events(3)
    assert log.append(events) == 3
    assert log.append(events) == 0
    assert log.append([events[0]]) == 0
    fresh = FeedbackEvent("u1", "x", "like", T0)
    assert log.append([fresh, fresh, events[1]]) == 1  # repeats inside one batch, too
    assert log.append([]) == 0
    assert log.count() == 4
    assert [e.event_id for _, e in log.read()] == [*(e.event_id for e in events), fresh.event_id]


def test_user_events_latest_in_time_order(log: EventLog) -> None:
    # Arrival order differs from timestamp order; another user's events interleave.
    late, early, middle = (T0 + timedelta(hours=h) for h in (3, 1, 2))
    log.append([FeedbackEvent("u1", "a", "view", late)])
    log.append([FeedbackEvent("u2", "z", "view", T0)])
    log.append([FeedbackEvent("u1", "b", "view", early)])
    log.append([FeedbackEvent("u1", "c", "view", middle)])
    log.append([FeedbackEvent("u1", "d", "click", T0)])
    everything = log.user_events("u1")
    assert [e.item_id for e in everything] == ["d", "b", "c", "a"]
    assert all(e.user_id == "u1" for e in everything)
    assert [e.item_id for e in log.user_events("u1", limit=3)] == ["d", "b", "c"]  # "a" oldest
    assert [e.item_id for e in log.user_events("u2")] == ["z"]
    assert log.user_events("nobody") == []


def test_read_pages_by_position(log: EventLog) -> None:
    events = _events(25)
    for start in range(0, 25, 5):
        log.append(events[start : start + 5])
    pages, after = [], 0
    while page := log.read(after=after, limit=10):
        assert len(page) <= 10
        pages.append(page)
        after = page[-1][0]
    assert [len(p) for p in pages] == [10, 10, 5]
    positions = [pos for page in pages for pos, _ in page]
    assert positions == sorted(positions) and len(set(positions)) == 25
    assert [e for page in pages for _, e in page] == events
    assert log.read(after=positions[9], limit=3) == pages[1][:3]
    assert log.read(after=positions[-1]) == []


def _assert_interactions_file(path: Path) -> None:
    """The file has INTERACTIONS_SCHEMA's columns, types and nullability.

    Parquet has no second-resolution timestamps, so ``timestamp[s]`` comes back as
    ``timestamp[ms]`` (same values, same UTC zone) — for every table cinerec writes.
    """
    schema = pq.read_schema(path)
    assert schema.names == INTERACTIONS_SCHEMA.names
    for got, want in zip(schema, INTERACTIONS_SCHEMA, strict=True):
        assert got.nullable == want.nullable, got
        if pa.types.is_timestamp(want.type):
            assert pa.types.is_timestamp(got.type) and got.type.tz == want.type.tz == "UTC"
            assert got.type.unit in (want.type.unit, "ms")
        else:
            assert got.type == want.type, got
    frame = pd.read_parquet(path)
    expected = empty_frame("interactions").dtypes
    for column in INTERACTIONS_SCHEMA.names:
        if column == "timestamp":
            assert isinstance(frame[column].dtype, pd.DatetimeTZDtype)
            assert str(frame[column].dt.tz) == "UTC"
        else:
            assert frame[column].dtype == expected[column], column
    assert pq.read_table(path).cast(INTERACTIONS_SCHEMA).schema == INTERACTIONS_SCHEMA


def test_export_parquet_is_an_interactions_table(
    log: EventLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventlog_module, "EXPORT_CHUNK", 4)  # several chunks, one file
    events = [
        FeedbackEvent("u1", "m1", "rating", T0, value=3.5, session_id="s"),
        FeedbackEvent("u1", "m2", "watch", T0 + timedelta(hours=1), watch_seconds=600.0),
        FeedbackEvent("u2", "m1", "click", T0 + timedelta(hours=2)),
        FeedbackEvent("u2", "m3", "skip", T0 + timedelta(hours=3)),
        *_events(6, user="u3", start=T0 + timedelta(days=1)),
    ]
    log.append(events)
    path = tmp_path / "out" / "interactions.parquet"
    assert log.export_parquet(path) == len(events)

    _assert_interactions_file(path)
    frame = pd.read_parquet(path)
    assert len(frame) == len(events)
    assert frame["event"].tolist()[:4] == ["rating", "watch", "click", "skip"]
    assert frame["value"].tolist()[:4] == [3.5, 1.0, 1.0, 1.0]
    assert frame["watch_seconds"].iloc[1] == 600.0 and pd.isna(frame["watch_seconds"].iloc[0])
    assert frame["session_id"].iloc[0] == "s" and pd.isna(frame["session_id"].iloc[1])
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-05-01 12:30:15", tz="UTC")

    matrix = InteractionMatrix.build(frame)
    assert len(matrix.users) == 3 and matrix.matrix.shape[0] == 3
    assert matrix.skips is not None and matrix.skips.sum() == 1

    since = tmp_path / "since.parquet"
    assert log.export_parquet(since, since=T0 + timedelta(days=1)) == 6
    assert set(pd.read_parquet(since)["user_id"]) == {"u3"}
    assert not list(tmp_path.glob("out/.*"))  # no temporaries left behind


def test_export_of_an_empty_log(log: EventLog, tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    assert log.export_parquet(path) == 0
    _assert_interactions_file(path)
    assert pd.read_parquet(path).empty


def test_concurrent_appends_from_threads(make_log: MakeLog) -> None:
    url, table = make_log()
    threads, per_thread = 8, 200
    sent: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    with EventLog(url, table=table) as shared:
        barrier = threading.Barrier(threads)

        def work(n: int) -> None:
            try:
                barrier.wait()
                for k in range(per_thread):
                    event = FeedbackEvent(f"u{n}", f"i{k}", "click", T0 + timedelta(seconds=k))
                    assert shared.append([event]) == 1
                    sent[n].append(event.event_id)
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert not errors, errors
        assert shared.count() == threads * per_thread
        stored = shared.read(limit=threads * per_thread + 1)
    assert {e.event_id for _, e in stored} == {i for ids in sent for i in ids}
    for n in range(threads):  # each thread's events keep their order in the log
        assert [e.event_id for _, e in stored if e.user_id == f"u{n}"] == sent[n]


WRITER = """
import sys
from datetime import UTC, datetime
from cinerec.serving.eventlog import EventLog
from cinerec.serving.events import FeedbackEvent
from tests.services import postgres_or_skip

log = EventLog(sys.argv[1], table=sys.argv[2])
n = 0
while True:
    batch = [
        FeedbackEvent(f"u{n % 7}", f"i{n + k}", "click", datetime.now(UTC))
        for k in range(1 + n % 3)
    ]
    n += len(batch)
    log.append(batch)
    sys.stdout.write("".join(event.event_id + "\\n" for event in batch))
    sys.stdout.flush()
"""


def test_acknowledged_events_survive_kill_9(make_log: MakeLog) -> None:
    url, table = make_log()
    EventLog(url, table=table).close()  # the table exists before the burst starts
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, table],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    fd = proc.stdout.fileno()
    received = b""
    deadline = time.monotonic() + 20
    try:
        while received.count(b"\n") < 300 and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                received += chunk
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-burst: it is appending as fast as it can
        rest, stderr = proc.communicate(timeout=10)
    received += rest
    assert proc.returncode == -signal.SIGKILL, stderr.decode(errors="replace")
    acked = received.decode().split("\n")[:-1]  # only complete lines were acknowledged
    assert len(acked) >= 300, stderr.decode(errors="replace")

    with EventLog(url, table=table) as reopened:
        stored = {event.event_id for _, event in reopened.read(limit=10**6)}
        assert set(acked) <= stored
        assert reopened.count() == len(stored) >= len(acked)


def _run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "cinerec.cli", "events", "export", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_events_export(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with EventLog(url) as log:
        log.append(_events(3) + _events(2, user="u2", start=T0 + timedelta(days=2)))

    result = _run_cli("--database-url", url, "--out", "all.parquet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5" in result.stdout and "all.parquet" in result.stdout
    assert len(pd.read_parquet(tmp_path / "all.parquet")) == 5

    since = (T0 + timedelta(days=1)).isoformat()
    args = ("--out", "recent.parquet", "--since", since, "--json")
    result = _run_cli(*args, cwd=tmp_path, env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["rows"] == 2 and document["out"] == "recent.parquet"
    assert set(pd.read_parquet(tmp_path / "recent.parquet")["user_id"]) == {"u2"}

    result = _run_cli("--out", "x.parquet", "--since", "yesterday", cwd=tmp_path, env={})
    assert (
        result.returncode == 2 and "--since" in result.stderr and "Traceback" not in result.stderr
    )


def test_default_url_is_events_db_in_the_working_folder(tmp_path: Path) -> None:
    result = _run_cli("--out", "x.parquet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "events.db").is_file() and (tmp_path / "x.parquet").is_file()


def test_bad_urls_raise_event_log_error(tmp_path: Path) -> None:
    with pytest.raises(EventLogError, match="cannot create the table") as caught:
        EventLog("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test?connect_timeout=2")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)
    assert isinstance(caught.value, CinerecError)
    for url in ("not a url", "mysql://user:s3cret@localhost/db", "nosuchdriver://x"):
        with pytest.raises(EventLogError) as caught:
            EventLog(url)
        assert "s3cret" not in str(caught.value)
    (tmp_path / "folder.db").mkdir()
    with pytest.raises(EventLogError, match=r"folder\.db"):
        EventLog(f"sqlite:///{tmp_path / 'folder.db'}")


def test_sqlite_is_durable_and_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "events.db"
    with EventLog(f"sqlite:///{path}") as log:
        with log.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
        log.append(_events(2))
    with EventLog(f"sqlite:///{path}") as reopened:
        assert reopened.count() == 2
    assert "events.db" in repr(reopened)


def test_in_memory_sqlite_is_shared_across_threads() -> None:
    with EventLog("sqlite://") as log:
        worker = threading.Thread(target=log.append, args=(_events(3),))
        worker.start()
        worker.join()
        assert log.count() == 3
