"""End-to-end tests of the ``cinerec`` command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.synthetic import clustered_dataset


def run_cli(*args: str, cwd: Path, env_mirror: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "HOME": str(cwd)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # this checkout's cinerec
    if env_mirror is not None:
        env["CINEREC_DATA_MIRROR"] = str(env_mirror)
    return subprocess.run(
        [sys.executable, "-m", "cinerec.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    data = clustered_dataset(n_users=50)
    inter = data.interactions.rename(
        columns={"user_id": "uid", "item_id": "movie", "value": "stars"}
    )
    inter["timestamp"] = inter["timestamp"].astype("int64") // 10**9
    inter.drop(columns=["event"]).to_csv(folder / "ratings.csv", index=False)
    items = data.items.assign(genres=data.items["genres"].map("|".join))
    items.to_csv(folder / "items.csv", index=False)
    return folder


def test_train_recommend_and_score_external_predictions(files: Path) -> None:
    mapping = "user_id=uid,item_id=movie,value=stars"
    (files / "pipeline.yaml").write_text(
        "name: small\nrecall:\n  max_candidates: 30\n  sources:\n"
        "    - {name: knn, kind: item2item, model: itemknn, quota: 20}\n"
        "    - {name: pop, kind: model, model: pop, quota: 20}\n"
        "rerank: {mmr_lambda: 0.8}\n"
    )
    trained = run_cli(
        "train",
        "--interactions",
        "ratings.csv",
        "--items",
        "items.csv",
        "--map",
        mapping,
        "--models",
        "pop,itemknn",
        "--out",
        "bundle",
        "--pipeline",
        "pipeline.yaml",
        "--json",
        cwd=files,
    )
    assert trained.returncode == 0, trained.stderr
    document = json.loads(trained.stdout)
    from cinerec.pipeline.config import PipelineConfig

    manifest = json.loads((files / "bundle" / "manifest.json").read_text())
    stored = PipelineConfig.model_validate(manifest["pipeline"]["config"])
    assert stored.name == "small" and [s.name for s in stored.recall.sources] == ["knn", "pop"]
    # the re-rank policy was chosen on validation; the hash names the config actually used
    assert manifest["pipeline"]["config_hash"] == stored.digest()
    assert document["pipeline"]["config_hash"] == stored.digest()
    assert document["default_model"] in {"pop", "itemknn"}
    assert set(document["validation"]) == {"pop", "itemknn"}

    (files / "some_users.txt").write_text("u1\nu2\nnobody\n")
    recommended = run_cli(
        "recommend",
        "--bundle",
        "bundle",
        "--k",
        "5",
        "--users",
        "some_users.txt",
        "--out",
        "recs.csv",
        "--json",
        cwd=files,
    )
    assert recommended.returncode == 0, recommended.stderr
    summary = json.loads(recommended.stdout)
    assert summary["model"].startswith("hybrid")
    # the pipeline answers unknown users too (cold start: popular items)
    assert summary["users"] == 3 and summary["unknown_users"] == 1
    recs = pd.read_csv(files / "recs.csv", dtype={"user_id": str, "item_id": str})
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank", "reason", "sources"]
    assert recs.groupby("user_id")["rank"].apply(list).tolist() == [[1, 2, 3, 4, 5]] * 3
    assert recs["reason"].str.len().gt(0).all()
    ratings = pd.read_csv(files / "ratings.csv", dtype=str)
    seen = set(ratings.loc[ratings["uid"] == "u1", "movie"])
    assert not seen & set(recs.loc[recs["user_id"] == "u1", "item_id"])

    single = run_cli(
        "recommend", "--bundle", "bundle", "--k", "5", "--users", "some_users.txt",
        "--model", "itemknn", "--out", "single.csv", "--json", cwd=files,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    assert json.loads(single.stdout)["users"] == 2
    one_model = pd.read_csv(files / "single.csv", dtype={"user_id": str, "item_id": str})
    assert list(one_model.columns) == ["user_id", "item_id", "score", "rank"]
    recs = recs[recs["user_id"] != "nobody"]

    truth = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": [recs["item_id"].iloc[0], "zzz"]})
    truth.to_csv(files / "truth.csv", index=False)
    scored = run_cli(
        "evaluate",
        "--predictions",
        "recs.csv",
        "--truth",
        "truth.csv",
        "--k",
        "5",
        "--report",
        "ext",
        "--json",
        cwd=files,
    )
    assert scored.returncode == 0, scored.stderr
    metrics = json.loads(scored.stdout)["results"][0]["metrics"]
    assert metrics["hitrate@5"] == pytest.approx(0.5)  # u1 hit at rank 1, u2 no hit
    assert metrics["mrr@5"] == pytest.approx(0.5)
    assert (files / "ext" / "results.md").exists()


def test_evaluate_a_dataset_folder_writes_a_report(files: Path) -> None:
    clustered_dataset(n_users=40).save(files / "ds")
    result = run_cli(
        "evaluate",
        "--dataset",
        "ds",
        "--split",
        "leave-last:2",
        "--models",
        "pop,ease",
        "--report",
        "rep",
        "--json",
        cwd=files,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)["leave-last:2"]
    names = [r["model"] for r in document["results"]]
    assert names == ["pop", "ease"]
    ndcg = {r["model"]: r["metrics"]["ndcg@10"] for r in document["results"]}
    assert ndcg["ease"] > ndcg["pop"]  # the clustered data rewards personalisation
    for kind in ("json", "markdown", "plot"):
        assert Path(files / document["report"][kind]).stat().st_size > 0


def test_bad_input_is_one_line_naming_file_row_and_field(files: Path) -> None:
    bad = files / "bad.csv"
    bad.write_text("user_id,item_id,value,timestamp\nu1,a,4,1000000000\nu1,b,9,1000000001\n")
    result = run_cli("train", "--interactions", "bad.csv", "--out", "never", cwd=files)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert "bad.csv" in message and "row 2" in message and "value" in message
    assert not (files / "never").exists()


def test_missing_file_and_bad_usage_are_clear(files: Path) -> None:
    missing = run_cli("recommend", "--bundle", "nope", "--out", "x.csv", cwd=files)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr and "nope" in missing.stderr
    usage = run_cli("evaluate", "--predictions", "recs.csv", cwd=files)
    assert usage.returncode == 2
    assert "--truth" in usage.stderr


@pytest.mark.integration
def test_fetch_movielens_from_the_mirror(tmp_path: Path, datasets_mirror: Path) -> None:
    result = run_cli(
        "data",
        "fetch",
        "ml-latest-small",
        "--out",
        "ml",
        "--json",
        cwd=tmp_path,
        env_mirror=datasets_mirror,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["interactions"] == 100_836
    assert summary["users"] == 610
    assert (tmp_path / "ml" / "interactions.parquet").exists()


def test_more_like_this_reaches_items_without_interactions(files: Path) -> None:
    mapping = "user_id=uid,item_id=movie,value=stars"
    (files / "pipeline.yaml").write_text(
        "name: small\nrecall:\n  max_candidates: 30\n  sources:\n"
        "    - {name: knn, kind: item2item, model: itemknn, quota: 20}\n"
        "    - {name: pop, kind: model, model: pop, quota: 20}\n"
        "rerank: {mmr_lambda: 0.8}\n"
    )
    trained = run_cli(
        "train",
        "--interactions",
        "ratings.csv",
        "--items",
        "items.csv",
        "--map",
        mapping,
        "--models",
        "pop,content",
        "--out",
        "bundle-content",
        "--json",
        cwd=files,
    )
    assert trained.returncode == 0, trained.stderr
    similar = run_cli(
        "similar",
        "--bundle",
        "bundle-content",
        "--item",
        "cold0",
        "--k",
        "5",
        "--json",
        cwd=files,
    )
    assert similar.returncode == 0, similar.stderr
    rows = json.loads(similar.stdout)
    assert len(rows) == 5
    assert all(r["item_id"] == "cold0" and r["similar_id"] != "cold0" for r in rows)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(r["title"].startswith("Title ") for r in rows)
    unknown = run_cli("similar", "--bundle", "bundle-content", "--item", "nope", cwd=files)
    assert unknown.returncode == 2 and "unknown item id" in unknown.stderr
