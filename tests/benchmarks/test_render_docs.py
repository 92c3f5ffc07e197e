"""Generated result tables: the repository's docs match the reports, and the generator
rewrites stale tables, leaves the rest of a file alone and refuses bad markers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import doc_tables
import pytest
import render_docs

from cinerec.evaluation.result import EvaluationResult

ROOT = Path(__file__).resolve().parents[2]


def result(model: str, ndcg: float, **params: object) -> EvaluationResult:
    metrics = {
        "ndcg@10": ndcg,
        "recall@10": ndcg * 2,
        "mrr@10": ndcg / 2,
        "coverage@10": 0.1,
        "diversity@10": 0.8,
        "novelty@10": math.nan,
    }
    return EvaluationResult(
        model=model,
        metrics=metrics,
        intervals={"ndcg@10": (ndcg - 0.01, ndcg + 0.01)},
        n_users=610,
        n_cold_users=0,
        seconds=0.5,
        params=dict(params),
    )


def ablation_report() -> dict:
    results = [result("ease", 0.0391), result("hybrid", 0.0553, ranker="neural")]
    gain = {"metric": "ndcg@10", "a": "hybrid", "b": "ease", "relative_gain": 0.4126,
            "difference": 0.0161, "difference_low": 0.001, "difference_high": 0.0324}  # fmt: skip
    context = {"dataset": "ml", "split": "leave-last:1", "seconds": 324.3,
               "candidate_recall": {"hybrid": 0.7033}, "hybrid_gain": gain}  # fmt: skip
    return {"title": "t", "context": context, "results": [r.to_dict() for r in results]}


def serving_run(p50: float, processes: int = 2) -> dict:
    phase = {"requests": 2000, "errors": 0, "rate_per_s": 100.0, "p50_ms": p50, "p95_ms": 20.0,
             "p99_ms": 30.0, "server_cpu_ms_per_request": 11.0}  # fmt: skip
    return {"bundle": "bundles/demo", "workers": 1, "pipeline_processes": processes,
            "redis": False, "database": "sqlite", "seconds": 20.0,
            "results": {"recommendations (uncached)": phase}}  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository with one report, a README and one doc page holding stale tables."""
    folder = tmp_path / "reports" / "benchmarks" / "offline_accuracy" / "ml-leave-last-1"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(ablation_report()))
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# x\n\n<!-- results:headline offline_accuracy/ml-leave-last-1 -->\nold\n"
        "<!-- /results -->\n\nkept text\n"
    )
    (tmp_path / "docs" / "a.md").write_text(
        "intro\n\n<!-- results:ablation offline_accuracy/ml-leave-last-1 -->\n"
        "| stale |\n<!-- /results -->\n\nafter\n"
    )
    return tmp_path


def test_the_docs_tables_match_the_reports() -> None:
    """The check `make test` runs: every generated table equals what its JSON gives."""
    blocks = render_docs.refresh(ROOT, ROOT / render_docs.REPORTS, write=False)
    stale = [str(b) for b in blocks if b.stale]
    assert not stale, "stale tables (run python benchmarks/render_docs.py):\n" + "\n".join(stale)
    assert {b.kind for b in blocks} == set(render_docs.KINDS), "a kind no doc uses"


