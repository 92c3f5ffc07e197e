"""Prometheus metrics of the service, on a registry of its own (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0)
CANDIDATE_BUCKETS = (0, 10, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000)


class Metrics:
    """Latency per endpoint and per pipeline stage, cache hits, candidates per source,
    errors, feedback volume and the model version being served."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http = Histogram(
            "cinerec_http_request_seconds",
            "HTTP request latency",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "cinerec_pipeline_stage_seconds",
            "Pipeline stage latency",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "cinerec_cache_requests", "Recommendation cache lookups", ["result"], registry=r
        )
        self.candidates = Histogram(
            "cinerec_candidates", "Candidates per request and recall source", ["source"],
            buckets=CANDIDATE_BUCKETS, registry=r,
        )  # fmt: skip
        self.errors = Counter("cinerec_errors", "Errors by kind", ["route", "kind"], registry=r)
        self.feedback = Counter(
            "cinerec_feedback_events", "Feedback events", ["action"], registry=r
        )
        self.answers = Counter(
            "cinerec_recommendations", "Answers by source", ["source"], registry=r
        )
        self.model = Gauge(
            "cinerec_model_info", "The model version served (value 1)",
            ["version", "config_hash"], registry=r,
        )  # fmt: skip
        self.reloads = Counter("cinerec_model_reloads", "Model reloads", ["result"], registry=r)
        self.dependency = Gauge(
            "cinerec_dependency_up", "1 when a dependency answers", ["name"], registry=r
        )

    def set_model(self, version: str, config_hash: str) -> None:
        self.model.clear()
        self.model.labels(version=version, config_hash=config_hash).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
