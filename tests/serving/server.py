"""Start the real service (``cinerec serve`` under uvicorn) in a subprocess on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.services import free_port

#: The checkout under test: the server imports this code, not another installed copy.
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def running_server(
    env: dict[str, str | None],
    *,
    cwd: Path,
    args: tuple[str, ...] = (),
    timeout_s: float = 120,
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Yield (process, base URL) once /health answers; kill the process afterwards.
    A None in ``env`` leaves that variable unset (e.g. to get a setting's default)."""
    port = free_port()
    merged: dict[str, str | None] = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(cwd)),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "CINEREC_PIPELINE_PROCESSES": "0",  # fast start; a test may ask for the default
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        **env,
    }
    full_env = {name: value for name, value in merged.items() if value is not None}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cinerec.cli", "serve", "--port", str(port), *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"server exited with {proc.returncode}: {output[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.2)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
