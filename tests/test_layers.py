"""The package layers point down: the survey script agrees with import-linter's contract."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _house() -> ModuleType:
    spec = importlib.util.spec_from_file_location("house", ROOT / "benchmarks" / "house.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["house"] = module
    spec.loader.exec_module(module)
    return module


def test_cinerec_has_no_upward_import_and_no_cycle() -> None:
    house = _house().survey(ROOT)
    assert house.upward_imports == [] and house.package_cycles == []


def test_an_upward_import_inside_a_function_is_found(tmp_path: Path) -> None:
    package = tmp_path / "cinerec"
    for layer in ("models", "training"):
        (package / layer).mkdir(parents=True)
        (package / layer / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "training" / "tune.py").write_text("from cinerec.models import space\n")
    (package / "models" / "space.py").write_text(
        "def late():\n    from ..training import tune\n    return tune\n"
    )
    house = _house().survey(tmp_path)
    assert house.upward_imports == ["cinerec/models/space.py:2 -> cinerec.training"]
    assert house.package_cycles == ["models<->training"]


def test_import_linter_contract_is_kept() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout
