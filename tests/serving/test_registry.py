"""The model registry (local folder, file:// and fsspec memory://) and hot reloading."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest

from cinerec.errors import IntegrityError
from cinerec.models.bundle import load_bundle
from cinerec.pipeline.recommender import Request
from cinerec.serving.registry import HotReloader, ModelRegistry, RegistryError
from cinerec.training.train import train_bundle
from tests.synthetic import clustered_dataset

NPZ = "models/pop/arrays.npz"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "bundle"
    train_bundle(
        clustered_dataset(n_users=30),
        out,
        model_names=("pop", "itemknn"),
        validation_spec="leave-last:2",
        progress=False,
    )
    return out


@pytest.fixture(scope="module")
def bundles(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three bundles that differ only in their creation time (the manifest is not checksummed)."""
    base = tmp_path_factory.mktemp("variants")
    out = []
    for month in (1, 2, 3):
        folder = base / f"b{month}"
        shutil.copytree(trained, folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["created_at"] = f"2026-0{month}-01T10:15:00+00:00"
        (folder / "manifest.json").write_text(json.dumps(manifest))
        out.append(folder)
    return out


@pytest.fixture(params=["local", "memory"])
def make_registry(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], ModelRegistry]]:
    """A factory for registries on one fresh root (local folder or a unique memory:// root)."""
    if request.param == "local":
        root = str(tmp_path / "registry")
    else:
        root = f"memory://registry-{uuid.uuid4().hex}"
    yield lambda: ModelRegistry(root, cache_dir=tmp_path / "cache")
    if request.param == "memory":
        fs, path = fsspec.core.url_to_fs(root)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def flip_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def corrupt_in_registry(registry: ModelRegistry, version: str) -> None:
    fs, path = fsspec.core.url_to_fs(registry.root)
    target = f"{path}/versions/{version}/{NPZ}"
    fs.pipe_file(target, flip_byte(fs.cat_file(target)))
    shutil.rmtree(registry.cache_dir / version, ignore_errors=True)


def remove_marker(registry: ModelRegistry, version: str) -> None:
    fs, path = fsspec.core.url_to_fs(registry.root)
    fs.rm_file(f"{path}/versions/{version}/COMPLETE")


@pytest.mark.parametrize("kind", ["local", "file", "memory"])
def test_round_trip(kind: str, bundles: list[Path], tmp_path: Path) -> None:
    root = {
        "local": str(tmp_path / "reg"),
        "file": f"file://{tmp_path}/reg",
        "memory": f"memory://rt-{uuid.uuid4().hex}",
    }[kind]
    registry = ModelRegistry(root, cache_dir=tmp_path / "cache")
    assert registry.versions() == []
    assert registry.current() is None

    first = registry.publish(bundles[0])
    assert registry.publish(bundles[1], version="v2") == "v2"
    assert re.fullmatch(r"20260101T101500-[0-9a-f]{8}", first)
    assert [v.version for v in registry.versions()] == ["v2", first]  # newest first

    info = registry.versions()[1]
    manifest = json.loads((bundles[0] / "manifest.json").read_text())
    assert info.created_at == "2026-01-01T10:15:00+00:00"
    assert info.metrics == manifest["pipeline"]["validation_ndcg@10"]
    assert info.metrics and all(isinstance(x, float) for x in info.metrics.values())
    assert info.data_fingerprint == manifest["dataset"]["fingerprint"]
    assert info.config_hash == manifest["pipeline"]["config_hash"]
    assert info.files == len(manifest["files"])
    assert info.published_at

    registry.promote(first)
    assert registry.current() == first
    registry.promote("v2")
    assert registry.current() == "v2"
    # a second registry object on the same root sees the same state
    assert ModelRegistry(root, cache_dir=tmp_path / "cache2").current() == "v2"

    folder = registry.fetch("v2")
    assert load_bundle(folder).manifest["created_at"] == "2026-02-01T10:15:00+00:00"
    if kind == "memory":
        assert folder == tmp_path / "cache" / "v2"
        assert registry.fetch("v2") == folder  # re-used
        # a corrupt cached copy is deleted and downloaded again
        npz = folder / NPZ
        npz.write_bytes(flip_byte(npz.read_bytes()))
        assert registry.fetch("v2") == folder
        load_bundle(folder)
    else:
        assert folder == tmp_path / "reg" / "versions" / "v2"

    with pytest.raises(RegistryError, match="already exists"):
        registry.publish(bundles[1], version="v2")
    with pytest.raises(RegistryError):
        registry.promote("nope")
    with pytest.raises(RegistryError, match="invalid version"):
        registry.publish(bundles[2], version="../escape")


def test_corrupt_bundle_is_refused(make_registry, bundles: list[Path], tmp_path: Path) -> None:
    registry = make_registry()
    bad = tmp_path / "bad"
    shutil.copytree(bundles[0], bad)
    (bad / NPZ).write_bytes(flip_byte((bad / NPZ).read_bytes()))
    with pytest.raises(IntegrityError, match="checksum"):
        registry.publish(bad, version="bad")
    assert registry.versions() == []


def test_incomplete_version_is_ignored(make_registry, bundles: list[Path]) -> None:
    registry = make_registry()
    registry.publish(bundles[0], version="v1")
    registry.publish(bundles[1], version="v2")
    remove_marker(registry, "v2")
    assert [v.version for v in registry.versions()] == ["v1"]
    with pytest.raises(RegistryError, match="no complete version"):
        registry.promote("v2")
    with pytest.raises(RegistryError):
        registry.fetch("v2")
    assert registry.current() is None
    # publishing again over an incomplete leftover is allowed
    assert registry.publish(bundles[1], version="v2") == "v2"
    registry.promote("v2")
    assert registry.current() == "v2"


