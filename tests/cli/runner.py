"""Running the real ``cinerec`` command in a subprocess, and the files it is run on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.synthetic import clustered_dataset

#: The checkout under test: the subprocess must import this cinerec, not an installed one.
REPO = Path(__file__).resolve().parents[2]


def cli_env(cwd: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the command: this checkout's cinerec, one thread, offline."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "PYTHONPATH": str(REPO),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "100",
        **(extra or {}),
    }


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``cinerec ARGS`` in ``cwd``; fails the test on any traceback, whatever the status."""
    result = subprocess.run(
        [sys.executable, "-m", "cinerec.cli", *args],
        cwd=cwd,
        env=cli_env(cwd, env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    for stream in (result.stderr, result.stdout):
        assert "Traceback" not in stream, f"cinerec {' '.join(args)}:\n{stream[-3000:]}"
    return result


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def refused(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The one-line error of a refused command (exit status 2) holding every fragment."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def write_inputs(folder: Path) -> Path:
    """The interactions-only CSVs (ratings with views, views alone) and broken variants."""
    inter = clustered_dataset(n_users=40).interactions.copy()
    inter["timestamp"] = inter["timestamp"].astype("int64") // 10**9
    views = inter.index % 5 == 0  # some views, whose value is left empty
    inter.loc[views, "event"] = "view"
    inter["value"] = inter["value"].astype(object)
    inter.loc[views, "value"] = None
    inter[["user_id", "item_id", "event", "value", "timestamp"]].to_csv(
        folder / "ratings.csv", index=False
    )
    inter[["user_id", "item_id", "timestamp"]].to_csv(folder / "views.csv", index=False)
    (folder / "bad_row.csv").write_text(
        "user_id,item_id,event,value,timestamp\nu1,i1,rating,4,1700000000\n"
        "u1,i2,rating,4,1700000001\nu1,i3,rating,four,1700000002\n"
    )
    (folder / "bad_time.csv").write_text(
        "user_id,item_id,timestamp\nu1,i1,1700000000\nu1,i2,yesterday\n"
    )
    (folder / "bad_column.csv").write_text("user,item_id,timestamp\nu1,i1,1700000000\n")
    (folder / "header_only.csv").write_text("user_id,item_id,timestamp\n")
    (folder / "one_each.csv").write_text(
        "user_id,item_id,timestamp\nu1,i1,1700000000\nu2,i2,1700000001\n"
    )
    (folder / "bad_items.csv").write_text("item_id,title,year\ni1,One,1999\ni2,Two,19x9\n")
    (folder / "bad_scores.csv").write_text("user_id,item_id,score\nu1,i1,0.9\nu1,i2,high\n")
    return folder
