"""Shared fixtures: the local dataset mirror and a throw-away HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import skip_or_fail

#: ../shared/datasets beside the project root (never copied into the repository).
SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def shared_mirror() -> Path:
    """The local dataset mirror: ``$CINEREC_DATA_MIRROR`` or ``../shared/datasets``."""
    env = os.environ.get("CINEREC_DATA_MIRROR")
    return Path(env) if env else SHARED_DATASETS


@pytest.fixture
def datasets_mirror() -> Path:
    """The mirror folder holding ``ml-latest-small/``; skips the test when absent."""
    mirror = shared_mirror()
    if not (mirror / "ml-latest-small" / "ratings.csv").is_file():
        skip_or_fail(f"no MovieLens mirror at {mirror}")  # CI always has the mirror
    return mirror


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serve a fresh folder over HTTP on 127.0.0.1; yields ``(base_url, folder)``."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def datasets_mirror_module() -> Path:
    """The mirror holding ``streaming-catalogs/`` (module scope, for expensive fixtures)."""
    mirror = shared_mirror()
    if not (mirror / "streaming-catalogs").is_dir():
        skip_or_fail(f"no streaming catalogs at {mirror}")
    return mirror
