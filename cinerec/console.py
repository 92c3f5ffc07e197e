"""Terminal output shared by CLI commands: rich tables for people, one JSON document for tools.

Progress and logs go to stderr, results to stdout, so ``--json`` output can be piped.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

err_console = Console(stderr=True)
#: Results go to stdout; when it is a file or a pipe, tables are not squeezed into 80 columns.
out_console = Console(width=None if sys.stdout.isatty() else 160)


def to_jsonable(value: Any) -> Any:
    """Convert numpy / pandas / path values nested in dicts and lists to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def print_json(document: Any) -> None:
    """Print exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(document), indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


def print_error(message: str) -> None:
    """One clear line on stderr, no traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
