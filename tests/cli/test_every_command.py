"""Every ``cinerec`` command as a real subprocess, on interactions alone.

The commands are read from the typer app, so a new one is covered at once: its ``--help``
runs in :func:`test_help_of_every_command`, and
:func:`test_every_command_has_a_scenario` fails until :data:`SCENARIOS` names a test that
runs it for real. Every run asserts its exit status and that no traceback reached the
terminal (:func:`~tests.cli.runner.run_cli`); broken input is in ``test_bad_input.py``.

The data is what an operator may bring first: one CSV of ``user_id, item_id, event,
value, timestamp`` with no catalog at all (no titles, no genres).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest

from cinerec.evaluation.evaluator import NO_GENRES
from tests.cli.runner import cli_env, ok, refused, run_cli
from tests.services import drop_prefix, free_port, redis_or_skip


def command_paths() -> list[tuple[str, ...]]:
    """Every leaf command of the ``cinerec`` app, e.g. ``("registry", "promote")``."""
    from typer.main import get_command

    from cinerec.cli.app import app

    def walk(command: object, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        children = getattr(command, "commands", None)
        if children is None:
            return [path]
        return [p for name, sub in children.items() for p in walk(sub, (*path, name))]

    return sorted(walk(get_command(app), ()))


#: The test that runs each command for real (beyond --help).
SCENARIOS = {
    ("batch-score",): "test_batch_score_writes_scores_and_similar_items",
    ("data", "fetch"): "test_data_fetch_errors_are_one_line",
    ("data", "import"): "test_evaluate_a_saved_import_with_the_hybrid",
    # The demo downloads, trains and serves the demo data (minutes): its --help runs here.
    ("demo",): "test_help_of_every_command",
    ("evaluate",): "test_evaluate_interactions_alone_says_diversity_is_skipped",
    ("events", "export"): "test_serve_answers_takes_feedback_and_stops",
    ("recommend",): "test_recommend_similar_and_score_the_lists",
    ("registry", "list"): "test_registry_publish_promote_list_rollback",
    ("registry", "promote"): "test_registry_publish_promote_list_rollback",
    ("registry", "publish"): "test_registry_publish_promote_list_rollback",
    ("registry", "rollback"): "test_registry_publish_promote_list_rollback",
    ("serve",): "test_serve_answers_takes_feedback_and_stops",
    ("similar",): "test_recommend_similar_and_score_the_lists",
    ("stream", "consume"): "test_stream_consume_reads_one_batch",
    ("train",): "test_train_on_interactions_alone",
}


@pytest.fixture(scope="module")
def trained(work: Path) -> dict:
    """``cinerec train`` with its default models on the interactions alone."""
    result = ok(
        run_cli("train", "--interactions", "ratings.csv", "--out", "bundle", "--json", cwd=work)
    )
    return {"document": json.loads(result.stdout), "stderr": result.stderr, "bundle": "bundle"}


def test_every_command_has_a_scenario() -> None:
    assert set(command_paths()) == set(SCENARIOS), "add the new command to SCENARIOS"
    for name in set(SCENARIOS.values()):
        assert callable(globals().get(name)), f"{name} is not a test of this module"


@pytest.mark.parametrize("path", [(), *command_paths()], ids=lambda p: " ".join(p) or "cinerec")
def test_help_of_every_command(path: tuple[str, ...], tmp_path: Path) -> None:
    helped = ok(run_cli(*path, "--help", cwd=tmp_path))
    assert "Usage:" in helped.stdout


@pytest.mark.slow  # tunes five models and the hybrid's rankers
def test_train_on_interactions_alone(trained: dict) -> None:
    document = trained["document"]
    assert set(document["validation"]) == {"pop", "trending", "itemknn", "ease", "als"}
    assert document["default_model"] in document["validation"]
    # content is a default model but has nothing to learn from ids: left out, in one line
    notes = [line for line in trained["stderr"].splitlines() if line.startswith("note: ")]
    assert notes == ["note: left out content: the catalog has item ids only (no titles, genres)"]


def test_evaluate_interactions_alone_says_diversity_is_skipped(work: Path) -> None:
    # the command of issue 13, which ended in KeyError: 'genres'
    result = ok(
        run_cli(
            "evaluate",
            "--interactions",
            "ratings.csv",
            "--split",
            "leave-last:1",
            "--models",
            "pop",
            "--report",
            "rep",
            cwd=work,
        )
    )
    assert result.stdout.splitlines().count(NO_GENRES) == 1
    report = json.loads((work / "rep" / "ratings-leave-last-1" / "results.json").read_text())
    assert report["context"]["skipped"] == NO_GENRES
    metrics = report["results"][0]["metrics"]
    assert metrics["ndcg@10"] is not None and metrics["novelty@10"] is not None
    assert not [key for key in metrics if key.startswith("diversity")]
    markdown = (work / "rep" / "ratings-leave-last-1" / "results.md").read_text()
    assert f"- **skipped**: {NO_GENRES}" in markdown

    content = run_cli(
        "evaluate",
        "--interactions",
        "ratings.csv",
        "--models",
        "pop,content",
        "--report",
        "rep",
        cwd=work,
    )
    refused(content, "content: no item of the catalog has a title, genres")


@pytest.mark.slow  # tunes two models and trains the hybrid's rankers, on two splits
def test_evaluate_a_saved_import_with_the_hybrid(work: Path) -> None:
    imported = ok(
        run_cli(
            "data", "import", "--interactions", "views.csv", "--out", "views-ds", "--json", cwd=work
        )
    )
    summary = json.loads(imported.stdout)
    assert summary["interactions"] == 480 and summary["items"] == 40 and summary["series"] == 0
    result = ok(
        run_cli(
            "evaluate",
            "--dataset",
            "views-ds",
            "--split",
            "leave-last:1",
            "--split",
            "random:0.25",
            "--models",
            "pop,itemknn,hybrid",
            "--report",
            "rep-ds",
            "--json",
            cwd=work,
        )
    )
    document = json.loads(result.stdout)
    assert set(document) == {"leave-last:1", "random:0.25"}
    for run in document.values():
        assert [r["model"] for r in run["results"]] == ["pop", "itemknn", "hybrid"]
        assert run["context"]["skipped"] == NO_GENRES
        hybrid = run["results"][-1]
        assert hybrid["metrics"]["ndcg@10"] is not None
        assert not [key for key in hybrid["metrics"] if key.startswith("diversity")]


def test_data_fetch_errors_are_one_line(tmp_path: Path) -> None:
    refused(run_cli("data", "fetch", "nope", "--out", "x", cwd=tmp_path), "unknown dataset 'nope'")
    (tmp_path / "mirror").mkdir()
    fetched = run_cli("data", "fetch", "ml-100k", "--out", "x", "--mirror", "mirror", cwd=tmp_path)
    refused(fetched, "mirror", "ml-100k")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow  # needs the trained bundle
def test_recommend_similar_and_score_the_lists(work: Path, trained: dict) -> None:
    bundle = trained["bundle"]
    (work / "some_users.txt").write_text("u1\nu2\nnobody\n")
    summary = json.loads(
        ok(
            run_cli(
                "recommend",
                "--bundle",
                bundle,
                "--users",
                "some_users.txt",
                "--k",
                "5",
                "--out",
                "recs.csv",
                "--json",
                cwd=work,
            )
        ).stdout
    )
    assert summary["model"].startswith("hybrid") and summary["users"] == 3
    recs = pd.read_csv(work / "recs.csv", dtype={"user_id": str, "item_id": str})
    assert recs.groupby("user_id")["rank"].apply(list).tolist() == [[1, 2, 3, 4, 5]] * 3
    single = ok(
        run_cli(
            "recommend",
            "--bundle",
            bundle,
            "--model",
            "pop",
            "--out",
            "pop.csv",
            "--json",
            cwd=work,
        )
    )
    assert json.loads(single.stdout)["users"] == 40

    similar = ok(
        run_cli("similar", "--bundle", bundle, "--item", "i1", "--k", "3", "--json", cwd=work)
    )
    rows = json.loads(similar.stdout)
    assert [r["rank"] for r in rows] == [1, 2, 3] and all(r["title"] is None for r in rows)
    table = ok(run_cli("similar", "--bundle", bundle, "--item", "i1", "--k", "3", cwd=work))
    assert "nan" not in table.stdout  # no title in the catalog: a blank cell
    refused(run_cli("similar", "--bundle", bundle, "--item", "zz", cwd=work), "zz")
    missing = run_cli(
        "recommend", "--bundle", bundle, "--users", "nobody.txt", "--out", "r.csv", cwd=work
    )
    refused(missing, "nobody.txt", "file not found")
    refused(
        run_cli("similar", "--bundle", bundle, "--item", "i1", "--model", "content", cwd=work),
        "no model 'content'",
    )

    scored = ok(
        run_cli(
            "evaluate",
            "--predictions",
            "recs.csv",
            "--truth",
            "ratings.csv",
            "--report",
            "ext",
            "--json",
            cwd=work,
        )
    )
    assert json.loads(scored.stdout)["results"][0]["n_users"] == 40


@pytest.mark.slow  # needs the trained bundle
def test_batch_score_writes_scores_and_similar_items(work: Path, trained: dict) -> None:
    result = ok(
        run_cli(
            "batch-score",
            "--bundle",
            trained["bundle"],
            "--out",
            "scores.parquet",
            "--similar-out",
            "similar.parquet",
            "--k",
            "5",
            "--json",
            cwd=work,
        )
    )
    summary = json.loads(result.stdout)
    assert summary["similar"]["items"] == 40
    scores = pd.read_parquet(work / "scores.parquet")
    assert scores["user_id"].nunique() == 40
    assert len(pd.read_parquet(work / "similar.parquet")) == summary["similar"]["rows"]
    refused(run_cli("batch-score", "--bundle", trained["bundle"], cwd=work), "give --out")


@pytest.mark.slow  # needs the trained bundle
def test_registry_publish_promote_list_rollback(work: Path, trained: dict) -> None:
    registry = ("--registry", "registry")
    bundle = ("--bundle", trained["bundle"])
    first = ok(
        run_cli(
            "registry",
            "publish",
            *registry,
            *bundle,
            "--version",
            "v1",
            "--promote",
            "--json",
            cwd=work,
        )
    )
    assert json.loads(first.stdout) == {"version": "v1", "current": "v1"}
    ok(run_cli("registry", "publish", *registry, *bundle, "--version", "v2", cwd=work))
    promoted = ok(run_cli("registry", "promote", *registry, "--version", "v2", "--json", cwd=work))
    assert json.loads(promoted.stdout) == {"current": "v2"}
    listed = json.loads(ok(run_cli("registry", "list", *registry, "--json", cwd=work)).stdout)
    assert listed["current"] == "v2"
    assert sorted(v["version"] for v in listed["versions"]) == ["v1", "v2"]
    rolled = ok(run_cli("registry", "rollback", *registry, "--json", cwd=work))
    assert json.loads(rolled.stdout) == {"current": "v1"}
    refused(run_cli("registry", "promote", *registry, "--version", "v9", cwd=work), "v9")
    refused(run_cli("registry", "publish", *registry, *bundle, "--version", "v1", cwd=work), "v1")
    empty = run_cli("registry", "rollback", "--registry", "empty-registry", cwd=work)
    refused(empty, "empty-registry")


@pytest.mark.slow  # needs the trained bundle; starts the server
def test_serve_answers_takes_feedback_and_stops(work: Path, trained: dict) -> None:
    port = free_port()
    env = cli_env(work, {"DATABASE_URL": "sqlite:///served-events.db"})
    args = ["serve", "--bundle", trained["bundle"], "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "cinerec.cli", *args],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        answer = httpx.get(
            f"{base}/v1/recommendations", params={"user_id": "u1", "k": 5}, timeout=30
        )
        assert answer.status_code == 200 and len(answer.json()["items"]) == 5
        event = {"user_id": "u1", "item_id": "i3", "action": "like"}
        assert httpx.post(f"{base}/v1/feedback", json=event, timeout=30).status_code == 202
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr

    exported = ok(
        run_cli(
            "events",
            "export",
            "--database-url",
            "sqlite:///served-events.db",
            "--out",
            "events.parquet",
            "--json",
            cwd=work,
        )
    )
    assert json.loads(exported.stdout)["rows"] == 1
    assert pd.read_parquet(work / "events.parquet")["item_id"].tolist() == ["i3"]
    since = run_cli("events", "export", "--since", "yesterday", "--out", "e.parquet", cwd=work)
    refused(since, "--since", "yesterday")

    refused(run_cli("serve", "--bundle", "nowhere", cwd=work), "no bundle at nowhere")
    refused(run_cli("serve", "--bundle", "ratings.csv", cwd=work), "ratings.csv", "not a cinerec")
    refused(run_cli("serve", "--registry", "nothing-promoted", cwd=work), "no version")
    refused(
        run_cli("serve", "--bundle", trained["bundle"], "--workers", "2", cwd=work), "REDIS_URL"
    )


def test_stream_consume_reads_one_batch(tmp_path: Path) -> None:
    refused(run_cli("stream", "consume", "--redis-url", "not-a-url", cwd=tmp_path), "--redis-url")
    url = redis_or_skip()
    prefix = f"cinerec-cli-test-{uuid.uuid4().hex[:8]}"
    try:
        result = ok(
            run_cli(
                "stream",
                "consume",
                "--redis-url",
                url,
                "--stream",
                f"{prefix}:ev",
                "--prefix",
                prefix,
                "--max-batches",
                "1",
                "--json",
                cwd=tmp_path,
            )
        )
        summary = json.loads(result.stdout)
        assert summary["events"] == 0 and summary["stream"] == f"{prefix}:ev"
    finally:
        drop_prefix(url, prefix)
