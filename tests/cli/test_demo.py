"""The demo's evaluation in the background, its timeline and its JSON document."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cinerec.cli.demo import BackgroundEvaluation, phase_offsets, write_document
from tests.synthetic import clustered_dataset


def test_phase_offsets_are_relative_and_ordered_by_start() -> None:
    begun = 1_000.0
    phases = {"ranker": (1_130.0, 1_150.5), "data": (1_000.0, 1_003.2), "tuning": (1_003.2, 1_130)}
    offsets = phase_offsets(begun, phases)
    assert list(offsets) == ["data", "tuning", "ranker"]
    assert offsets["ranker"] == [130.0, 150.5] and offsets["data"] == [0.0, 3.2]


def test_document_is_written_as_plain_json(tmp_path: Path) -> None:
    path = write_document(
        {"n": np.int64(3), "x": np.float32(0.5), "bad": float("nan"), "p": tmp_path},
        tmp_path / "reports" / "demo" / "demo.json",
    )
    assert json.loads(path.read_text()) == {"n": 3, "x": 0.5, "bad": None, "p": str(tmp_path)}


def test_a_failing_background_evaluation_exits_nonzero(tmp_path: Path) -> None:
    evaluation = BackgroundEvaluation(tmp_path / "missing", tmp_path / "report", quiet=True)
    with pytest.raises(RuntimeError, match="not started"):
        evaluation.join()
    assert evaluation.start().join(timeout=120) not in (None, 0)
    assert not evaluation.running and not (tmp_path / "report").exists()


@pytest.mark.slow
def test_background_evaluation_prints_the_table_and_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))
    data_dir = clustered_dataset(n_users=40).save(tmp_path / "data")
    evaluation = BackgroundEvaluation(data_dir, tmp_path / "report").start()
    assert evaluation.join(timeout=600) == 0
    report = json.loads((tmp_path / "report" / "results.json").read_text())
    models = [r["model"] for r in report["results"]]
    assert models == ["pop", "trending", "itemknn", "ease", "als", "content", "hybrid"]
    assert report["context"]["split"] == "leave-last:1"
    hybrid = report["results"][-1]
    low, high = hybrid["intervals"]["ndcg@10"]
    assert low <= hybrid["metrics"]["ndcg@10"] <= high
    printed = capfd.readouterr().out
    assert "hybrid" in printed and "evaluation report:" in printed
