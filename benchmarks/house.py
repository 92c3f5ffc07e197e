"""The state of the house: layer violations, package cycles, module sizes, README length.

An AST walk over every import of ``cinerec/`` (module level or inside a function, relative
imports resolved) counts imports that point up the stack
``data → features → retrieval → models → pipeline → evaluation → training → serving → cli``
and pairs of packages that import each other. ``make test`` enforces the same rule with
import-linter; this script prints the figures (and writes JSON with ``--json``) so that a
report can quote them.

    python benchmarks/house.py [--json reports/benchmarks/house.json]
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = (
    "data",
    "features",
    "retrieval",
    "models",
    "pipeline",
    "evaluation",
    "training",
    "serving",
    "cli",
)
MAX_MODULE_LINES = 400
MAX_README_LINES = 200


def module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, package_root: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports, absolute, with its line number."""
    own = module_name(path, package_root).split(".")
    if path.name != "__init__.py":
        own = own[:-1]  # the package a relative import starts from
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own[: len(own) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((target, node.lineno))
    return found


def _bare_ignores(text: str) -> int:
    """``type: ignore`` comments missing an error code or a reason after it."""
    found = re.findall(r"type:\s*ignore(\[[^\]]*\])?(.*)$", text, flags=re.MULTILINE)
    return sum(1 for code, rest in found if not code or not rest.strip(" #"))


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "cinerec" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


@dataclass
class House:
    """The figures :func:`survey` measures."""

    upward_imports: list[str]
    package_cycles: list[str]
    modules: int
    modules_over_limit: dict[str, int]
    largest_module: tuple[str, int]
    bare_type_ignores: int
    readme_lines: int


def survey(root: Path = ROOT) -> House:
    package = root / "cinerec"
    upward: list[str] = []
    edges: set[tuple[str, str]] = set()
    sizes: dict[str, int] = {}
    for path in sorted(package.rglob("*.py")):
        rel = str(path.relative_to(root))
        sizes[rel] = len(path.read_text().splitlines())
        source = layer_of(module_name(path, package))
        for target, line in imported_modules(path, package):
            dest = layer_of(target)
            if source is None or dest is None or dest == source:
                continue
            edges.add((source, dest))
            if LAYERS.index(dest) > LAYERS.index(source):
                upward.append(f"{rel}:{line} -> {target}")
    readme = root / "README.md"
    return House(
        upward_imports=upward,
        package_cycles=sorted(f"{a}<->{b}" for a, b in edges if (b, a) in edges and a < b),
        modules=len(sizes),
        modules_over_limit={k: v for k, v in sizes.items() if v >= MAX_MODULE_LINES},
        largest_module=max(sizes.items(), key=lambda kv: kv[1]),
        bare_type_ignores=sum(_bare_ignores(p.read_text()) for p in package.rglob("*.py")),
        readme_lines=len(readme.read_text().splitlines()) if readme.exists() else 0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = parser.parse_args()
    house = survey()
    print(f"upward imports:        {len(house.upward_imports)}")
    for line in house.upward_imports:
        print(f"  {line}")
    print(f"package cycles:        {len(house.package_cycles)} {house.package_cycles}")
    over = house.modules_over_limit
    print(f"modules >= {MAX_MODULE_LINES} lines: {len(over)} of {house.modules} {over}")
    print(f"largest module:        {house.largest_module}")
    print(f"type: ignore without code or reason: {house.bare_type_ignores}")
    print(f"README lines:          {house.readme_lines} (limit {MAX_README_LINES})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(house), indent=2) + "\n")


if __name__ == "__main__":
    main()
