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
API process meanwhile.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from cinerec.errors import ModelError
from cinerec.pipeline.recommender import Recommender
from cinerec.pipeline.types import Recommendations, Request

log = logging.getLogger("cinerec.serving")

_recommender: Recommender | None = None  # the worker process's own copy of the bundle


def _load(folder: str) -> None:
    """Worker start-up: load and warm the bundle once (see ``load_for_serving``)."""
    from cinerec.serving.service import load_for_serving

    global _recommender
    _recommender = load_for_serving(Path(folder))
    gc.freeze()  # the model's objects never die: keep them out of the collector's walks


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
            initargs=(str(self.folder),),
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
