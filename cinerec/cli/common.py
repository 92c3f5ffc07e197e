"""Pieces every ``cinerec`` command module shares: common options and summary output."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cinerec.console import out_console, print_json

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
MirrorOpt = Annotated[
    str | None,
    typer.Option(
        "--mirror",
        envvar="CINEREC_DATA_MIRROR",
        help="Local folder or base URL mirroring the public datasets.",
    ),
]
CacheOpt = Annotated[
    Path | None, typer.Option("--cache", envvar="CINEREC_CACHE", help="Download cache folder.")
]


def print_summary(summary: dict, json_: bool) -> None:
    if json_:
        print_json(summary)
        return
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in summary.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        table.add_row(str(key), shown)
    out_console.print(table)
