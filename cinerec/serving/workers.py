"""Pipeline worker processes: the ranking path on every core, all state in the API process.

Why: about 70% of a request's pipeline is interpreted Python, so threads of one process take
turns on the GIL — one process tops out near one core, and two pipelines at once cost a
third more CPU each than one at a time. Worker processes run pipelines side by side with
no GIL between them. Unlike several uvicorn workers they need no Redis: the API process
keeps the event log, the online state and the cache, and hands a worker a complete
:class:`Request` (the user's recent events included), so read-after-write holds whichever
worker answers, and one queue balances the work.

Each worker loads the bundle itself (a fresh ``spawn``-ed interpreter: no fork of a
threaded server). A worker that dies is replaced; the requests it held are answered in the
API process meanwhile. A worker whose API process died without closing it (``kill -9``,
the OOM killer) exits within a second rather than hold its copy of the bundle forever.
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import os
import threading
import time
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from cinerec.errors import ModelError
from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.types import Recommendations, Request

log = logging.getLogger("cinerec.serving")

#: Share of the available memory the default number of workers may plan to take.
MEMORY_SHARE = 0.8

_recommender: Recommender | None = None  # the worker process's own copy of the bundle


def _load(folder: str, parent: int) -> None:
    """Worker start-up: load and warm the bundle once (see ``load_for_serving``)."""
    from cinerec.serving.holders import load_for_serving

    _exit_with(parent)
    global _recommender
    _recommender = load_for_serving(Path(folder))
    gc.freeze()  # the model's objects never die: keep them out of the collector's walks


def _exit_with(parent: int, every_s: float = 1.0) -> None:
    """Exit once ``parent`` (the API process) is gone: the pool's queues stay open in the
    worker itself, so without this an orphaned worker would wait for work forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(0)

    threading.Thread(target=watch, name="cinerec-parent-watch", daemon=True).start()


def _loaded() -> Recommender:
    if _recommender is None:
        raise ModelError("pipeline worker has no bundle loaded")
    return _recommender


def _version() -> tuple[str, int]:
    return _loaded().model_version, os.getpid()


def _recommend(request: Request) -> Recommendations:
    return _loaded().recommend(request)  # the request carries the operator's editor picks


