"""What the pipeline worker processes cost in memory: RSS and PSS of the API process and of
each worker of a running ``cinerec serve``, after some requests (Linux /proc).

Starts the server on a bundle with the default number of pipeline processes (or
``--pipeline-processes N``), prints the start-up choice it logged, the time until /health
answered, and one line per process.

    python benchmarks/serving_memory.py --bundle bundles/demo [--pipeline-processes N]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def mib(pid: int, path: str, name: str) -> float:
    """A ``name: <n> kB`` line of /proc/<pid>/<path>, in MiB."""
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(name):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    """Every direct child of ``pid`` (whichever thread started it)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(c) for task in tasks for c in (task / "children").read_text().split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, type=Path)
    parser.add_argument("--pipeline-processes", type=int, default=None)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "CINEREC_BUNDLE": str(args.bundle.resolve())}
    env |= {"DATABASE_URL": f"sqlite:///{tmp / 'events.db'}", "OMP_NUM_THREADS": "1"}
    env.pop("CINEREC_PIPELINE_PROCESSES", None)
    if args.pipeline_processes is not None:
        env["CINEREC_PIPELINE_PROCESSES"] = str(args.pipeline_processes)
    log = (tmp / "server.log").open("w+")
    command = [sys.executable, "-m", "cinerec.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    base, started = f"http://127.0.0.1:{port}", time.monotonic()
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"server exited: {(tmp / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        ready = time.monotonic() - started
        with httpx.Client(base_url=base, timeout=60) as client:
            for n in range(args.requests):
                params = {"user_id": str(n + 1), "k": 10}
                client.get("/v1/recommendations", params=params).raise_for_status()
        rows = [("api", server.pid)] + [("child", pid) for pid in children(server.pid)]
        print(f"ready after {ready:.1f} s")
        for role, pid in rows:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            kind = "worker" if "spawn_main" in cmd else "helper" if role == "child" else "api"
            rss, pss = mib(pid, "status", "VmRSS:"), mib(pid, "smaps_rollup", "Pss:")
            print(f"{kind:6} pid {pid}: RSS {rss:6.0f} MiB  PSS {pss:6.0f} MiB")
    finally:
        server.terminate()
        server.wait(timeout=30)
    log.seek(0)
    print("".join(line for line in log if "pipeline worker processes" in line), end="")


if __name__ == "__main__":
    main()
