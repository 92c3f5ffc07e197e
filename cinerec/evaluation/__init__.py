"""Offline evaluation: splits, ranking and beyond-accuracy metrics, evaluators, reports."""

from cinerec.evaluation.beyond import (
    average_popularity,
    catalog_coverage,
    intra_list_diversity,
    novelty,
    popular_share,
)
from cinerec.evaluation.evaluator import (
    EvaluationResult,
    evaluate_model,
    evaluate_predictions,
    evaluate_rankings,
    relevant_interactions,
)
from cinerec.evaluation.metrics import (
    ACCURACY_METRICS,
    bootstrap_ci,
    hit_matrix,
    ranking_metrics,
)
from cinerec.evaluation.report import format_table, write_report
from cinerec.evaluation.splits import (
    Split,
    SplitError,
    leave_last_n,
    make_split,
    random_split,
    temporal_global,
    validation_carve,
)

__all__ = [
    "ACCURACY_METRICS",
    "EvaluationResult",
    "Split",
    "SplitError",
    "average_popularity",
    "bootstrap_ci",
    "catalog_coverage",
    "evaluate_model",
    "evaluate_predictions",
    "evaluate_rankings",
    "format_table",
    "hit_matrix",
    "intra_list_diversity",
    "leave_last_n",
    "make_split",
    "novelty",
    "popular_share",
    "random_split",
    "ranking_metrics",
    "relevant_interactions",
    "temporal_global",
    "validation_carve",
    "write_report",
]
