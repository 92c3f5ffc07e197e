"""Typed, versioned pipeline configuration, read from TOML or YAML.

A pipeline is declared, not coded: which recall sources run with which quotas, how
candidates are filtered, which ranker orders them and how the final list is re-ranked.
Every section is a pydantic model that rejects unknown keys, so a typo in a config file is
an error naming the field rather than a silently ignored setting. :meth:`PipelineConfig.digest`
(sha256 of the canonical JSON) goes into the bundle manifest and every response, so a list
can always be traced to the exact configuration that produced it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cinerec.errors import CinerecError

CONFIG_VERSION: Final = 1

SourceKind = Literal["model", "ann", "item2item", "sequence", "trending", "editor"]
RankerKind = Literal["auto", "lightgbm", "neural", "fusion", "none"]


class ConfigError(CinerecError, ValueError):
    """A pipeline config file that cannot be read or does not validate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """One recall source.

    ``kind``: ``model`` ranks the catalog with a bundle model's ``score``; ``ann`` asks a
    Faiss index over a factor/content model's item vectors with the user's vector;
    ``item2item`` expands the ``recent`` latest history items through a model's item-item
    neighbours; ``sequence`` scores the next item with a sequence model (SASRec) on the
    request-time sequence; ``trending`` takes the trending model's top (by the viewer's
    country when the catalog knows it); ``editor`` the operator's editor picks.
    """

    name: str = Field(min_length=1)
    kind: SourceKind
    model: str | None = None  # bundle model the source uses; None for "editor"
    quota: Annotated[int, Field(ge=1, le=5000)] = 200
    recent: Annotated[int, Field(ge=1, le=200)] = 10  # item2item: seed items
    enabled: bool = True

    @model_validator(mode="after")
    def _needs_model(self) -> SourceConfig:
        if self.kind != "editor" and not self.model:
            raise ValueError(f"source '{self.name}' of kind '{self.kind}' needs a model")
        return self


class RecallConfig(_Strict):
    """Recall: the union of the sources, de-duplicated, capped at ``max_candidates``."""

    sources: tuple[SourceConfig, ...] = ()
    max_candidates: Annotated[int, Field(ge=1, le=10000)] = 1000

    @model_validator(mode="after")
    def _unique_names(self) -> RecallConfig:
        names = [s.name for s in self.sources]
        if len(names) != len(set(names)):
            raise ValueError(f"recall source names must be unique, got {names}")
        return self


class FilterConfig(_Strict):
    """Which already-known items may come back."""

    exclude_seen: bool = True
    exclude_skipped: bool = True
    # The latest ``continue_watching_max`` series the user watched within
    # ``continue_watching_days`` may return as "continue watching".
    continue_watching: bool = True
    continue_watching_days: Annotated[float, Field(gt=0)] = 30.0
    continue_watching_max: Annotated[int, Field(ge=0, le=50)] = 2  # latest series only


class RankConfig(_Strict):
    """The ranker and how many ranked candidates go on to re-ranking."""

    ranker: RankerKind = "auto"
    top_n: Annotated[int, Field(ge=1, le=2000)] = 100


class Pin(_Strict):
    """An editor pin: ``item_id`` at 1-based ``position`` of every list it is eligible for."""

    item_id: str = Field(min_length=1)
    position: Annotated[int, Field(ge=1, le=1000)]


class RerankConfig(_Strict):
    """Final ordering: ``rank_weight``·rank score + (1−rank_weight)·rule boost, then MMR.

    ``freshness_weight`` adds a boost to items released within ``freshness_years``;
    ``mmr_lambda`` is MMR's relevance weight (1 disables diversity); ``genre_cap`` limits
    how many of the top-k share one genre (None: no cap); ``serendipity_slots`` reserves
    that many places for well-ranked items outside the user's usual genres.
    """

    rank_weight: Annotated[float, Field(ge=0, le=1)] = 0.9
    freshness_weight: Annotated[float, Field(ge=0, le=1)] = 0.0
    freshness_years: Annotated[float, Field(gt=0)] = 2.0
    mmr_lambda: Annotated[float, Field(ge=0, le=1)] = 0.9
    # Similarity MMR penalises: content vectors, or the genre sets diversity is measured on.
    mmr_space: Literal["content", "genres"] = "content"
    genre_cap: Annotated[int, Field(ge=1)] | None = None
    serendipity_slots: Annotated[int, Field(ge=0, le=10)] = 0
    pins: tuple[Pin, ...] = ()
    # Choose mmr_lambda and genre_cap on validation when training: the most accurate policy
    # whose genre diversity is at least the best single model's (rerank_tuning.py).
    tune: bool = True


class PipelineConfig(_Strict):
    """A whole pipeline: recall → filter → rank → re-rank → explain."""

    version: Literal[1] = CONFIG_VERSION
    name: str = "default"
    recall: RecallConfig = RecallConfig()
    filters: FilterConfig = FilterConfig()
    rank: RankConfig = RankConfig()
    rerank: RerankConfig = RerankConfig()
    editor_picks: tuple[str, ...] = ()
    explain: bool = True

    def digest(self) -> str:
        """sha256 (hex, first 16 chars) of the canonical JSON of the config."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def source(self, name: str) -> SourceConfig | None:
        return next((s for s in self.recall.sources if s.name == name), None)


def default_sources(models: list[str] | tuple[str, ...]) -> tuple[SourceConfig, ...]:
    """The recall sources a bundle with ``models`` supports, with default quotas."""
    plan: list[tuple[str, SourceKind, str, int]] = [
        ("als", "ann", "als", 300),
        ("ease", "model", "ease", 300),
        ("itemknn", "item2item", "itemknn", 200),
        ("content", "ann", "content", 200),
        ("sequence", "sequence", "sasrec", 200),
        ("trending", "trending", "trending", 100),
        ("popular", "model", "pop", 100),
    ]
    sources = [
        SourceConfig(name=name, kind=kind, model=model, quota=quota)
        for name, kind, model, quota in plan
        if model in models
    ]
    sources.append(SourceConfig(name="editor", kind="editor", quota=50))
    return tuple(sources)


def default_config(models: list[str] | tuple[str, ...]) -> PipelineConfig:
    """The default pipeline for a bundle holding ``models``."""
    return PipelineConfig(recall=RecallConfig(sources=default_sources(models)))


def parse_config(data: dict[str, Any], origin: str = "<config>") -> PipelineConfig:
    """Validate a mapping; errors name ``origin`` and the offending field."""
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{origin}: {problems}") from exc


def load_config(path: str | Path) -> PipelineConfig:
    """Read a ``.toml``, ``.yaml`` / ``.yml`` or ``.json`` pipeline config."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{path}: unknown config format (use .toml, .yaml or .json)")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table / mapping")
    return parse_config(data, str(path))


def dump_config(config: PipelineConfig, path: str | Path) -> Path:
    """Write ``config`` as TOML-compatible JSON or YAML by the file's extension."""
    path = Path(path)
    data = config.model_dump(mode="json", exclude_none=True)
    if path.suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    else:
        path.write_text(json.dumps(data, indent=2))
    return path
