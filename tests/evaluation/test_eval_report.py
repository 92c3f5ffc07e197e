"""Reports: the three files, their content, and the terminal table."""

from __future__ import annotations

import json

import numpy as np
import scipy.sparse as sp
from rich.console import Console

from cinerec.evaluation.evaluator import evaluate_rankings
from cinerec.evaluation.report import format_table, write_report


def results():
    rng = np.random.default_rng(0)
    truth = sp.csr_matrix((rng.random((50, 30)) < 0.2).astype(np.float32))
    out = []
    for name in ("alpha", "beta"):
        ranked = np.argsort(rng.random((50, 30)), axis=1)[:, :20]
        out.append(
            evaluate_rankings(
                ranked,
                truth,
                (5, 10, 20),
                name=name,
                popularity=rng.integers(0, 9, 30).astype(float),
                n_users_train=10,
                item_features=(rng.random((30, 4)) < 0.5),
                n_cold_users=3,
            )
        )
    return out


def test_write_report(tmp_path) -> None:
    paths = write_report(results(), tmp_path / "run", title="Demo run", context={"split": "x"})
    assert set(paths) == {"json", "markdown", "plot"}
    payload = json.loads(paths["json"].read_text())
    assert payload["title"] == "Demo run"
    assert [r["model"] for r in payload["results"]] == ["alpha", "beta"]
    assert "ndcg@10" in payload["results"][0]["metrics"]
    md = paths["markdown"].read_text()
    assert "| Model | P@10 | R@10 | NDCG@10 | MRR@10 | MAP@10 |" in md
    row = next(line for line in md.splitlines() if line.startswith("| alpha"))
    assert row.count("[") == 5  # five accuracy cells with intervals
    assert "(+3 cold)" in row
    png = paths["plot"].read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_format_table_and_empty_report(tmp_path) -> None:
    table = format_table(results(), k=10)
    assert len(table.columns) == 3  # the metric names, then one column per model
    console = Console(record=True, width=80)
    console.print(table)
    text = console.export_text()
    assert "alpha" in text
    assert "NDCG@10" in text
    assert "±" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    paths = write_report([], tmp_path, title="Nothing", context={})
    assert "No results." in paths["markdown"].read_text()
    assert paths["plot"].stat().st_size > 0
