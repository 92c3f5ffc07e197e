import hashlib
import zipfile
from pathlib import Path

import pytest

from cinerec.data.download import (
    cache_dir,
    download,
    extract_zip,
    fetch_md5,
    file_md5,
    is_url,
    mirror_setting,
    parse_md5,
)
from cinerec.errors import CinerecError, IntegrityError


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_cache_and_mirror_settings(monkeypatch, tmp_path):
    monkeypatch.delenv("CINEREC_CACHE", raising=False)
    monkeypatch.delenv("CINEREC_DATA_MIRROR", raising=False)
    assert cache_dir() == Path("~/.cache/cinerec").expanduser()
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    assert cache_dir(tmp_path / "x") == tmp_path / "x"
    assert mirror_setting() is None
    monkeypatch.setenv("CINEREC_DATA_MIRROR", "/data")
    assert mirror_setting() == "/data"
    assert mirror_setting("http://m") == "http://m"
    assert is_url("https://a/b") and is_url("file:///x") and not is_url("/srv/data")


def test_parse_md5_formats():
    digest = "6b51fb2759a8657d3bfcbfc42b592ada"
    assert parse_md5(f"MD5 (ml-25m.zip) = {digest}\n") == digest
    assert parse_md5(f"{digest.upper()}  ml-25m.zip") == digest
    assert parse_md5("nothing here") is None


def test_download_with_and_without_md5(http_folder, tmp_path):
    base, served = http_folder
    payload = b"x" * 300_000
    (served / "a.bin").write_bytes(payload)
    assert fetch_md5(f"{base}/a.bin") is None  # a 404 for the .md5 is fine
    target = download(f"{base}/a.bin", tmp_path / "cache" / "a.bin", progress=False)
    assert target.read_bytes() == payload

    digest = hashlib.md5(payload).hexdigest()
    (served / "a.bin.md5").write_text(f"MD5 (a.bin) = {digest}\n")
    assert fetch_md5(f"{base}/a.bin") == digest
    again = download(f"{base}/a.bin", tmp_path / "c2" / "a.bin", expected_md5=digest)
    assert file_md5(again) == digest


def test_wrong_md5_leaves_nothing(http_folder, tmp_path):
    base, served = http_folder
    (served / "a.bin").write_bytes(b"payload")
    cache = tmp_path / "cache"
    with pytest.raises(IntegrityError, match="MD5"):
        download(f"{base}/a.bin", cache / "a.bin", expected_md5="0" * 32, progress=False)
    assert _files(cache) == []


def test_http_error_is_a_clear_error(http_folder, tmp_path):
    base, _ = http_folder
    with pytest.raises(CinerecError, match="HTTP 404"):
        download(f"{base}/missing.zip", tmp_path / "m.zip", progress=False)
    assert _files(tmp_path) == []


def test_extract_zip_flattens_top_folder(tmp_path):
    archive = tmp_path / "r.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("release/a.csv", "a\r\n1\r\n")
        zf.writestr("release/sub/b.txt", "b")
        zf.writestr("__MACOSX/release/._a.csv", "junk")
    out = extract_zip(archive, tmp_path / "out")
    assert sorted(p.relative_to(out).as_posix() for p in _files(out)) == ["a.csv", "sub/b.txt"]


def test_extract_refuses_unsafe_and_corrupt(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../evil.txt", "x")
    with pytest.raises(IntegrityError, match="unsafe"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil.txt").exists()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(IntegrityError, match="not a valid zip"):
        extract_zip(bad, tmp_path / "out2")
