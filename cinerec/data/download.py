"""Downloading public datasets: cache folder, mirror setting, progress, checksums, unzip.

Everything that lands in the cache is written atomically: a download goes to a temporary
file that is renamed into place only after its checksum matched, and an archive is
extracted into a temporary folder first. An interrupted run therefore never leaves a
half file that a later run would trust.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Final

from cinerec.data.io import atomic_path
from cinerec.errors import CinerecError, IntegrityError

if TYPE_CHECKING:  # rich is imported only when a progress bar is shown
    from rich.progress import Progress

CACHE_ENV: Final = "CINEREC_CACHE"
MIRROR_ENV: Final = "CINEREC_DATA_MIRROR"
DEFAULT_CACHE: Final = Path("~/.cache/cinerec")
USER_AGENT: Final = "cinerec (+https://pypi.org/project/cinerec)"
CHUNK: Final = 1 << 20
_MD5_RE: Final = re.compile(r"\b([0-9a-fA-F]{32})\b")


def cache_dir(cache: str | Path | None = None) -> Path:
    """The cache folder: ``cache`` if given, else ``$CINEREC_CACHE``, else ``~/.cache/cinerec``."""
    chosen = cache or os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return Path(chosen).expanduser()


def mirror_setting(mirror: str | Path | None = None) -> str | None:
    """The local mirror: ``mirror`` if given, else ``$CINEREC_DATA_MIRROR``, else ``None``.

    A mirror is either a local folder or a base URL used in place of the publisher's.
    """
    chosen = mirror if mirror not in (None, "") else os.environ.get(MIRROR_ENV)
    return str(chosen) if chosen else None


def is_url(location: str) -> bool:
    """True for ``http://``, ``https://`` and ``file://`` locations."""
    return location.split("://", 1)[0].lower() in ("http", "https", "file")


def parse_md5(text: str) -> str | None:
    """The 32-hex digest in a ``.md5`` file (GNU ``hash  name`` or BSD ``MD5 (name) = hash``)."""
    match = _MD5_RE.search(text)
    return match.group(1).lower() if match else None


def file_md5(path: str | Path) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open(url: str, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    return urllib.request.urlopen(request, timeout=timeout)


def fetch_md5(url: str, *, timeout: float = 30.0) -> str | None:
    """The published MD5 of ``url`` read from ``url + '.md5'``; ``None`` when there is none.

    A missing checksum file (404 or any other failure) is not an error: the caller then
    relies on structure checks alone.
    """
    try:
        with _open(url + ".md5", timeout) as response:
            return parse_md5(response.read(4096).decode("ascii", errors="replace"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def download(
    url: str,
    target: str | Path,
    *,
    expected_md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``target`` atomically, checking ``expected_md5`` when given.

    Shows a progress bar on stderr when ``progress`` is true. On a checksum mismatch raises
    :class:`IntegrityError` and leaves nothing at ``target``; network failures raise
    :class:`CinerecError` with a hint about the mirror setting.
    """
    target = Path(target)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with atomic_path(target) as tmp, _open(url, timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, _progress(progress, target.name, total) as advance:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    advance(len(chunk))
            if expected_md5 and digest.hexdigest() != expected_md5.lower():
                raise IntegrityError(
                    f"{url}: MD5 {digest.hexdigest()} does not match the published "
                    f"{expected_md5}; the download was corrupted, nothing was kept"
                )
    except urllib.error.HTTPError as exc:
        raise CinerecError(
            f"could not download {url}: HTTP {exc.code} {exc.reason} "
            f"(set {MIRROR_ENV} or --mirror to use a local copy)"
        ) from exc
    except urllib.error.URLError as exc:
        raise CinerecError(
            f"could not download {url}: {exc.reason} "
            f"(set {MIRROR_ENV} or --mirror to use a local copy)"
        ) from exc
    return target


class _progress:  # noqa: N801 - used like a function
    """A context giving an ``advance(n)`` callable; a rich progress bar when enabled."""

    def __init__(self, enabled: bool, label: str, total: int | None) -> None:
        self.enabled = enabled
        self.label = label
        self.total = total
        self.bar: Progress | None = None

    def __enter__(self) -> Callable[[int], object]:
        if not self.enabled:
            return lambda _n: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        bar.start()
        self.bar = bar
        task = bar.add_task(f"downloading {self.label}", total=self.total)
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def extract_zip(archive: str | Path, target: str | Path) -> Path:
    """Extract ``archive`` into the folder ``target`` atomically.

    When every member sits under one top folder (``ml-25m/...``) that folder is flattened
    away, so ``target`` directly holds the files. Members with absolute paths or ``..``
    are refused (:class:`IntegrityError`), as is a file that is not a zip archive.
    """
    archive, target = Path(archive), Path(target)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise IntegrityError(f"{archive}: not a valid zip archive ({exc})") from exc
    with zf, atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        members = [
            m for m in zf.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")
        ]
        parts = [PurePosixPath(m.filename).parts for m in members]
        for part in parts:
            if not part or part[0].startswith("/") or ".." in part or ":" in part[0]:
                raise IntegrityError(f"{archive}: unsafe member path {'/'.join(part)!r}")
        tops = {p[0] for p in parts if len(p) > 1}
        strip = 1 if len(tops) == 1 and all(len(p) > 1 for p in parts) else 0
        for member, part in zip(members, parts, strict=True):
            dest = tmp.joinpath(*part[strip:])
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
    return target
