"""Latency of the running service under load, with an open-loop generator on loopback.

Starts ``cinerec serve`` (uvicorn) on a bundle, then drives it at fixed request rates from
a pool of client threads — the scheduled send time is the latency's start, so a slow server
cannot hide its queueing (no coordinated omission):

* uncached ``POST /v1/recommendations`` (full pipeline; every request differs) at 100/s;
* cached ``GET /v1/recommendations`` (hot users, answered from the cache) at 100/s;
* ``POST /v1/feedback`` (durable write + state update + cache invalidation) at 500/s;
* ``GET /health`` as fast as it goes with 8 connections: the app's floor on this machine.

Prints p50/p95/p99 and achieved rates; writes ``reports/benchmarks/serving.json``.

    python benchmarks/serving.py --bundle bundles/demo [--seconds 20] [--pipeline-processes 2]
        [--redis-url redis://127.0.0.1:6379/0] [--database-url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import json as _json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from procstat import tree_cpu_seconds
from rich.console import Console
from rich.table import Table


class CpuMeter:
    """Server and load-generator CPU over one phase: what each request costs the server,
    and how much of the machine the generator itself took (it shares the two cores)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.server = tree_cpu_seconds(server_pid)
        self.client = time.process_time()
        self.wall = time.perf_counter()

    def read(self, requests: int) -> dict:
        server = tree_cpu_seconds(self.server_pid) - self.server
        client = time.process_time() - self.client
        wall = time.perf_counter() - self.wall
        return {
            "server_cpu_ms_per_request": round(server / max(requests, 1) * 1e3, 2),
            "server_cores": round(server / wall, 2),
            "generator_cores": round(client / wall, 2),
        }


class LeanClient:
    """A keep-alive HTTP/1.1 client on the standard library's ``http.client``.

    The generator shares the two cores with the server: httpx cost about 1 ms of the
    generator's CPU a request (0.5 of a core at 500 requests/s), this a third of that, so
    less of the machine goes to the measuring and the server is measured, not the client.
    """

    def __init__(self, base: str, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(base)
        self._address = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _request(self, method: str, path: str, body: bytes | None, headers: dict) -> Answer:
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            if self._connection is None:
                self._connection = http.client.HTTPConnection(*self._address, timeout=self._timeout)
            try:
                self._connection.request(method, path, body=body, headers=headers)
                response = self._connection.getresponse()
                response.read()
                return Answer(response.status)
            except (OSError, http.client.HTTPException):
                self._connection.close()
                self._connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str, params: dict | None = None) -> Answer:
        query = f"?{urllib.parse.urlencode(params, doseq=True)}" if params else ""
        return self._request("GET", path + query, None, {})

    def post(self, path: str, json: object) -> Answer:
        body = _json.dumps(json).encode()
        return self._request("POST", path, body, {"content-type": "application/json"})

    def __enter__(self) -> LeanClient:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._connection is not None:
            self._connection.close()


@dataclass
class Answer:
    status_code: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "CINEREC_DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'events.db'}",
    }
    env.pop("DATABASE_URL", None)
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    else:
        env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cinerec.cli", "serve", "--bundle", str(args.bundle),
         "--port", str(port), "--workers", str(args.workers),
         "--pipeline-processes", str(args.pipeline_processes)],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not become ready")


def open_loop(
    base: str, rate: float, seconds: float, make_call, threads: int = 32, pid: int = 0
) -> dict:
    """Fire calls at ``rate``/s for ``seconds`` from a pool of client threads; each call's
    latency counts from its scheduled time, so queueing behind a slow server is measured.
    Every thread opens its connection (one ``/health`` call) before the clock starts, so
    the generator's own start-up is not billed to the server."""
    n = int(rate * seconds)
    slots = itertools.count()
    lock = threading.Lock()
    ready = threading.Barrier(threads + 1)
    clock: dict[str, float] = {}
    latencies: list[float] = []
    errors = [0]

    def worker() -> None:
        with LeanClient(base) as client:
            client.get("/health")
            ready.wait()
            ready.wait()  # the main thread sets the start time in between
            start = clock["start"]
            while True:
                with lock:
                    i = next(slots)
                if i >= n:
                    return
                scheduled = start + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                try:
                    failed = make_call(client, i).status_code >= 400
                except (OSError, http.client.HTTPException):
                    failed = True
                done = (time.perf_counter() - scheduled) * 1e3
                with lock:
                    latencies.append(done)
                    errors[0] += failed

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    ready.wait()
    meter = CpuMeter(pid)
    clock["start"] = time.perf_counter() + 0.05
    ready.wait()
    for thread in pool:
        thread.join()
    result = summary(latencies, errors[0], n / (time.perf_counter() - clock["start"]))
    return {**result, **meter.read(n)}


