"""The folder of input files every CLI test module runs the commands in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.runner import write_inputs


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder (per module) holding the interactions-only CSVs and broken variants."""
    return write_inputs(tmp_path_factory.mktemp("cli"))
