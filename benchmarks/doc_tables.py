"""Markdown tables of benchmark results, built from the JSON reports the benchmarks write.

Each public ``*_table`` function takes the parsed JSON of one or more reports under
``reports/benchmarks/`` and returns Markdown; :mod:`render_docs` puts them between marker
comments in README.md and docs/*.md, so the figures in the docs are always the reports'.
``ablation_rows`` and ``gain_sentence`` are also what ``offline_accuracy.py`` prints, so
terminal and docs show the same cells. Accuracy tables of plain evaluations reuse
:func:`cinerec.evaluation.report.markdown_table`, the table of ``cinerec evaluate``.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from cinerec.evaluation.report import markdown_table
from cinerec.evaluation.result import EvaluationResult

Report = dict[str, Any]

#: Ablation columns: (metric, header, digits); NDCG@10 also shows its interval.
ABLATION_COLUMNS = (
    ("ndcg@10", "NDCG@10 [95% CI]", 4),
    ("recall@10", "Recall@10", 4),
    ("mrr@10", "MRR@10", 4),
    ("coverage@10", "Coverage@10", 3),
    ("diversity@10", "Diversity@10", 3),
    ("novelty@10", "Novelty@10", 2),
)
#: Endpoint of each phase of benchmarks/serving.py, and whether it is offered a fixed rate.
SERVING_PHASES = {
    "recommendations (uncached)": ("`POST /v1/recommendations`, uncached (full pipeline)", True),
    "recommendations (cached)": ("`GET /v1/recommendations`, cached", True),
    "feedback": ("`POST /v1/feedback` (durable)", True),
    "health (floor, 8 connections)": ("`GET /health`, closed loop, 8 connections", False),
}
#: Settings every run of one serving row must share.
SERVING_SETTINGS = ("bundle", "workers", "pipeline_processes", "redis", "database", "seconds")


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table; ``|`` inside cells is escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def number(value: float | None, digits: int) -> str:
    """``value`` with ``digits`` decimals; missing or non-finite values read "–"."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def result_from_dict(data: Mapping[str, Any]) -> EvaluationResult:
    """The :class:`EvaluationResult` behind one entry of a report's ``results`` (JSON null
    becomes NaN again)."""

    def real(value: Any) -> float:
        return math.nan if value is None else float(value)

    return EvaluationResult(
        model=str(data["model"]),
        metrics={k: real(v) for k, v in data["metrics"].items()},
        intervals={k: (real(lo), real(hi)) for k, (lo, hi) in data["intervals"].items()},
        n_users=int(data["n_users"]),
        n_cold_users=int(data.get("n_cold_users", 0)),
        seconds=real(data.get("seconds")),
        params=dict(data.get("params") or {}),
    )


