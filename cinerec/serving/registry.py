"""A model registry of versioned bundles, atomic promotion and hot reloading for serving.

Layout under the registry root (a local folder or any fsspec URL, e.g. ``s3://bucket/x``)::

    versions/<version>/      a bundle (manifest.json + its files) and a COMPLETE marker
    CURRENT                  the promoted version's name (replaced atomically)
    history.jsonl            promotions, one JSON object a line (append-only)

The COMPLETE marker is written after every other file of a version, so a half-uploaded
version is never listed, promoted or loaded. Every version is checked against its manifest's
checksums before it is promoted or served, so a corrupt bundle is refused rather than served.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem

from cinerec.data.io import atomic_path, write_text
from cinerec.errors import CinerecError, IntegrityError
from cinerec.models.bundle import load_bundle
from cinerec.pipeline.persist import load_recommender

log = logging.getLogger(__name__)

T = TypeVar("T")

MARKER = "COMPLETE"
CURRENT = "CURRENT"
HISTORY = "history.jsonl"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


class RegistryError(CinerecError):
    """A registry operation was refused: unknown or incomplete version, overwrite, no rollback."""


@dataclass
class VersionInfo:
    """One complete version as listed by :meth:`ModelRegistry.versions`."""

    version: str
    created_at: str
    metrics: dict[str, Any]
    data_fingerprint: str | None
    config_hash: str | None
    files: int
    published_at: str | None = None


class ModelRegistry:
    """Versions under ``<root>/versions/<version>/`` (a bundle each), the promoted one named
    in ``<root>/CURRENT``.

    Training publishes bundles here, an operator (or CI) promotes one, and every serving
    process follows CURRENT with a :class:`HotReloader`; remote versions are downloaded to
    ``cache_dir`` and verified before use.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        cache_dir: str | Path | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.root = str(root)
        self._fs, path = fsspec.core.url_to_fs(self.root, **(storage_options or {}))
        self._path = path.rstrip("/") or "/"
        self.local = isinstance(self._fs, LocalFileSystem)
        if cache_dir is None:
            digest = hashlib.sha256(self.root.encode()).hexdigest()[:16]
            cache_dir = Path.home() / ".cache" / "cinerec" / "registry" / digest
        self.cache_dir = Path(cache_dir)
        self._lock = threading.RLock()

    def publish(self, bundle_folder: str | Path, version: str | None = None) -> str:
        """Verify a bundle, upload it as a new version and return the version's name.

        The default name is the manifest's creation time plus a short hash of its checksums
        (``20261128T101500-1a2b3c4d``). A corrupt bundle raises IntegrityError; an existing
        complete version is never overwritten (RegistryError); a leftover incomplete one is.
        """
        folder = Path(bundle_folder)
        manifest = load_bundle(folder).manifest
        version = _check_name(version or default_version(manifest))
        with self._lock:
            if self._is_complete(version):
                raise RegistryError(f"{self.root}: version {version} already exists")
            base = self._p("versions", version)
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm(base, recursive=True)  # an incomplete leftover
            for relative in [*manifest["files"], "manifest.json"]:
                target = f"{base}/{relative}"
                self._fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                self._fs.put_file(str(folder / relative), target)
            marker = {"version": version, "published_at": _now(), "files": len(manifest["files"])}
            self._write_small(f"{base}/{MARKER}", json.dumps(marker))  # last: now complete
        log.info("published %s to %s", version, self.root)
        return version

    def versions(self) -> list[VersionInfo]:
        """Complete versions, newest (manifest creation time, then publish time) first."""
        folder = self._p("versions")
        with contextlib.suppress(Exception):
            self._fs.invalidate_cache(folder)
        try:
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self._fs.ls(folder, detail=False)]
        except FileNotFoundError:
            return []
        infos = [i for n in names if _VERSION_RE.match(n) and (i := self._info(n)) is not None]
        infos.sort(key=lambda i: (i.created_at, i.published_at or "", i.version), reverse=True)
        return infos

    def current(self) -> str | None:
        """The promoted version's name, or None when nothing has been promoted."""
        return (self._read_text(self._p(CURRENT)) or "").strip() or None

    def promote(self, version: str) -> None:
        """Make ``version`` CURRENT after checking it is complete and verifies.

        CURRENT is replaced atomically (a reader sees the old or the new name, never a
        partial one) and the promotion is appended to the history.
        """
        self._promote(version, "promote")

    def rollback(self) -> str:
        """Promote the version that was live before the current one; return its name.

        The history is replayed as a stack (a promotion pushes, a rollback pops), so
        repeated rollbacks walk further back rather than toggling between two versions.
        """
        with self._lock:
            stack = _replay(self.history())
            if len(stack) < 2:
                raise RegistryError(f"{self.root}: no earlier version to roll back to")
            self._promote(stack[-2], "rollback")
            return stack[-2]

    def history(self) -> list[dict[str, Any]]:
        """Promotions, oldest first: version, promoted_at, previous, action."""
        text = self._read_text(self._p(HISTORY)) or ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def fetch(self, version: str) -> Path:
        """A verified local folder holding ``version`` (IntegrityError if it fails its checks).

        For a local root that is the version's own folder; for a remote one a copy under
        ``cache_dir`` (downloaded atomically, re-used while it matches the registry's
        manifest and verifies; a corrupt cached copy is deleted and downloaded once more).
        """
        version = _check_name(version)
        if not self._is_complete(version):
            raise RegistryError(f"{self.root}: no complete version {version}")
        if self.local:
            folder = Path(self._p("versions", version))
            load_bundle(folder)
            return folder
        with self._lock:
            target = self.cache_dir / version
            remote_manifest = self._fs.cat_file(self._p("versions", version, "manifest.json"))
            if target.is_dir():
                try:
                    if (target / "manifest.json").read_bytes() == remote_manifest:
                        load_bundle(target)
                        return target
                except (OSError, IntegrityError) as exc:
                    log.warning("cached %s is unusable (%s); downloading again", version, exc)
                shutil.rmtree(target, ignore_errors=True)
            self._download(version, remote_manifest, target)
            try:
                load_bundle(target)
            except IntegrityError:
                shutil.rmtree(target, ignore_errors=True)
                raise
            return target

    def _promote(self, version: str, action: str) -> None:
        version = _check_name(version)
        with self._lock:
            self.fetch(version)  # complete and verifies, else raises
            previous = self.current()
            self._write_small(self._p(CURRENT), version + "\n")
            entry = {"version": version, "promoted_at": _now(), "previous": previous}
            self._append_history(json.dumps({**entry, "action": action}))
        log.info("%s %s (was %s) in %s", action, version, previous, self.root)

    def _download(self, version: str, manifest_bytes: bytes, target: Path) -> None:
        try:
            manifest = json.loads(manifest_bytes)
            files = list(manifest["files"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{self.root}: {version} has an unreadable manifest") from exc
        base = self._p("versions", version)
        with atomic_path(target) as tmp:
            tmp.mkdir(parents=True)
            for relative in files:
                local = tmp / relative
                local.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self._fs.get_file(f"{base}/{relative}", str(local))
                except FileNotFoundError as exc:
                    raise IntegrityError(f"{base}: missing file {relative}") from exc
            (tmp / "manifest.json").write_bytes(manifest_bytes)

    def _info(self, version: str) -> VersionInfo | None:
        marker_text = self._read_text(self._p("versions", version, MARKER))
        if marker_text is None:
            return None
        manifest_text = self._read_text(self._p("versions", version, "manifest.json"))
        try:
            manifest = json.loads(manifest_text or "")
            marker = json.loads(marker_text) if marker_text.strip() else {}
        except ValueError:
            log.warning("%s: version %s has an unreadable manifest", self.root, version)
            return None
        pipeline = manifest.get("pipeline") or {}
        metric = (manifest.get("validation") or {}).get("metric", "ndcg@10")
        metrics = pipeline.get(f"validation_{metric}", pipeline.get("validation_ndcg@10"))
        return VersionInfo(
            version=version,
            created_at=str(manifest.get("created_at", "")),
            metrics=dict(metrics) if isinstance(metrics, dict) else {},
            data_fingerprint=(manifest.get("dataset") or {}).get("fingerprint"),
            config_hash=pipeline.get("config_hash"),
            files=len(manifest.get("files", {})),
            published_at=marker.get("published_at") if isinstance(marker, dict) else None,
        )

    def _is_complete(self, version: str) -> bool:
        return self._read_text(self._p("versions", version, MARKER)) is not None

    def _p(self, *parts: str) -> str:
        return "/".join([self._path.rstrip("/"), *parts])

    def _read_text(self, path: str) -> str | None:
        try:
            return self._fs.cat_file(path).decode("utf-8")
        except FileNotFoundError:
            return None

    def _write_small(self, path: str, text: str) -> None:
        """Replace a small file atomically: temp + os.replace locally, one put remotely."""
        if self.local:
            write_text(text, path)
        else:
            self._fs.pipe_file(path, text.encode("utf-8"))

    def _append_history(self, line: str) -> None:
        path = self._p(HISTORY)
        if self.local:
            with open(path, "a", encoding="utf-8") as handle:  # O_APPEND: one write per line
                handle.write(line + "\n")
        else:  # object stores cannot append: rewrite the (small) object
            self._fs.pipe_file(path, ((self._read_text(path) or "") + line + "\n").encode())


class HotReloader(Generic[T]):
    """Keeps the serving object (a Recommender by default) in sync with the registry's CURRENT.

    A reload happens off the request path: the new version is fetched, verified and loaded
    completely, then swapped in with one attribute assignment, so a request handler that
    grabs :attr:`value` once per request never sees a half-loaded model. A version that fails
    to fetch or load is refused and the old one keeps serving.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        loader: Callable[[Path], T] = load_recommender,  # type: ignore[assignment]  # mypy can't default a T-typed argument; omitted, T is Recommender
        *,
        poll_s: float = 5.0,
    ) -> None:
        self.registry = registry
        self.loader = loader
        self.poll_s = poll_s
        self.last_error: str | None = None
        self.reloads = 0
        self.failures = 0
        self._state: tuple[str, T] | None = None  # (version, value), swapped as one
        self._refused: str | None = None  # a version that failed its integrity check
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Load CURRENT now (raise if nothing is promoted or it fails), then poll in a thread."""
        version = self.registry.current()
        if version is None:
            raise RegistryError(f"{self.registry.root}: no version has been promoted")
        value = self.loader(self.registry.fetch(version))
        self._state = (version, value)
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="cinerec-hot-reload", daemon=True)
        self._thread.start()

    def check(self) -> bool:
        """One poll: load and swap in a changed CURRENT; True when a new version went live.

        Any failure keeps the old version serving and is recorded in ``last_error`` and
        ``failures``. A version refused for a failed integrity check is not retried until
        CURRENT changes again.
        """
        with self._lock:
            try:
                version = self.registry.current()
                if version is None or version == self.version or version == self._refused:
                    return False
                value = self.loader(self.registry.fetch(version))
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, IntegrityError):
                    self._refused = version
                log.error("hot reload of %s failed, keeping %s: %s", version, self.version, exc)
                return False
            self._state = (version, value)
            self._refused = None
            self.reloads += 1
            log.info("hot reload: now serving %s", version)
            return True

    @property
    def value(self) -> T:
        """The live object: grab it once per request."""
        return self._live()[1]

    @property
    def version(self) -> str:
        """The live version's name."""
        return self._live()[0]

    def stop(self) -> None:
        """Stop polling (the live value stays usable)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(self.poll_s, 1.0) + 5.0)
            self._thread = None

    def __enter__(self) -> HotReloader[T]:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _live(self) -> tuple[str, T]:
        state = self._state
        if state is None:
            raise RegistryError("HotReloader has not been started")
        return state

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check()


def default_version(manifest: dict[str, Any]) -> str:
    """``<created_at compact>-<8 hex of the checksums>``, e.g. ``20261128T101500-1a2b3c4d``."""
    stamp = re.sub(r"[^0-9T]", "", str(manifest.get("created_at", "")))[:15] or "unknown"
    files = json.dumps(manifest.get("files", {}), sort_keys=True).encode()
    return f"{stamp}-{hashlib.sha256(files).hexdigest()[:8]}"


def _replay(history: list[dict[str, Any]]) -> list[str]:
    stack: list[str] = []
    for entry in history:
        if entry.get("action") == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != entry["version"]:
                stack.append(entry["version"])
        elif not stack or stack[-1] != entry["version"]:
            stack.append(entry["version"])
    return stack


def _check_name(version: str) -> str:
    if not _VERSION_RE.match(version):
        raise RegistryError(f"invalid version name {version!r} (letters, digits, . _ + -)")
    return version


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
