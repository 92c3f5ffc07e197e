"""The real services tests talk to (Redis, PostgreSQL), and how their absence is handled.

Locally a missing service skips the test; under CI (``CI`` set to anything but false/0) it
fails, because CI always provides them — so an integration test can never pass by
silently not running there.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import redis
import sqlalchemy as sa

REDIS_URL = os.environ.get("CINEREC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "CINEREC_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip, except under CI, where a missing service or dataset is a failure."""
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def postgres_or_skip(url: str = POSTGRES_URL) -> str:
    """``url`` when PostgreSQL answers there; skips (fails under CI) otherwise."""
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        shown = sa.make_url(url).render_as_string()
        skip_or_fail(f"no PostgreSQL at {shown}: {type(exc).__name__}")
    return url


def redis_or_skip(url: str = REDIS_URL) -> str:
    """``url`` when a Redis answers there; skips (fails under CI=true) otherwise."""
    try:
        redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5).ping()
    except redis.RedisError as exc:
        skip_or_fail(f"no Redis at {url}: {exc}")
    return url


def drop_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (test clean-up)."""
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayRedis:
    """A redis-server on a free port, without persistence, that tests kill and restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir), "--loglevel", "warning"]
        self.proc = subprocess.Popen(
            ["redis-server", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 5
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections hang, as in a network partition."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=5)
            self.proc = None


def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    """Generator body for a fixture: a started ThrowawayRedis, killed afterwards."""
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not on PATH")
    server = ThrowawayRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
