"""The docs stay true: a short README, links that resolve, and only commands, flags, routes
and environment variables that the code has (result tables: tests/benchmarks/)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*$", re.M)
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`([^`\n]+)`")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
CLI_MENTION = re.compile(r"(?<![\w/.-])cinerec((?: [a-z][a-z-]*)*)")
ENV_NAME = re.compile(r"\bCINEREC_[A-Z][A-Z0-9_]*\b")
API_PATH = re.compile(r"(?<![\w.:/])/v1/[^\s`'\"?)|,]*")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(h) for h in HEADING.findall(text)}


def code_spans(text: str) -> list[str]:
    """Inline code and fenced blocks (continued lines joined, comments dropped)."""
    spans = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            spans.append(line.split(" #", 1)[0])
    spans += INLINE.findall(FENCE.sub("", text))
    return spans


def test_readme_is_a_short_guide() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    text = "\n".join(lines)
    for needed in ("make demo", "make test", "docs/", "CHANGELOG.md"):
        assert needed in text


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", doc.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.name}")
    assert not broken, f"{doc.name}: " + "; ".join(broken)


def test_the_link_checker_catches_broken_links(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n## The online service\n")
    assert anchors(tmp_path / "a.md") == {"title", "the-online-service"}
    assert slug("3 Rank") == "3-rank" and slug("The pipeline, one request") == (
        "the-pipeline-one-request"
    )
    assert LINK.findall("see [x](docs/x.md#a) and ![img](p.png)") == ["docs/x.md#a"]


def cli_tree() -> Any:
    """The click command tree of ``cinerec`` (typer vendors its own click, so the types
    are duck-typed: a group is a command with ``commands``)."""
    from cinerec.cli import app

    return typer.main.get_command(app)


def resolve(words: list[str]) -> tuple[list[Any], str]:
    """The commands a ``cinerec w1 w2 …`` mention names, and the path that was understood."""
    command = cli_tree()
    path: list[str] = []
    for word in words:
        if not hasattr(command, "commands"):
            break
        if word not in command.commands:
            raise AssertionError(f"no command 'cinerec {' '.join([*path, word])}'")
        command = command.commands[word]
        path.append(word)
    return [command], " ".join(path)


def options(commands: list[Any]) -> set[str]:
    return {
        opt
        for command in commands
        for param in command.params
        for opt in (*param.opts, *param.secondary_opts)
    } | {"--help"}


def test_documented_cinerec_commands_and_flags_exist() -> None:
    problems = []
    for doc in DOCS[:1] + DOCS[2:]:  # the changelog quotes history
        for span in code_spans(doc.read_text()):
            for match in CLI_MENTION.finditer(span):
                words = match.group(1).split()
                try:
                    commands, path = resolve(words)
                except AssertionError as exc:
                    problems.append(f"{doc.name}: {exc}")
                    continue
                rest = span[match.end() :].split(" | ")[0].split(";")[0]
                for flag in FLAG.findall(rest):
                    if flag not in options(commands):
                        problems.append(f"{doc.name}: cinerec {path} has no {flag}")
    assert not problems, "\n".join(problems)


def test_cli_reference_paragraphs_name_real_flags() -> None:
    """In docs/cli.md a paragraph headed **`cinerec …`** may only name that command's flags."""
    problems = []
    for paragraph in (ROOT / "docs" / "cli.md").read_text().split("\n\n"):
        heads = re.findall(r"\*\*`(?:cinerec )?([a-z][a-z -]*?)(?: [A-Z-]|`)", paragraph)
        if not paragraph.startswith("**`cinerec"):
            continue
        group = heads[0].split()[0]
        commands = []
        for head in heads:
            words = head.split()
            words = words if words[0] == group else [group, *words]
            commands += resolve(words)[0]
        for flag in set(FLAG.findall(paragraph)) - options(commands):
            problems.append(f"{heads}: {flag}")
    assert not problems, problems


