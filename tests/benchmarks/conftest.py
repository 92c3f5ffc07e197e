"""The benchmark scripts import each other as top-level modules (they run as
``python benchmarks/x.py``, with benchmarks/ first on the path); tests import them the same way."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
