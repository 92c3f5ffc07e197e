"""A cold ``cinerec demo``, timed from the command to the API's first answer.

Runs the demo as a new user's ``make demo`` would: a fresh work folder and a fresh cache
(no dataset, no embeddings), the API on a free port. It polls
``GET /v1/recommendations?user_id=1`` until the first successful answer, reads the
phases the demo recorded (``reports/demo/demo.json``: data, tuning, background encoding,
ranker, fitting), then waits for the background evaluation and reads the hybrid's and
the content model's NDCG@10 with their 95% bootstrap intervals. ``--install`` first times
the install ``make demo`` starts with, into a fresh virtualenv, and runs the demo from it
(pip's cache as it is: say whether it was warm). ``--baseline`` adds the figures of
another run's report (``reports/demo/results.json`` or a ``cinerec demo --json``
document) for comparison.
``--sample N`` also encodes N random catalog texts in float32 and in the precision the
demo used, for their cosine similarity and texts per CPU-second.

Prints the timeline and writes ``reports/benchmarks/demo_timeline.json``.

    python benchmarks/demo_timeline.py [--install] [--baseline FILE] [--no-evaluation]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from procstat import tree_cpu_seconds
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "benchmarks" / "demo_timeline.json"
CLI = "from cinerec.cli import main; main()"
console = Console(stderr=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CpuSampler(threading.Thread):
    """(wall epoch, CPU seconds) of the demo's process tree twice a second, so that each
    phase's CPU time can be read off afterwards: on a shared machine the wall time of a
    phase says how busy the machine was, its CPU time what the phase costs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            cpu = tree_cpu_seconds(self.pid)
            if cpu == cpu:  # not NaN
                self.samples.append((time.time(), cpu))
            self.done.wait(0.5)

    def cpu_at(self, when: float) -> float:
        """CPU seconds used by ``when`` (linear between samples)."""
        times = [t for t, _ in self.samples]
        return float(np.interp(when, times, [c for _, c in self.samples]))


def install(venv: Path) -> tuple[Path, float]:
    """What ``make demo`` installs first (the runtime dependencies) into ``venv``: its
    python and the seconds it took."""
    started = time.perf_counter()
    subprocess.run(["make", "-C", str(ROOT), f"VENV={venv}", f"{venv}/.installed"], check=True)
    return venv / "bin" / "python", time.perf_counter() - started


def first_answer(url: str, process: subprocess.Popen, log: Path, timeout: float) -> dict:
    """Poll ``url`` until a 200 with items; the answer's size and the request's latency."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"the demo exited ({process.returncode}) before answering:\n{tail}")
        sent = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.loads(response.read())
            if body.get("items"):
                return {
                    "at": time.time(),
                    "latency_ms": round((time.perf_counter() - sent) * 1e3, 1),
                    "items": len(body["items"]),
                }
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        time.sleep(0.25)
    raise SystemExit(f"no answer from {url} within {timeout:.0f}s")


def model_figures(document: dict, models: tuple[str, ...] = ("content", "hybrid")) -> dict:
    """NDCG@10 and its 95% interval of ``models`` in a document holding ``results``."""
    out = {}
    for result in document.get("results", []):
        if result["model"] in models:
            low, high = result["intervals"]["ndcg@10"]
            out[result["model"]] = {
                "ndcg@10": result["metrics"]["ndcg@10"],
                "ci95": [low, high],
                "n_users": result["n_users"],
            }
    return out


def wait_for(path: Path, process: subprocess.Popen, timeout: float) -> float | None:
    """Seconds since the epoch when ``path`` appeared, None when it did not in time."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if path.is_file():
            return time.time()
        time.sleep(1.0)
    return None


def stop(process: subprocess.Popen) -> None:
    """Ctrl-C to the demo's process group (the API, then its evaluation), then kill."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def compare_precisions(python: Path, items: Path, sample: int, env: dict[str, str]) -> dict:
    """Cosine of float32 vs the automatic precision on ``sample`` demo texts, and speed."""
    code = f"""
