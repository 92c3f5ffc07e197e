"""Pieces every ``cinerec`` command module shares: the --json flag and summary output."""

from __future__ import annotations

from typing import Annotated

import typer

from cinerec.console import out_console, print_json

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


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
