"""Evaluation reports: JSON for machines, a Markdown table and a metric-vs-K plot for people."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from cinerec.evaluation.metrics import ACCURACY_METRICS
from cinerec.evaluation.result import EvaluationResult, json_safe

#: Accuracy columns of the tables: (metric, header).
_TABLE_METRICS = (
    ("precision", "P"),
    ("recall", "R"),
    ("ndcg", "NDCG"),
    ("mrr", "MRR"),
    ("map", "MAP"),
)
_TITLES = {
    "precision": "Precision",
    "recall": "Recall",
    "ndcg": "NDCG",
    "mrr": "MRR",
    "map": "MAP",
    "hitrate": "Hit rate",
}


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def _with_interval(result: EvaluationResult, key: str) -> str:
    value = result.metrics.get(key)
    if value is None:
        return "–"
    text = _number(value)
    if key in result.intervals:
        low, high = result.intervals[key]
        if math.isfinite(low) and math.isfinite(high):
            text += f" [{low:.3f}, {high:.3f}]"
    return text


def _pick_k(results: Sequence[EvaluationResult], k: int | None) -> int:
    if not results:
        return k or 10
    common = set.intersection(*(set(r.ks) for r in results))
    if k is not None and (k in common or not common):
        return k
    return 10 if 10 in common else max(common)


def _rows(results: Sequence[EvaluationResult], k: int) -> tuple[list[str], list[list[str]]]:
    header = ["Model"] + [f"{label}@{k}" for _, label in _TABLE_METRICS]
    header += [f"Coverage@{k}", f"Novelty@{k}", f"Diversity@{k}", "Users", "Seconds"]
    rows = []
    for r in results:
        row = [r.model] + [_with_interval(r, f"{m}@{k}") for m, _ in _TABLE_METRICS]
        row += [
            _number(r.metrics.get(f"coverage@{k}")),
            _number(r.metrics.get(f"novelty@{k}"), 2),
            _number(r.metrics.get(f"diversity@{k}")),
            f"{r.n_users:,}" + (f" (+{r.n_cold_users:,} cold)" if r.n_cold_users else ""),
            f"{r.seconds:.2f}",
        ]
        rows.append(row)
    return header, rows


def markdown_table(results: Sequence[EvaluationResult], k: int = 10) -> str:
    """A Markdown table, one row per model, accuracy cells as ``mean [low, high]``."""
    header, rows = _rows(results, _pick_k(results, k))
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def format_table(results: Sequence[EvaluationResult], k: int = 10) -> Table:
    """A terminal table: one column per model, one row per metric (fits 80 columns).

    Accuracy cells read ``mean ±h`` with ``h`` the half-width of the 95% bootstrap
    interval; the exact interval bounds are in the Markdown and JSON reports.
    """
    k = _pick_k(results, k)
    table = Table(title=f"Evaluation @{k} (± half-width of the 95% bootstrap CI)")
    table.add_column("Metric", no_wrap=True)
    for r in results:
        table.add_column(r.model, justify="right", no_wrap=True)
    for metric, label in _TABLE_METRICS:
        table.add_row(f"{label}@{k}", *(_compact(r, f"{metric}@{k}") for r in results))
    for metric, label, digits in (
        ("coverage", "Coverage", 3),
        ("novelty", "Novelty", 2),
        ("diversity", "Diversity", 3),
    ):
        table.add_row(
            f"{label}@{k}", *(_number(r.metrics.get(f"{metric}@{k}"), digits) for r in results)
        )
    table.add_row("Users", *(f"{r.n_users:,}" for r in results))
    if any(r.n_cold_users for r in results):
        table.add_row("Cold users", *(f"{r.n_cold_users:,}" for r in results))
    table.add_row("Seconds", *(f"{r.seconds:.2f}" for r in results))
    return table


def _compact(result: EvaluationResult, key: str) -> str:
    value = result.metrics.get(key)
    if value is None or not math.isfinite(value):
        return "–"
    low, high = result.intervals.get(key, (math.nan, math.nan))
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.4f}"
    return f"{value:.4f} ±{(high - low) / 2:.4f}"


def plot_metrics_at_k(results: Sequence[EvaluationResult], path: str | Path) -> Path:
    """Write a PNG: one panel per accuracy metric, metric vs K, one line per model.

    Uses matplotlib's Agg canvas directly, so no global backend is switched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    present = {key.split("@")[0] for r in results for key in r.metrics}
    metrics = [m for m in ACCURACY_METRICS if m in present]
    metrics = metrics or list(ACCURACY_METRICS)
    cols = 3
    rows = math.ceil(len(metrics) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        for r in results:
            ks = [k for k in r.ks if f"{metric}@{k}" in r.metrics]
            values = [r.metrics[f"{metric}@{k}"] for k in ks]
            (line,) = ax.plot(ks, values, marker="o", label=r.model)
            bands = [b for k in ks if (b := r.intervals.get(f"{metric}@{k}")) is not None]
            if ks and len(bands) == len(ks):  # a band at every K
                low = [b[0] for b in bands]
                high = [b[1] for b in bands]
                ax.fill_between(ks, low, high, color=line.get_color(), alpha=0.15, lw=0)
        all_ks = sorted({k for r in results for k in r.ks})
        if all_ks:
            ax.set_xticks(all_ks)
        ax.set_title(_TITLES.get(metric, metric))
        ax.set_xlabel("K")
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    if results:
        axes[0].legend(fontsize="small")
    fig.savefig(path, dpi=110)
    return path


def write_report(
    results: Sequence[EvaluationResult],
    folder: str | Path,
    *,
    title: str,
    context: dict[str, Any],
    k: int = 10,
) -> dict[str, Path]:
    """Write ``results.json``, ``results.md`` and ``metrics_at_k.png`` into ``folder``.

    ``context`` (dataset, split, seed, ...) is stored in the JSON and listed above the
    table. Returns the paths keyed ``"json"``, ``"markdown"`` and ``"plot"``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    results = list(results)
    paths = {
        "json": folder / "results.json",
        "markdown": folder / "results.md",
        "plot": folder / "metrics_at_k.png",
    }
    payload = {
        "title": title,
        "context": json_safe(context),
        "results": [r.to_dict() for r in results],
    }
    paths["json"].write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    lines = [f"# {title}", ""]
    lines += [f"- **{key}**: {value}" for key, value in context.items()]
    if context:
        lines.append("")
    if results:
        lines += [markdown_table(results, k), ""]
        lines.append(
            "Accuracy cells: mean over users [95% percentile-bootstrap interval]. Coverage: "
            "fraction of the catalog recommended to anyone. Novelty: mean self-information "
            "(bits) of recommended items. Diversity: mean pairwise distance within a list."
        )
    else:
        lines.append("No results.")
    lines.append("")
    lines.append(f"![metrics at K]({paths['plot'].name})")
    paths["markdown"].write_text("\n".join(lines) + "\n")
    plot_metrics_at_k(results, paths["plot"])
    return paths
