"""Pipeline configs: TOML / YAML files, strict validation, a stable digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from cinerec.pipeline.config import (
    ConfigError,
    PipelineConfig,
    default_config,
    dump_config,
    load_config,
)

TOML = """
version = 1
name = "turkish-series"
editor_picks = ["netflix:s1"]

[recall]
max_candidates = 800
[[recall.sources]]
name = "als"
kind = "ann"
model = "als"
quota = 400
[[recall.sources]]
name = "editor"
kind = "editor"

[rerank]
mmr_lambda = 0.7
genre_cap = 3
pins = [{ item_id = "netflix:s9", position = 2 }]
"""


def test_toml_and_yaml_give_the_same_config_and_digest(tmp_path: Path) -> None:
    toml_path = tmp_path / "pipeline.toml"
    toml_path.write_text(TOML)
    config = load_config(toml_path)
    assert config.recall.max_candidates == 800
    assert [s.name for s in config.recall.sources] == ["als", "editor"]
    assert config.rerank.pins[0].position == 2
    yaml_path = dump_config(config, tmp_path / "pipeline.yaml")
    again = load_config(yaml_path)
    assert again == config
    assert again.digest() == config.digest()
    assert len(config.digest()) == 16


def test_digest_changes_with_any_setting() -> None:
    base = default_config(["als", "ease", "pop"])
    changed = PipelineConfig.model_validate(
        {**base.model_dump(), "rerank": {**base.rerank.model_dump(), "mmr_lambda": 0.5}}
    )
    assert base.digest() != changed.digest()
    assert base.digest() == default_config(["als", "ease", "pop"]).digest()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[recall]\nsourcez = 1\n", "recall.sourcez"),
        ("[rerank]\nmmr_lambda = 2.0\n", "rerank.mmr_lambda"),
        ('[[recall.sources]]\nname = "x"\nkind = "ann"\n', "needs a model"),
        ('[[recall.sources]]\nname = "x"\nkind = "magic"\nmodel = "als"\n', "kind"),
        ("version = 2\n", "version"),
        ("[rank]\nranker = 'xgboost'\n", "rank.ranker"),
    ],
)
def test_invalid_configs_name_the_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[recall\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    other = tmp_path / "config.ini"
    other.write_text("x=1")
    with pytest.raises(ConfigError, match="unknown config format"):
        load_config(other)


def test_default_config_uses_only_the_bundle_models() -> None:
    config = default_config(["pop", "ease"])
    assert {s.model for s in config.recall.sources} == {"pop", "ease", None}
    assert config.source("editor") is not None


def test_the_shipped_config_file_is_the_default_pipeline() -> None:
    from cinerec.training.train import DEFAULT_TRAIN_MODELS

    shipped = load_config(Path(__file__).parents[2] / "configs" / "pipeline.toml")
    assert shipped == default_config(DEFAULT_TRAIN_MODELS)