def test_check_reports_stale_tables_and_a_rewrite_fixes_them(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (project / "docs" / "a.md").read_text()
    assert render_docs.main(["--check", "--root", str(project)]) == 1
    assert (project / "docs" / "a.md").read_text() == before  # --check writes nothing
    out = capsys.readouterr().out
    assert "stale: docs/a.md:3: results:ablation" in out and "stale: README.md:3" in out

    assert render_docs.main(["--root", str(project)]) == 0
    page = (project / "docs" / "a.md").read_text()
    assert page.startswith("intro\n\n<!-- results:ablation offline_accuracy/ml-leave-last-1 -->\n")
    assert page.endswith("<!-- /results -->\n\nafter\n")
    assert "| stale |" not in page
    assert "| ease | 0.0391 [0.029, 0.049] | 0.0782 | 0.0196 | 0.100 | 0.800 | – |  |  |" in page
    assert "| **hybrid** | **0.0553 [0.045, 0.065]** |" in page and "| 0.703 | neural |" in page
    assert "(ease): NDCG@10 +41.3%, paired difference +0.0161 [95% CI +0.0010, +0.0324]" in page
    readme = (project / "README.md").read_text()
    assert "| ml · leave-last:1 | ease 0.0391 | 0.0553 | +41.3% | [+0.0010, +0.0324] |" in readme
    assert readme.endswith("kept text\n")
    assert render_docs.main(["--check", "--root", str(project)]) == 0


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("<!-- results:nope x -->\n<!-- /results -->", "docs/a.md:3: unknown table kind 'nope'"),
        ("<!-- results:ablation missing -->\n<!-- /results -->", "no such report"),
        ("<!-- results:ablation -->\n<!-- /results -->", "names no report"),
        ("<!-- results:ann a b -->\n<!-- /results -->", "takes one report, got 2"),
        ("<!-- results:ablation offline_accuracy/ml-leave-last-1 -->\n", "without <!-- /results"),
        (
            "<!-- results:ann x -->\n<!-- results:ann y -->\n<!-- /results -->",
            "not closed before the next one",
        ),
    ],
)
def test_bad_markers_are_refused_with_their_place(
    project: Path, marker: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "docs" / "a.md").write_text(f"intro\n\n{marker}\n")
    readme = (project / "README.md").read_text()
    assert render_docs.main(["--root", str(project)]) == 2
    assert message in capsys.readouterr().err
    assert (project / "README.md").read_text() == readme  # nothing written on an error


def test_markers_quoted_inside_a_line_are_text(project: Path) -> None:
    text = "Write `<!-- results:KIND REPORT -->` … `<!-- /results -->` around a table.\n"
    assert render_docs.render(text, project / "reports" / "benchmarks") == (text, [])


def test_serving_rows_are_medians_of_runs_that_share_their_settings() -> None:
    runs = [serving_run(15.17), serving_run(12.4), serving_run(13.43)]
    table = doc_tables.serving_table([runs, [serving_run(11.0, processes=0)]])
    rows = table.splitlines()[2:]
    assert rows[0].startswith("| `POST /v1/recommendations`, uncached (full pipeline) | 2 |")
    assert "| 3 | 100 | 100 (100–100) | 13.4 (12.4–15.2) | 20.0 (20.0–20.0) |" in rows[0]
    assert "| 0 | in process | 1 | 100 | 100 | 11.0 | 20.0 | 30.0 | 11.00 |" in rows[1]
    with pytest.raises(ValueError, match="pipeline_processes"):
        doc_tables.serving_table([[serving_run(1.0), serving_run(1.0, processes=0)]])


def test_a_result_survives_its_json() -> None:
    original = result("als", 0.0377, factors=93)
    back = doc_tables.result_from_dict(json.loads(json.dumps(original.to_dict())))
    assert back.metrics["ndcg@10"] == original.metrics["ndcg@10"]
    assert math.isnan(back.metrics["novelty@10"])  # NaN → null → NaN
    assert back.intervals["ndcg@10"] == original.intervals["ndcg@10"]
    assert back.params == {"factors": 93} and back.n_users == 610


def test_neural_rows_read_the_training_log_of_the_context() -> None:
    report = {
        "context": {"dataset": "ml", "split": "leave-last:1", "max_train_s": 120.0,
                    "tune_budget_s": 30.0, "sasrec training": "6 epochs (best 3), 10.0 s/epoch"},
        "results": [result("pop", 0.018).to_dict(), result("sasrec", 0.013).to_dict()],
    }  # fmt: skip
    table = doc_tables.neural_table([report])
    assert "| ml | pop | 0.018 [0.008, 0.028] | 0.036 | 0.009 | – |" in table
    assert "| ml | sasrec | 0.013 [0.003, 0.023] | 0.026 | 0.006 | 10.0 (6 run, best 3) |" in table
    assert "capped at 120 s per model" in table