def test_every_cinerec_command_is_documented() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    missing = []
    for name, command in cli_tree().commands.items():
        subs = getattr(command, "commands", None)
        wanted = [f"{name} {sub}" for sub in subs] if subs else [f"cinerec {name}"]
        missing += [w for w in wanted if w not in text]
    assert not missing, f"docs/cli.md lacks {missing}"


def test_documented_benchmark_flags_exist() -> None:
    """A section of docs/benchmarks.md that names benchmark scripts only names their flags."""
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    problems = []
    for section in re.split(r"^#{2,3} ", text, flags=re.M):
        scripts = set(re.findall(r"(?<![\w/])benchmarks/(\w+)\.py", section))
        sources = [(ROOT / "benchmarks" / f"{s}.py").read_text() for s in scripts]
        for span in code_spans(section):
            if span.lstrip().startswith("cinerec") or not sources:
                continue
            for flag in FLAG.findall(span):
                if not any(f'"{flag}"' in source for source in sources):
                    problems.append(f"{flag} is not a flag of {sorted(scripts)}")
    for doc in DOCS:
        for script, args in re.findall(r"(?<![\w/])benchmarks/(\w+)\.py([^`\n]*)", doc.read_text()):
            path = ROOT / "benchmarks" / f"{script}.py"
            assert path.is_file(), f"{doc.name}: no benchmarks/{script}.py"
            for flag in FLAG.findall(args):
                if f'"{flag}"' not in path.read_text():
                    problems.append(f"{doc.name}: benchmarks/{script}.py has no {flag}")
    assert not problems, "\n".join(problems)


def code_env_names() -> set[str]:
    names = set()
    for folder in ("cinerec", "benchmarks", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(ENV_NAME.findall(path.read_text()))
    return names | set(ENV_NAME.findall((ROOT / "Makefile").read_text()))


def settings_env_names() -> set[str]:
    """Every name ``Settings`` reads: ``CINEREC_<FIELD>`` or its alias choices."""
    from pydantic import AliasChoices

    from cinerec.serving.settings import Settings

    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice) for choice in alias.choices}
        else:
            names.add(f"CINEREC_{field_name.upper()}")
    return names


def test_every_environment_variable_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    code = code_env_names() | settings_env_names()
    undocumented = sorted(n for n in code if not re.search(rf"\b{n}\b", text))
    assert not undocumented, f"docs/configuration.md lacks {undocumented}"


def test_documented_environment_variables_exist() -> None:
    known = code_env_names() | settings_env_names()
    unknown = []
    for doc in DOCS[:1] + DOCS[2:]:
        unknown += [f"{doc.name}: {n}" for n in ENV_NAME.findall(doc.read_text()) if n not in known]
    assert not unknown, unknown


def route_patterns() -> dict[str, re.Pattern[str]]:
    from fastapi.routing import APIRoute

    from cinerec.serving.routes import admin, api, ops

    paths = {
        r.path for router in (api, ops, admin) for r in router.routes if isinstance(r, APIRoute)
    }
    return {p: re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(p)) + "$") for p in paths}


def test_every_route_is_documented_and_documented_routes_exist() -> None:
    patterns = route_patterns()
    api_doc = (ROOT / "docs" / "api.md").read_text()
    assert not [p for p in patterns if p not in api_doc], "routes missing from docs/api.md"
    unknown = []
    for doc in DOCS[:1] + DOCS[2:]:
        for path in API_PATH.findall(doc.read_text()):
            path = path.rstrip(".")
            if not any(p.match(path) for p in patterns.values()):
                unknown.append(f"{doc.name}: {path}")
    assert not unknown, unknown


REPO_PATH = re.compile(r"(?<![\w/.-])((?:cinerec|tests|benchmarks|configs|\.ci)/[\w./-]*)")


def test_files_the_docs_name_exist() -> None:
    missing = []
    for doc in DOCS[:1] + DOCS[2:]:
        for path in REPO_PATH.findall(doc.read_text()):
            path = path.rstrip(".")
            if not (ROOT / path).exists():
                missing.append(f"{doc.name}: {path}")
    assert not missing, missing
