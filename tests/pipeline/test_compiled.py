"""The LightGBM forest compiled to native code: LightGBM's scores, a verified cache, and
LightGBM itself whenever compiling is off or fails."""

from __future__ import annotations

import logging
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from cinerec.pipeline.rankers import LightGBMRanker, RankingData, load_ranker
from cinerec.pipeline.rankers.compiled import COMPILE_ENV, CompiledForest

N_FEATURES = 6


def ranking_data(queries: int, seed: int) -> RankingData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(queries * 30, N_FEATURES)).astype(np.float32)
    x[rng.random(len(x)) < 0.1, 2] = np.nan  # missing values take the trees' default side
    labels = np.clip(np.rint(x[:, 0] + np.nan_to_num(x[:, 2]) * x[:, 1] + 1), 0, 3)
    names = tuple(f"x{i}" for i in range(N_FEATURES))
    return RankingData(x, labels.astype(np.float32), np.full(queries, 30), names)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LightGBMRanker]:
    ranker = LightGBMRanker(n_estimators=40, num_leaves=7).fit(ranking_data(30, 1), seed=0)
    folder = tmp_path_factory.mktemp("ranker")
    ranker.save(folder)
    return folder, ranker


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(COMPILE_ENV, raising=False)
    return tmp_path / "cache"


def test_compiled_scores_equal_lightgbm_and_the_object_is_reused(
    saved: tuple[Path, LightGBMRanker], cache: Path
) -> None:
    folder, _ = saved
    model_file = folder / "lightgbm.txt"
    forest = CompiledForest.compile(model_file)
    assert forest is not None
    assert forest.object_file.parent == cache / "compiled_rankers"
    x = ranking_data(10, 7).features
    expected = lgb.Booster(model_file=str(model_file)).predict(x, num_threads=1)
    np.testing.assert_allclose(forest.predict(x), expected, rtol=0, atol=1e-12)
    built = forest.object_file.stat().st_mtime_ns
    again = CompiledForest.compile(model_file)
    assert again is not None and again.object_file == forest.object_file
    assert forest.object_file.stat().st_mtime_ns == built  # loaded, not compiled again
    np.testing.assert_allclose(again.predict(x), expected, rtol=0, atol=1e-12)


def test_a_damaged_object_file_is_compiled_again_not_loaded(
    saved: tuple[Path, LightGBMRanker], cache: Path
) -> None:
    model_file = saved[0] / "lightgbm.txt"
    forest = CompiledForest.compile(model_file)
    assert forest is not None
    forest.object_file.write_bytes(b"\x7fELF truncated")  # LLVM would abort the process
    repaired = CompiledForest.compile(model_file)
    assert repaired is not None
    x = ranking_data(3, 8).features
    np.testing.assert_allclose(repaired.predict(x), forest.predict(x), rtol=0, atol=1e-12)
    assert forest.object_file.read_bytes() != b"\x7fELF truncated"


def test_loaded_ranker_predicts_compiled_with_lightgbm_scores(
    saved: tuple[Path, LightGBMRanker], cache: Path
) -> None:
    folder, fitted = saved
    loaded = load_ranker(folder)
    assert isinstance(loaded, LightGBMRanker) and loaded.compiled is not None
    assert fitted.compiled is None  # a freshly fitted ranker predicts with LightGBM
    data = ranking_data(10, 9)
    np.testing.assert_allclose(
        loaded.predict(data.features), fitted.predict(data.features), rtol=0, atol=1e-9
    )


def test_switched_off_or_failing_falls_back_to_lightgbm(
    saved: tuple[Path, LightGBMRanker],
    cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(COMPILE_ENV, "0")
    loaded = load_ranker(saved[0])
    assert isinstance(loaded, LightGBMRanker) and loaded.compiled is None
    x = ranking_data(4, 3).features
    np.testing.assert_allclose(loaded.predict(x), saved[1].predict(x))
    monkeypatch.delenv(COMPILE_ENV)
    broken = tmp_path / "broken.txt"
    broken.write_text("tree\nnot a LightGBM model\n")
    with caplog.at_level(logging.WARNING):
        assert CompiledForest.compile(broken) is None
    assert "LightGBM predicts" in caplog.text