class PipelineWorkers:
    """``processes`` worker processes answering :meth:`Recommender.recommend` for the bundle
    in ``folder``; the constructor returns once every worker has loaded it."""

    def __init__(self, folder: Path, processes: int, *, version: str) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.folder = Path(folder)
        self.processes = processes
        self.version = version
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = self._start()

    def _start(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load,
            initargs=(str(self.folder), os.getpid()),
        )
        # One call per worker, all at once: the pool starts every process and waits for
        # each to have loaded the bundle before the first request reaches it.
        try:
            answers = [executor.submit(_version) for _ in range(self.processes)]
            versions = {future.result()[0] for future in answers}
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        if versions != {self.version}:
            executor.shutdown(wait=False, cancel_futures=True)
            raise ModelError(f"pipeline workers loaded {versions}, expected {self.version}")
        return executor

    def recommend(self, request: Request) -> Recommendations | None:
        """The worker's answer, or None while the pool is down (a worker died; it is being
        restarted): the caller then answers in process."""
        executor = self._executor
        if executor is None:
            return None
        try:
            return executor.submit(_recommend, request).result()
        except BrokenProcessPool:
            self._restart(executor)
            return None
        except CancelledError:  # the pool was closed under this request
            return None

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is not broken:
                return  # another request saw it first
            self._executor = None
        log.error("a pipeline worker died; restarting %d workers", self.processes)
        broken.shutdown(wait=False, cancel_futures=True)

        def start() -> None:
            try:
                self._executor = self._start()
            except Exception:
                log.exception("pipeline workers did not restart; answering in process")

        threading.Thread(target=start, name="cinerec-workers-restart", daemon=True).start()

    def pids(self) -> list[int]:
        """The worker processes' ids (monitoring, tests); empty while restarting."""
        executor = self._executor
        return sorted(executor._processes) if executor is not None else []

    def close(self) -> None:
        """Stop the workers once the requests already handed to them are answered."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


class PipelineRunner:
    """Where a request's pipeline runs: in ``processes`` worker processes (when > 0 and the
    workers hold the served version), else in the calling thread, at most ``concurrency``
    at once in this process.

    When a new version goes live (hot reload), its workers are started in the background
    and swapped in once they have all loaded it; until then, and whenever the workers are
    down, requests are answered in this process. A version whose workers failed to start
    is not retried (it is logged); the next version is.
    """

    def __init__(self, recommender: Recommender, processes: int, concurrency: int) -> None:
        self.processes = processes
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._attempted: str | None = None  # the last version workers were started for
        self.workers: PipelineWorkers | None = None
        if processes > 0:
            if recommender.folder is None:
                raise ModelError("pipeline worker processes need a bundle loaded from a folder")
            self._attempted = recommender.model_version
            self.workers = PipelineWorkers(
                recommender.folder, processes, version=recommender.model_version
            )

    def run(self, recommender: Recommender, request: Request) -> Recommendations:
        workers = self.workers
        if workers is not None and workers.version == recommender.model_version:
            answer = workers.recommend(request)
            if answer is not None:
                return answer
        elif self.processes > 0:
            self._replace_workers(recommender)
        with self._slots:
            return recommender.recommend(request)

    def _replace_workers(self, recommender: Recommender) -> None:
        folder, version = recommender.folder, recommender.model_version
        with self._lock:
            if self._attempted == version or folder is None:
                return
            self._attempted = version

        def load() -> None:
            try:
                fresh = PipelineWorkers(folder, self.processes, version=version)
            except Exception:
                log.exception(
                    "pipeline workers for %s did not start; answering in process", version
                )
                return
            with self._lock:
                old, self.workers = self.workers, fresh
            if old is not None:
                old.close()

        threading.Thread(target=load, name="cinerec-workers-load", daemon=True).start()

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()


# ----- the default number of workers ------------------------------------------------------
def default_processes(
    worker_bytes: int | None, *, cores: int | None = None, available: int | None = None
) -> tuple[int, str]:
    """How many pipeline workers to start when none is configured, and why (one line).

    One per usable core, as memory allows: ``worker_bytes`` is what one worker costs (the
    API process's own RSS once it holds the bundle is a close upper bound: a worker loads
    the same bundle). A hot reload starts the new version's workers, and the API process's
    copy of it, beside the old ones, so the plan is that peak fitting in
    :data:`MEMORY_SHARE` of the available memory: ``(2 n + 1) worker_bytes``. One core, or
    an unknown budget, keeps the pipeline in the API process (0)."""
    cores = usable_cores() if cores is None else cores
    available = available_memory() if available is None else available
    if cores < 2:
        return 0, f"{cores} usable core: the pipeline runs in the API process"
    if not worker_bytes or available is None:
        return 0, "memory unknown: the pipeline runs in the API process"
    fit = int((MEMORY_SHARE * available - worker_bytes) // (2 * worker_bytes))
    chosen = max(0, min(cores, fit))
    why = (
        f"{cores} usable cores, {available / 2**30:.1f} GiB available, "
        f"≈ {worker_bytes / 2**30:.2f} GiB a worker (room kept for a hot reload)"
    )
    return chosen, why


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def available_memory() -> int | None:
    """Bytes that can be used without swapping: MemAvailable, capped by a cgroup memory
    limit; half the physical memory where /proc is missing; None when unknown."""
    found = _proc_field("/proc/meminfo", "MemAvailable:")
    if found is None:
        try:
            found = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
        except (OSError, ValueError, AttributeError):
            return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found = min(found, int(limit) - used)
    except (OSError, ValueError):
        pass
    return found


def process_rss() -> int | None:
    """This process's resident memory in bytes (None where /proc is missing)."""
    return _proc_field("/proc/self/status", "VmRSS:")


def _proc_field(path: str, name: str) -> int | None:
    """A ``name: <n> kB`` line of a /proc file, in bytes."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