def ablation_rows(
    results: Sequence[EvaluationResult], candidate_recall: Mapping[str, float]
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of an ablation run: models, then pipeline variants with their
    candidate recall and the ranker chosen on validation (blank for single models)."""
    header = ["model / variant", *(title for _, title, _ in ABLATION_COLUMNS)]
    header += ["candidate recall", "ranker"]
    rows = []
    for result in results:
        cells = [result.model]
        for metric, _, digits in ABLATION_COLUMNS:
            text = number(result.metrics.get(metric), digits)
            if metric == "ndcg@10" and metric in result.intervals:
                low, high = result.intervals[metric]
                text += f" [{number(low, 3)}, {number(high, 3)}]"
            cells.append(text)
        pipeline = result.model in candidate_recall
        recall = candidate_recall.get(result.model)
        cells.append("" if recall is None else number(recall, 3))
        cells.append(str(result.params.get("ranker", "")) if pipeline else "")
        rows.append(cells)
    return header, rows


def gain_sentence(gain: Mapping[str, Any], seconds: float) -> str:
    """The hybrid against the best single model, with the paired bootstrap interval."""
    return (
        f"Hybrid vs the best single model ({gain['b']}): NDCG@10 "
        f"{gain['relative_gain']:+.1%}, paired difference {gain['difference']:+.4f} "
        f"[95% CI {gain['difference_low']:+.4f}, {gain['difference_high']:+.4f}]; "
        f"{seconds:.0f} s."
    )


def ablation_table(report: Report) -> str:
    """One offline_accuracy run (``<dataset>-<split>/results.json``): the ablation table,
    the hybrid's row in bold, then the gain sentence."""
    context = report["context"]
    results = [result_from_dict(r) for r in report["results"]]
    header, rows = ablation_rows(results, context.get("candidate_recall", {}))
    for row in rows:
        if row[0] == "hybrid":
            row[0], row[1] = "**hybrid**", f"**{row[1]}**"
    text = markdown(header, rows)
    if context.get("hybrid_gain"):
        text += "\n\n" + gain_sentence(context["hybrid_gain"], context["seconds"])
    return text


def evaluation_table(report: Report) -> str:
    """A plain evaluation report (any ``write_report`` JSON) as ``cinerec evaluate``'s table."""
    return markdown_table([result_from_dict(r) for r in report["results"]], k=10)


def headline_table(reports: Sequence[Report]) -> str:
    """One row per offline_accuracy run: the best single model, the hybrid and the gain."""
    rows = []
    for report in reports:
        context = report["context"]
        gain = context["hybrid_gain"]
        by_model = {r["model"]: r["metrics"]["ndcg@10"] for r in report["results"]}
        rows.append(
            [
                f"{context['dataset']} · {context['split']}",
                f"{gain['b']} {number(by_model[gain['b']], 4)}",
                number(by_model[gain["a"]], 4),
                f"{gain['relative_gain']:+.1%}",
                f"[{gain['difference_low']:+.4f}, {gain['difference_high']:+.4f}]",
            ]
        )
    header = ["dataset · split", "best single model", "hybrid", "NDCG@10 gain"]
    return markdown([*header, "paired 95% CI of the difference"], rows)


_TRAINING = re.compile(r"(\d+) epochs \(best (\d+)\), ([\d.]+) s/epoch")


def neural_table(reports: Sequence[Report]) -> str:
    """benchmarks/neural.py: every model of every dataset, with the neural models' epochs."""
    rows = []
    for report in reports:
        context = report["context"]
        for r in report["results"]:
            metrics, (low, high) = r["metrics"], r["intervals"]["ndcg@10"]
            training = _TRAINING.search(str(context.get(f"{r['model']} training", "")))
            epochs = "–"
            if training:
                run, best, per_epoch = training.groups()
                epochs = f"{per_epoch} ({run} run, best {best})"
            rows.append(
                [
                    context["dataset"],
                    r["model"],
                    f"{number(metrics['ndcg@10'], 3)} [{number(low, 3)}, {number(high, 3)}]",
                    number(metrics["recall@10"], 3),
                    number(metrics["mrr@10"], 3),
                    epochs,
                ]
            )
    header = ["dataset", "model", "NDCG@10 [95% CI]", "Recall@10", "MRR@10"]
    text = markdown([*header, "s/epoch (epochs run, best)"], rows)
    first = reports[0]["context"]
    return text + (
        f"\n\n{first['split']}, full ranking; neural training capped at "
        f"{first['max_train_s']:.0f} s per model, {first['tune_budget_s']:.0f} s of tuning "
        "per tuned model."
    )


def sasrec_sweep_table(rows_in: Sequence[Mapping[str, Any]]) -> str:
    """benchmarks/sasrec_sweep.py: popularity, then one row per SASRec setting."""
    rows = []
    for row in rows_in:
        low, high = row["ci"]
        ndcg = f"{number(row['ndcg@10'], 3)} [{number(low, 3)}, {number(high, 3)}]"
        if row["model"] != "sasrec":
            rows.append([f"{row['model']} (the bar)", ndcg, "–", "–", "–"])
            continue
        settings = ", ".join(f"{k} {v}" for k, v in row["params"].items())
        rows.append(
            [
                settings,
                ndcg,
                number(row.get("recall@10"), 3),
                f"{row.get('best_epoch')} / {row.get('epochs')}",
                number(row.get("seconds_per_epoch"), 1),
            ]
        )
    header = ["SASRec settings", "NDCG@10 [95% CI]", "Recall@10", "best epoch / run", "s/epoch"]
    return markdown(header, rows)


def _spread(values: Sequence[float], digits: int) -> str:
    """One value, or the median and the range of several runs."""
    if len(values) == 1:
        return number(values[0], digits)
    low, high = min(values), max(values)
    middle = statistics.median(values)
    return f"{number(middle, digits)} ({number(low, digits)}–{number(high, digits)})"


def serving_table(groups: Sequence[Sequence[Report]]) -> str:
    """benchmarks/serving.py: one row per phase of each group of repeated runs, cells as
    the median (range) over the group's runs. Runs of one group must share the settings."""
    rows = []
    for runs in groups:
        for key in SERVING_SETTINGS:
            if len({str(run.get(key)) for run in runs}) > 1:
                raise ValueError(f"runs of one serving row differ in {key!r}")
        setting = runs[0]
        for phase, (endpoint, open_loop) in SERVING_PHASES.items():
            cells = [run["results"][phase] for run in runs if phase in run["results"]]
            if not cells:
                continue
            if phase == "feedback":
                endpoint = endpoint.replace("durable", f"durable, {setting['database']}")

            def column(field: str, digits: int, cells: list[dict] = cells) -> str:
                return _spread([float(cell[field]) for cell in cells], digits)

            offered = "–"
            if open_loop:
                offered = f"{cells[0]['requests'] / float(setting['seconds']):.0f}"
            rows.append(
                [
                    endpoint,
                    str(setting["pipeline_processes"]),
                    "redis" if setting["redis"] else "in process",
                    str(len(cells)),
                    offered,
                    column("rate_per_s", 0),
                    column("p50_ms", 1),
                    column("p95_ms", 1),
                    column("p99_ms", 1),
                    column("server_cpu_ms_per_request", 2),
                ]
            )
    header = ["endpoint", "pipeline processes", "state", "runs", "offered/s", "achieved/s"]
    header += ["p50 ms", "p95 ms", "p99 ms", "server CPU ms/request"]
    return markdown(header, rows)


def pipeline_latency_table(report: Report) -> str:
    """benchmarks/pipeline_latency.py: totals and stage medians per kind of request."""
    stages = ("recall", "features", "rank", "rerank", "explain")
    rows = []
    for kind, lat in report["latency_ms"].items():
        totals = [number(lat[f"total_{p}"], 1) for p in ("p50", "p95", "p99")]
        rows.append([kind, str(lat["n"]), *totals, *(number(lat[f"{s}_p50"], 2) for s in stages)])
    header = ["requests", "n", "p50 ms", "p95 ms", "p99 ms"]
    header += [f"{s} p50" for s in ("recall", "features", "rank", "re-rank", "explain")]
    return markdown(header, rows) + (
        f"\n\n{report['bundle']}: {report['n_items']:,} items, "
        f"{report['mean_candidates']:,.0f} candidates a request, ranker {report['ranker']}."
    )


def ann_table(report: Report) -> str:
    """benchmarks/ann.py: recall and single-query latency of each index configuration."""
    rows = []
    for r in report["results"]:
        params = ", ".join(f"{k} {v}" for k, v in r["params"].items() if k != "train_size")
        rows.append(
            [
                f"{r['n']:,}",
                str(r["d"]),
                r["kind"] + (f" ({params})" if params else ""),
                number(r["recall"], 3),
                number(r["p50_ms"], 2),
                number(r["p99_ms"], 2),
                number(r["build_s"], 1),
                number(r["index_mb"], 0),
                "yes" if r["meets_target"] else "no",
            ]
        )
    k, target = report["k"], report["target"]
    header = ["items", "d", "index", f"recall@{k}", "p50 ms", "p99 ms", "build s", "MB"]
    return markdown([*header, "meets target"], rows) + (
        f"\n\nTarget: recall@{k} ≥ {target['recall']} and p99 ≤ {target['p99_ms']} ms; "
        f"{report['queries']:,} single queries, {report['cpus']} CPUs, faiss {report['faiss']}."
    )


def als_overhead_table(report: Report) -> str:
    """benchmarks/als_overhead.py: cinerec's wrapper against calling ``implicit`` directly."""
    rows = [
        [
            run["model"],
            number(run["direct_median_s"], 3),
            number(run["wrapper_median_s"], 3),
            number(run["ratio"], 3),
            "yes" if run["identical_factors"] else "no",
            str(run["repeats"]),
        ]
        for run in report["runs"]
    ]
    header = ["model", "implicit, median s", "cinerec, median s", "ratio", "same factors"]
    data = report["dataset"]
    return markdown([*header, "repeats"], rows) + (
        f"\n\n{data['name']} ({data['interactions']:,} interactions); target ratio "
        f"≤ {report['target_ratio']}."
    )


def sequence_latency_table(report: Report) -> str:
    """benchmarks/sequence_latency.py: one ``score_sequences`` request."""
    lat, params = report["latency"], report["params"]
    row = [
        report["model"],
        f"{report['n_items']:,}",
        ", ".join(f"{k} {v}" for k, v in params.items()),
        str(report["torch_threads"]),
        number(lat["p50_ms"], 2),
        number(lat["p99_ms"], 2),
        f"{lat['requests']:,}",
    ]
    header = ["model", "items", "size", "threads", "p50 ms", "p99 ms", "requests"]
    return markdown(header, [row])


def eval_speed_table(report: Report) -> str:
    """benchmarks/eval_speed.py: full-ranking evaluation of a synthetic problem."""
    row = [
        f"{report['users']:,} × {report['items']:,}",
        number(report["eval_seconds"], 1),
        f"{report['users_per_second']:,.0f}",
        number(report["recommend_seconds"], 1),
        number(report["harness_seconds"], 1),
        str(report["cpu_count"]),
    ]
    header = ["users × items", "seconds", "users/s", "of which ranking s", "harness s", "CPUs"]
    return markdown(header, [row])