def test_promote_is_atomic(make_registry, bundles: list[Path]) -> None:
    registry = make_registry()
    names = {registry.publish(bundles[0], version="v1"), registry.publish(bundles[1], version="v2")}
    registry.promote("v1")
    reader = make_registry()  # a separate client, as another process would be
    seen: set[str | None] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                seen.add(reader.current())
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        for i in range(50):
            registry.promote("v2" if i % 2 == 0 else "v1")
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert seen <= names and seen
    assert len(registry.history()) == 51


def test_rollback(make_registry, bundles: list[Path]) -> None:
    registry = make_registry()
    for i, folder in enumerate(bundles, start=1):
        registry.publish(folder, version=f"v{i}")
    with pytest.raises(RegistryError, match="roll back"):
        registry.rollback()
    for name in ("v1", "v2", "v3"):
        registry.promote(name)
    assert registry.rollback() == "v2"
    assert registry.current() == "v2"
    assert registry.rollback() == "v1"
    assert registry.current() == "v1"
    with pytest.raises(RegistryError, match="roll back"):
        registry.rollback()
    history = registry.history()
    assert [h["version"] for h in history] == ["v1", "v2", "v3", "v2", "v1"]
    assert [h["previous"] for h in history] == [None, "v1", "v2", "v3", "v2"]
    assert [h["action"] for h in history][-2:] == ["rollback", "rollback"]
    assert all(h["promoted_at"] for h in history)


def test_hot_reload(make_registry, bundles: list[Path]) -> None:
    registry = make_registry()
    registry.publish(bundles[0], version="v1")
    registry.publish(bundles[1], version="v2")
    reloader = HotReloader(registry, poll_s=3600)
    with pytest.raises(RegistryError, match="promoted"):
        reloader.start()
    registry.promote("v1")
    reloader.start()
    try:
        old = reloader.value
        assert reloader.version == "v1"
        assert len(old.recommend(Request(user_id="u1", k=5)).item_ids) == 5
        assert reloader.check() is False  # nothing changed

        registry.promote("v2")
        assert reloader.check() is True
        assert reloader.version == "v2"
        assert reloader.value is not old
        assert reloader.value.model_version != old.model_version
        assert len(reloader.value.recommend(Request(user_id="u1", k=5)).item_ids) == 5
        assert (reloader.reloads, reloader.failures) == (1, 0)
    finally:
        reloader.stop()


def test_corrupt_version_keeps_old_serving(make_registry, bundles: list[Path]) -> None:
    registry = make_registry()
    registry.publish(bundles[0], version="v1")
    registry.publish(bundles[1], version="v2")
    registry.promote("v1")
    reloader = HotReloader(registry, poll_s=3600)
    reloader.start()
    try:
        old = reloader.value
        registry.promote("v2")
        corrupt_in_registry(registry, "v2")
        assert reloader.check() is False
        assert reloader.version == "v1"
        assert reloader.value is old
        assert len(reloader.value.recommend(Request(user_id="u1", k=5)).item_ids) == 5
        assert reloader.last_error is not None and "checksum" in reloader.last_error
        assert reloader.failures == 1
        assert reloader.check() is False  # refused versions are not retried
        assert reloader.failures == 1
        with pytest.raises(IntegrityError, match="checksum"):
            registry.fetch("v2")
        if not registry.local:
            assert not (registry.cache_dir / "v2").exists()  # no corrupt copy left behind
        with pytest.raises(IntegrityError):
            registry.promote("v2")
        registry.rollback()
        assert registry.current() == "v1"
    finally:
        reloader.stop()


def test_zero_failed_requests_during_reload(make_registry, bundles: list[Path]) -> None:
    registry = make_registry()
    registry.publish(bundles[0], version="v1")
    registry.publish(bundles[1], version="v2")
    registry.promote("v1")
    reloader = HotReloader(registry, poll_s=3600)
    reloader.start()
    errors: list[BaseException] = []
    served: list[str] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                result = reloader.value.recommend(Request(user_id="u1", k=5))
                assert len(result.item_ids) == 5
                served.append(result.model_version)
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        for i in range(6):
            registry.promote("v2" if i % 2 == 0 else "v1")
            assert reloader.check() is True
            time.sleep(0.02)
    finally:
        done.set()
        thread.join()
        reloader.stop()
    assert errors == []
    assert len(set(served)) == 2  # both versions answered requests
    assert reloader.reloads == 6 and reloader.failures == 0


def test_background_polling(make_registry, bundles: list[Path]) -> None:
    registry = make_registry()
    registry.publish(bundles[0], version="v1")
    registry.publish(bundles[1], version="v2")
    registry.promote("v1")
    with HotReloader(registry, poll_s=0.05) as reloader:
        registry.promote("v2")
        deadline = time.monotonic() + 10
        while reloader.version != "v2" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reloader.version == "v2"


def test_registry_cli_publish_promote_list_rollback(bundles: list[Path], tmp_path: Path) -> None:
    import subprocess
    import sys

    root = str(tmp_path / "cli-registry")

    def cli(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "cinerec.cli", "registry", *args, "--registry", root, "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    first, second = str(bundles[0]), str(bundles[1])
    assert cli("publish", "--bundle", first, "--version", "a", "--promote")["current"] == "a"
    assert cli("publish", "--bundle", second, "--version", "b")["current"] == "a"
    assert cli("promote", "--version", "b")["current"] == "b"
    listed = cli("list")
    assert listed["current"] == "b" and {v["version"] for v in listed["versions"]} == {"a", "b"}
    assert cli("rollback")["current"] == "a"
