"""Service settings from the environment (or a .env file): embedded defaults, real parts when set.

With nothing configured the service runs in one process — SQLite event log, in-process
state and cache, a local bundle. ``DATABASE_URL`` switches the event log to PostgreSQL,
``REDIS_URL`` the state, cache and event stream to Redis, ``CINEREC_REGISTRY`` serves
the registry's promoted version (hot-reloaded) instead of a fixed bundle folder.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the API process reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="CINEREC_", env_file=".env", extra="ignore")

    bundle: Path | None = Field(default=Path("bundles/demo"))
    registry: str | None = None  # local path or fsspec URL; overrides ``bundle``
    registry_poll_s: float = 10.0
    database_url: str = Field(
        default="sqlite:///data/events.db",
        validation_alias=AliasChoices("DATABASE_URL", "CINEREC_DATABASE_URL"),
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "CINEREC_REDIS_URL")
    )
    redis_prefix: str = "cinerec"  # namespace of every Redis key (state, cache, stream, batch)
    # With Redis, fold the event stream into the shared aggregates in a thread of this
    # process. Off by default: `cinerec stream consume` beside the API does it without
    # competing for the API's interpreter (in-process it put a ~44 ms step on feedback).
    stream_consumer: bool = False
    # Pipeline runs at once per process. More threads than this only fight over the GIL:
    # at 16 concurrent requests each cost 19 ms of CPU instead of 10 (benchmarks/serving.py).
    pipeline_concurrency: int = Field(default=2, ge=1, le=64)
    # Worker processes running the pipeline (each loads the bundle; serving/workers.py);
    # 0 runs it in this process's threads. One per core lets a process use every core
    # without several uvicorn workers (which need Redis to share state). None (the
    # default): one per usable core as memory allows (workers.default_processes), logged.
    pipeline_processes: int | None = Field(default=None, ge=0, le=64)
    # How often the editor picks are re-read from the database (another replica's change).
    editor_picks_poll_s: float = Field(default=5.0, ge=0)
    # FastAPI's built-in OpenTelemetry spans and metrics (serving/app.py `telemetry_options`).
    opentelemetry: bool = False
    # Admin endpoints need this key in the X-API-Key header; None accepts no key at all.
    admin_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("ADMIN_API_KEY", "CINEREC_ADMIN_API_KEY")
    )
    cache_ttl_s: float = 300.0
    batch_scores: bool = True  # use nightly batch-scored lists for users without activity
    max_k: int = 100
    max_batch: int = 1000  # events per feedback batch
    max_body_bytes: int = 1_000_000
    max_list: int = 50  # entries in list-valued filters / recent items
    recent_events: int = 200  # online events per user read into a request
