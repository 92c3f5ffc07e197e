"""Broken input and interrupted commands: one line naming what is wrong, never a traceback.

Each bad file names the file, the row and the field; usage mistakes are click's message;
Ctrl-C ends a command with status 130.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.runner import cli_env, refused, run_cli


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("train", "--interactions", "r.csv"), "Missing option '--out'"),
        (("recommend", "--bundle", "b", "--out", "r.csv", "--k", "0"), "Invalid value for '--k'"),
        (("serve", "--port", "0"), "Invalid value for '--port'"),
        (("evaluate", "--k", "many"), "Invalid value for '--k'"),
        (("registry", "list", "--no-such-option"), "No such option"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_usage_errors_are_one_message(args: tuple[str, ...], expected: str, tmp_path: Path) -> None:
    wrong = run_cli(*args, cwd=tmp_path)
    assert wrong.returncode == 2
    assert expected in " ".join(wrong.stderr.split())


#: (arguments, fragments the one error line must hold): a missing file, a missing column,
#: a bad row (file, row and field named), data a split cannot use, and bad options.
BROKEN = [
    (
        ("data", "import", "--interactions", "missing.csv", "--out", "x"),
        ("missing.csv", "file not found"),
    ),
    (
        ("data", "import", "--interactions", "bad_column.csv", "--out", "x"),
        ("bad_column.csv", "missing required column", "user_id"),
    ),
    (
        ("data", "import", "--interactions", "bad_time.csv", "--out", "x"),
        ("bad_time.csv", "row 2", "field 'timestamp'", "'yesterday'"),
    ),
    (
        ("data", "import", "--interactions", "header_only.csv", "--out", "x"),
        ("header_only.csv", "no interactions"),
    ),
    (
        ("train", "--interactions", "bad_row.csv", "--out", "x"),
        ("bad_row.csv", "row 3", "field 'value'", "'four'"),
    ),
    (
        ("train", "--interactions", "ratings.csv", "--out", "x", "--map", "user_id"),
        ("mapping", "target=source"),
    ),
    (("evaluate", "--interactions", "bad_row.csv"), ("bad_row.csv", "row 3", "field 'value'")),
    (("evaluate", "--interactions", "missing.csv"), ("missing.csv", "file not found")),
    (
        ("evaluate", "--interactions", "ratings.csv", "--items", "bad_items.csv"),
        ("bad_items.csv", "row 2", "field 'year'", "'19x9'"),
    ),
    (
        ("evaluate", "--interactions", "one_each.csv", "--models", "pop"),
        ("leave-last:1", "test part", "empty"),
    ),
    (("evaluate", "--interactions", "ratings.csv", "--split", "sideways:3"), ("sideways:3",)),
    (
        ("evaluate", "--interactions", "ratings.csv", "--models", "pop,nope"),
        ("unknown model 'nope'",),
    ),
    (
        ("evaluate", "--interactions", "ratings.csv", "--models", "hybrid"),
        ("hybrid needs at least one other model",),
    ),
    (
        ("evaluate", "--interactions", "ratings.csv", "--pipeline", "missing.yaml"),
        ("missing.yaml",),
    ),
    (("evaluate", "--dataset", "no-such-folder"), ("no-such-folder",)),
    (("evaluate", "--dataset", "ratings.csv"), ("ratings.csv", "is a file", "--interactions")),
    (
        ("evaluate", "--predictions", "bad_scores.csv", "--truth", "ratings.csv"),
        ("bad_scores.csv", "row 2", "field 'score'", "'high'"),
    ),
    (
        ("evaluate", "--predictions", "missing.csv", "--truth", "ratings.csv"),
        ("missing.csv", "file not found"),
    ),
    (("evaluate", "--predictions", "ratings.csv"), ("--truth",)),
    (("recommend", "--bundle", "missing", "--out", "r.csv"), ("missing", "not a cinerec bundle")),
    (("recommend", "--bundle", "ratings.csv", "--out", "r.csv"), ("ratings.csv",)),
    (("similar", "--bundle", "missing", "--item", "i1"), ("missing", "not a cinerec bundle")),
    (("batch-score", "--bundle", "missing", "--out", "s.parquet"), ("missing",)),
    (("registry", "publish", "--registry", "reg", "--bundle", "missing"), ("missing",)),
    (("events", "export", "--database-url", "mysql://x/y", "--out", "e.parquet"), ("mysql://x/y",)),
]


@pytest.mark.parametrize(("args", "fragments"), BROKEN, ids=lambda v: " ".join(v)[:60])
def test_broken_input_is_one_line_naming_what_is_wrong(
    work: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    refused(run_cli(*args, cwd=work), *fragments)
    assert not (work / "x").exists()  # nothing half-written


def test_ctrl_c_ends_a_command_quietly(work: Path) -> None:
    args = ["train", "--interactions", "ratings.csv", "--models", "pop", "--out", "never"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cinerec.cli", *args],
        cwd=work,
        env=cli_env(work),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # training has started: the command is running
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, first + rest
    assert "Traceback" not in first + rest
    assert not (work / "never").exists()
