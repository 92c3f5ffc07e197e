"""Rewrite the result tables in README.md and docs/*.md from the benchmarks' JSON reports.

A table lives between two marker comments, each on a line of its own; the opening one
names the kind of table and the reports it is built from, as paths under
``reports/benchmarks/`` (a folder means its ``results.json``; for ``serving``, ``+`` joins
repeated runs into one row of medians):

    <!-- results:ablation offline_accuracy/ml-latest-small-leave-last-1 -->
    (generated; edits here are overwritten)
    <!-- /results -->

    python benchmarks/render_docs.py           # rewrite the tables in place
    python benchmarks/render_docs.py --check   # exit 1 naming every stale table

A benchmark run rewrites its JSON; running this afterwards brings the docs along, and the
test suite runs ``--check`` so a table can never disagree with its report. Kinds are in
:data:`KINDS`; the tables themselves are built in :mod:`doc_tables`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import doc_tables

ROOT = Path(__file__).resolve().parents[1]
REPORTS = Path("reports/benchmarks")
MARKER = re.compile(
    r"^<!-- results:(?P<kind>[a-z-]+)(?P<args>[^>\n]*?) -->\n(?P<body>.*?)^<!-- /results -->",
    re.S | re.M,
)
OPENING = re.compile(r"^<!-- results:", re.M)

#: kind → (table builder, how it takes its reports: "one" report, a list of "many",
#: or "groups" of repeated runs).
KINDS: dict[str, tuple[Callable[[Any], str], str]] = {
    "ablation": (doc_tables.ablation_table, "one"),
    "evaluation": (doc_tables.evaluation_table, "one"),
    "headline": (doc_tables.headline_table, "many"),
    "neural": (doc_tables.neural_table, "many"),
    "sasrec-sweep": (doc_tables.sasrec_sweep_table, "one"),
    "serving": (doc_tables.serving_table, "groups"),
    "pipeline-latency": (doc_tables.pipeline_latency_table, "one"),
    "ann": (doc_tables.ann_table, "one"),
    "als-overhead": (doc_tables.als_overhead_table, "one"),
    "sequence-latency": (doc_tables.sequence_latency_table, "one"),
    "eval-speed": (doc_tables.eval_speed_table, "one"),
}


class DocError(Exception):
    """A marker that cannot be rendered: unknown kind, missing report, unclosed block."""


@dataclass(frozen=True)
class Block:
    """One generated table: where it is, what it is built from, and whether it is stale."""

    path: str
    line: int
    kind: str
    args: tuple[str, ...]
    stale: bool

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: results:{self.kind} {' '.join(self.args)}"


def load_report(reports: Path, name: str) -> Any:
    """The parsed JSON of ``reports/<name>`` (``<name>/results.json`` for a folder)."""
    path = reports / name
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise DocError(f"{path}: no such report (run the benchmark that writes it)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DocError(f"{path}: not JSON ({exc})") from None


def build(kind: str, args: Sequence[str], reports: Path) -> str:
    """The Markdown of one ``results:<kind> <args>`` block."""
    if kind not in KINDS:
        raise DocError(f"unknown table kind {kind!r} (known: {', '.join(KINDS)})")
    builder, arity = KINDS[kind]
    if not args:
        raise DocError(f"results:{kind} names no report")
    if arity == "one":
        if len(args) != 1:
            raise DocError(f"results:{kind} takes one report, got {len(args)}")
        return builder(load_report(reports, args[0]))
    if arity == "many":
        return builder([load_report(reports, a) for a in args])
    groups = [[load_report(reports, name) for name in arg.split("+")] for arg in args]
    try:
        return builder(groups)
    except ValueError as exc:
        raise DocError(f"results:{kind}: {exc}") from None


def render(text: str, reports: Path, path: str = "<text>") -> tuple[str, list[Block]]:
    """``text`` with every results block rebuilt, and the blocks found (stale or not)."""
    blocks: list[Block] = []
    pieces: list[str] = []
    position = 0
    for match in MARKER.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        inner = match.group("body")
        if OPENING.search(inner):
            raise DocError(f"{path}:{line}: results block not closed before the next one")
        kind, args = match.group("kind"), tuple(match.group("args").split())
        try:
            table = build(kind, args, reports)
        except DocError as exc:
            raise DocError(f"{path}:{line}: {exc}") from None
        body = f"\n{table}\n\n"
        blocks.append(Block(path, line, kind, args, stale=body != inner))
        opening = text[match.start() : match.start("body")]
        pieces += [text[position : match.start()], opening, body, "<!-- /results -->"]
        position = match.end()
    rest = text[position:]
    if unclosed := OPENING.search(rest):
        line = text.count("\n", 0, position + unclosed.start()) + 1
        raise DocError(f"{path}:{line}: results marker without <!-- /results -->")
    return "".join(pieces) + rest, blocks


def doc_files(root: Path) -> list[Path]:
    """The files whose tables are generated: README.md and every docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def refresh(root: Path, reports: Path, *, write: bool) -> list[Block]:
    """Render every doc file; with ``write``, save the ones that changed — only once all of
    them rendered, so an error leaves every file as it was. Returns all blocks."""
    found: list[Block] = []
    changed: dict[Path, str] = {}
    for file in doc_files(root):
        text = file.read_text()
        new, blocks = render(text, reports, str(file.relative_to(root)))
        found += blocks
        if new != text:
            changed[file] = new
    if write:
        for file, new in changed.items():
            file.write_text(new)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale tables, change nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    parser.add_argument("--reports", type=Path, default=None, help="default: reports/benchmarks")
    args = parser.parse_args(argv)
    reports = args.reports or args.root / REPORTS
    try:
        blocks = refresh(args.root, reports, write=not args.check)
    except DocError as exc:
        print(f"render_docs: {exc}", file=sys.stderr)
        return 2
    stale = [b for b in blocks if b.stale]
    for block in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {block}")
    print(f"{len(blocks)} tables, {len(stale)} {'stale' if args.check else 'rewritten'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
