"""StaticHolder: serves one bundle folder, swaps in a rewritten bundle, refuses a broken one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cinerec.pipeline.types import Request
from cinerec.serving.holders import StaticHolder


def redate(folder: Path, created_at: str) -> None:
    """Make ``folder`` another version of the same bundle (creation time is in the id)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["created_at"] = created_at  # not checksummed: still a valid bundle
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_rewritten_bundle_is_swapped_in_and_a_broken_one_refused(
    bundle_folder: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(bundle_folder, folder)
    holder = StaticHolder(folder)
    first = holder.value
    assert holder.version == first.model_version
    assert holder.check() is False and holder.value is first  # the same version: kept
    assert holder.last_error is None

    redate(folder, "2030-01-01T00:00:00+00:00")
    assert holder.check() is True
    second = holder.value
    assert second is not first and holder.version == second.model_version != first.model_version
    assert first.recommend(Request(user_id="u1", k=3)).item_ids  # the old one still answers

    manifest = json.loads((folder / "manifest.json").read_text())
    damaged = folder / next(iter(manifest["files"]))
    damaged.write_bytes(damaged.read_bytes() + b"corrupt")
    redate(folder, "2031-01-01T00:00:00+00:00")
    assert holder.check() is False
    assert holder.value is second  # the broken bundle never serves
    assert holder.last_error and "checksum" in holder.last_error.lower()