def closed_loop(base: str, seconds: float, url: str, workers: int, pid: int = 0) -> dict:
    """As many calls as ``workers`` threads get through: the app's throughput floor."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        with LeanClient(base) as client:
            while time.perf_counter() < stop:
                began = time.perf_counter()
                client.get(url)
                with lock:
                    latencies.append((time.perf_counter() - began) * 1e3)

    began = time.perf_counter()
    meter = CpuMeter(pid)
    pool = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    result = summary(latencies, 0, len(latencies) / (time.perf_counter() - began))
    return {**result, **meter.read(len(latencies))}


def summary(latencies: list[float], errors: int, rate: float) -> dict:
    values = np.asarray(latencies)
    return {
        "requests": len(values),
        "errors": int(errors),
        "rate_per_s": round(rate, 1),
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
    }


NAMES = {
    "uncached": "recommendations (uncached)",
    "cached": "recommendations (cached)",
    "feedback": "feedback",
    "health": "health (floor, 8 connections)",
}


def run(args: argparse.Namespace, base: str, pid: int, users: list[str], items: list[str]) -> dict:
    rng = random.Random()  # unseeded: a rerun must not hit the previous run's cached answers

    def uncached(c: LeanClient, i: int) -> Answer:
        body = {"user_id": rng.choice(users), "k": 10, "exclude": [rng.choice(items)],
                "context": {"device": "web"}}  # fmt: skip
        return c.post("/v1/recommendations", json=body)

    hot = users[:50]
    with httpx.Client(base_url=base, timeout=30) as client:
        for user in hot:  # warm the cache
            client.get("/v1/recommendations", params={"user_id": user, "k": 10})

    def cached(c: LeanClient, i: int) -> Answer:
        return c.get("/v1/recommendations", params={"user_id": hot[i % 50], "k": 10})

    def feedback(c: LeanClient, i: int) -> Answer:
        event = {"user_id": f"bench-{i % 5000}", "item_id": rng.choice(items),
                 "action": rng.choice(["view", "click", "like", "skip"]),
                 "event_id": uuid.uuid4().hex}  # fmt: skip
        return c.post("/v1/feedback", json=event)

    phases = {
        "uncached": lambda: open_loop(base, args.rate, args.seconds, uncached, pid=pid),
        "cached": lambda: open_loop(base, args.rate, args.seconds, cached, pid=pid),
        "feedback": lambda: open_loop(base, args.feedback_rate, args.seconds, feedback, pid=pid),
        "health": lambda: closed_loop(base, min(args.seconds, 10), "/health", 8, pid=pid),
    }
    return {NAMES[name]: phases[name]() for name in NAMES if name in args.phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("bundles/demo"))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--feedback-rate", type=float, default=500.0)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--pipeline-processes", type=int, default=0,
        help="pipeline worker processes (0: in the API process's threads)",
    )  # fmt: skip
    parser.add_argument("--redis-url", default=None)
    parser.add_argument(
        "--phases", type=lambda v: set(v.split(",")), default=set(NAMES),
        help="comma-separated subset of: " + ",".join(NAMES),
    )  # fmt: skip
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/serving.json"))
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 140)
    users = pd.read_parquet(args.bundle / "users.parquet")["user_id"].astype(str).tolist()
    items = pd.read_parquet(args.bundle / "items.parquet")["item_id"].astype(str).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(args, Path(tmp))
        try:
            results = run(args, base, proc.pid, users, items)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    title = (
        f"cinerec serving, {args.bundle} ({len(items):,} items), {args.workers} worker(s), "
        f"{args.pipeline_processes} pipeline process(es)"
    )
    table = Table(title=title)
    for column in ("endpoint", "target rate/s", "achieved/s", "requests", "errors",
                   "p50 ms", "p95 ms", "p99 ms", "server CPU ms/req", "server cores",
                   "generator cores"):  # fmt: skip
        table.add_column(column, justify="right" if column != "endpoint" else "left")
    targets = {"feedback": args.feedback_rate, "health (floor, 8 connections)": float("nan")}
    for name, row in results.items():
        table.add_row(
            name, f"{targets.get(name, args.rate):.0f}", f"{row['rate_per_s']:.0f}",
            str(row["requests"]), str(row["errors"]), f"{row['p50_ms']:.2f}",
            f"{row['p95_ms']:.2f}", f"{row['p99_ms']:.2f}",
            f"{row['server_cpu_ms_per_request']:.2f}", f"{row['server_cores']:.2f}",
            f"{row['generator_cores']:.2f}",
        )  # fmt: skip
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "bundle": str(args.bundle),
        "items": len(items),
        "redis": bool(args.redis_url),
        "database": "postgresql" if args.database_url else "sqlite",
        "seconds": args.seconds,
        "workers": args.workers,
        "pipeline_processes": args.pipeline_processes,
        "results": results,
        "load_average": os.getloadavg(),
    }
    args.out.write_text(json.dumps(document, indent=2))
    console.print(f"→ {args.out}")


if __name__ == "__main__":
    main()