import json, time, numpy as np, pandas as pd
from cinerec.features.sentence_model import load_sentence_model, resolve_precision
from cinerec.features.text import compose_text, default_model_path
texts = compose_text(pd.read_parquet({str(items)!r}))
rng = np.random.default_rng(0)
texts = sorted((texts[i] for i in rng.choice(len(texts), {sample}, replace=False)), key=len)
out = {{}}
for precision in ("float32", resolve_precision()):
    model = load_sentence_model(default_model_path(), precision)
    model.encode(texts[:8])
    cpu = time.process_time()
    v = np.asarray(model.encode(texts, batch_size=64), dtype=np.float32)
    out[precision] = {{"texts_per_cpu_second": round(len(texts) / (time.process_time() - cpu), 1)}}
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    out.setdefault("vectors", []).append(v)
a, b = out.pop("vectors")
cos = np.sum(a * b, axis=1)
out["cosine_vs_float32"] = {{"min": float(cos.min()), "mean": float(cos.mean()), "texts": len(cos)}}
print(json.dumps(out))
"""
    done = subprocess.run(
        [str(python), "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": model or platform.processor(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="time the install first")
    parser.add_argument("--install-seconds", type=float, help="an install measured apart")
    parser.add_argument("--baseline", type=Path, help="another run's results.json / demo JSON")
    parser.add_argument("--no-evaluation", action="store_true", help="stop at the first answer")
    parser.add_argument("--sample", type=int, default=512, help="texts for the precision check")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cinerec-demo-timeline-"))
    before = machine()
    python, installed = Path(sys.executable), args.install_seconds
    if args.install:
        python, installed = install(tmp / "venv")
    env = {**os.environ, "CINEREC_CACHE": str(tmp / "cache"), "OPENBLAS_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    mirror = ROOT.parent / "shared" / "datasets"
    if "CINEREC_DATA_MIRROR" not in env and mirror.is_dir():
        env["CINEREC_DATA_MIRROR"] = str(mirror)
    workdir, port = tmp / "work", free_port()
    command = [str(python), "-c", CLI, "demo", "--workdir", str(workdir), "--port", str(port)]
    if args.no_evaluation:
        command.append("--no-evaluate")
    log = tmp / "demo.log"
    console.print(f"cold demo in {tmp} (log {log})")
    with open(log, "wb") as sink:
        launched = time.time()
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        sampler = CpuSampler(process.pid)
        sampler.start()
        try:
            url = f"http://127.0.0.1:{port}/v1/recommendations?user_id=1&k=10"
            answer = first_answer(url, process, log, args.timeout)
            demo = json.loads((workdir / "reports" / "demo" / "demo.json").read_text())
            evaluated = None
            if not args.no_evaluation:
                report = workdir / "reports" / "demo" / "results.json"
                evaluated = wait_for(report, process, args.timeout)
        finally:
            sampler.done.set()
            sampler.join()
            stop(process)

    offset = demo["started_at"] - launched  # interpreter start and imports
    timeline = {"start": [0.0, round(offset, 2)]}
    for phase, (start, end) in demo["timeline"].items():
        timeline[phase] = [round(start + offset, 2), round(end + offset, 2)]
    last = max(end for _, end in timeline.values())
    timeline["first answer"] = [round(last, 2), round(answer["at"] - launched, 2)]
    cpu = {
        phase: round(sampler.cpu_at(launched + end) - sampler.cpu_at(launched + start), 1)
        for phase, (start, end) in timeline.items()
    }
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "install_seconds": installed,
        "first_answer_seconds": round(answer["at"] - launched, 1),
        "first_answer": answer,
        "timeline": timeline,
        "cpu_seconds": cpu,
        "cpu_seconds_to_first_answer": round(sampler.cpu_at(answer["at"]), 1),
        "train_seconds": demo["bundle"]["seconds"],
        "embeddings": demo["bundle"].get("embeddings"),
    }
    if installed is not None:
        result["install_plus_first_answer_seconds"] = round(installed + answer["at"] - launched, 1)
    if evaluated is not None:
        document = json.loads((workdir / "reports" / "demo" / "results.json").read_text())
        result["evaluation_seconds_after_launch"] = round(evaluated - launched, 1)
        result["after"] = model_figures(document)
    if args.baseline is not None and args.baseline.is_file():
        result["before"] = model_figures(json.loads(args.baseline.read_text()))
    elif args.baseline is not None:
        console.print(f"no baseline at {args.baseline}: left out")
    if args.sample > 0:
        items = workdir / "data" / "demo" / "items.parquet"
        result["precision"] = compare_precisions(python, items, args.sample, env)
    report_timeline(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"written {args.out}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


def report_timeline(result: dict[str, Any]) -> None:
    table = Table("phase", "start s", "end s", "seconds", "CPU s", title="cold demo timeline")
    if result["install_seconds"] is not None:
        table.add_row("install", "", "", f"{result['install_seconds']:.0f}", "")
    for phase, (start, end) in result["timeline"].items():
        cpu = result["cpu_seconds"][phase]
        table.add_row(phase, f"{start:.0f}", f"{end:.0f}", f"{end - start:.0f}", f"{cpu:.0f}")
    console.print(table)
    console.print(
        f"first answer after {result['first_answer_seconds']:.0f}s, "
        f"{result['cpu_seconds_to_first_answer']:.0f} CPU seconds"
    )
    for label in ("before", "after"):
        for model, figures in result.get(label, {}).items():
            low, high = figures["ci95"]
            console.print(
                f"{label}: {model} NDCG@10 {figures['ndcg@10']:.4f} [{low:.4f}, {high:.4f}]"
            )
    if "precision" in result:
        console.print(f"precision: {json.dumps(result['precision'])}")


if __name__ == "__main__":
    main()
