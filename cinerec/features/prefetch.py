"""Encoding a catalog's texts in a background process while the trainer does other work.

Why: on a two-core machine the trainer's first searches (popularity, item-kNN, EASE, ALS)
run on one core — BLAS is pinned to one thread — while the sentence embeddings the
content model needs were computed only when its search began, on both cores, with
nothing else to do. :class:`EmbeddingPrefetch` encodes the texts into the on-disk
embedding cache (:class:`~cinerec.features.text.EmbeddingCache`, safe for a concurrent
reader and writer) in a separate process with one torch thread from the start; when the
trainer reaches the content model it calls :meth:`EmbeddingPrefetch.wait`, which tells the
process to take every core for what is left, and the content model then finds every text
in the cache. If the process fails, the content model simply encodes what is missing
itself: the prefetch can make training faster, never different.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from cinerec.data.download import cache_dir

__all__ = ["EmbeddingPrefetch", "PrefetchResult"]


@dataclass(frozen=True)
class PrefetchResult:
    """What a prefetch did: ``ok`` when every text is in the cache.

    ``started`` / ``finished`` are wall-clock epochs (seconds) of the encoding in the
    background process; ``waited`` the seconds :meth:`EmbeddingPrefetch.wait` blocked;
    ``encoded`` the texts the model actually encoded (the rest were cached already).
    """

    ok: bool
    texts: int
    encoded: int
    started: float
    finished: float
    waited: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "texts": self.texts,
            "encoded": self.encoded,
            "seconds": round(self.finished - self.started, 3),
            "waited": round(self.waited, 3),
            "error": self.error,
        }


class EmbeddingPrefetch:
    """A background process encoding ``texts`` into the embedding cache.

    ``model_path``, ``cache`` and ``precision`` are those of
    :class:`~cinerec.features.text.SentenceEncoder` (the cache must be the one the
    content model reads). ``threads`` torch threads are used until :meth:`wait` is
    called, then all of torch's default (the machine's cores). Use as a context manager
    or call :meth:`stop`, so that an exception in the trainer does not leave it running.
    """

    def __init__(
        self,
        texts: Sequence[str],
        *,
        model_path: str | None = None,
        cache: str | Path | None = None,
        precision: str | None = None,
        threads: int = 1,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.texts = list(texts)
        self.model_path = model_path
        self.cache = str(cache_dir(cache))
        self.precision = precision
        self.threads = threads
        self._context = mp.get_context("spawn")  # never fork a process holding BLAS threads
        self._hurry: Event = self._context.Event()
        self._receiver: Connection | None = None
        self._process: mp.process.BaseProcess | None = None
        self._result: PrefetchResult | None = None
        self.started = 0.0

    def start(self) -> EmbeddingPrefetch:
        """Start the process (once); returns self."""
        if self._process is not None:
            raise RuntimeError("this prefetch was already started")
        receiver, sender = self._context.Pipe(duplex=False)
        self._receiver = receiver
        self._process = self._context.Process(
            target=_encode_in_background,
            args=(self.texts, self.model_path, self.cache, self.precision, self.threads),
            kwargs={"hurry": self._hurry, "sender": sender},
            name="cinerec-embedding-prefetch",
            daemon=True,
        )
        self.started = time.time()
        self._process.start()
        sender.close()  # the child holds the only sending end: EOF if it dies
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def wait(self, timeout: float | None = None) -> PrefetchResult:
        """Let the process use every core, wait for it (at most ``timeout`` seconds, then
        stop it) and return what it did."""
        if self._result is not None:
            return self._result
        if self._process is None or self._receiver is None:
            raise RuntimeError("start the prefetch before waiting for it")
        began = time.time()
        self._hurry.set()
        message: dict[str, Any] = {}
        if self._receiver.poll(timeout):
            try:
                message = self._receiver.recv()
            except EOFError:  # the process died without a word
                message = {}
        self._process.join(5.0 if message else 0.0)
        waited = time.time() - began
        if not message:
            reason = "timed out" if self._process.is_alive() else "died"
            self.stop()
            message = {"error": f"background encoding {reason} (exit {self._process.exitcode})"}
        self.stop()
        self._result = PrefetchResult(
            ok=bool(message.get("ok")),
            texts=len(self.texts),
            encoded=int(message.get("encoded", 0)),
            started=float(message.get("started", self.started)),
            finished=float(message.get("finished", time.time())),
            waited=waited,
            error=message.get("error"),
        )
        return self._result

    def stop(self) -> None:
        """End the process if it still runs (its finished shards stay in the cache)."""
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(5.0)
            if self._process.is_alive():  # pragma: no cover - ignores SIGTERM
                self._process.kill()
                self._process.join()
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None

    def __enter__(self) -> EmbeddingPrefetch:
        return self if self._process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _encode_in_background(
    texts: list[str],
    model_path: str | None,
    cache: str,
    precision: str | None,
    threads: int,
    *,
    hurry: Event,
    sender: Connection,
) -> None:
    """The process body: encode with ``threads`` torch threads, all of them once hurried."""
    started = time.time()
    try:
        import torch

        from cinerec.features.text import SentenceEncoder

        every_core = torch.get_num_threads()
        torch.set_num_threads(min(threads, every_core))

        def before_batch() -> None:
            if hurry.is_set() and torch.get_num_threads() < every_core:
                torch.set_num_threads(every_core)

        encoder = SentenceEncoder(
            model_path, cache=cache, precision=precision, progress=False,
            before_batch=before_batch,
        )  # fmt: skip
        encoder.encode(texts)
        sender.send(
            {"ok": True, "encoded": encoder.encoded, "started": started, "finished": time.time()}
        )
    except Exception as exc:  # reported to the parent, which encodes what is missing
        sender.send(
            {"ok": False, "error": f"{type(exc).__name__}: {exc}", "started": started,
             "finished": time.time()}
        )  # fmt: skip
    finally:
        sender.close()
