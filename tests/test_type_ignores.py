"""Every ``type: ignore`` in the package names its error code and says why.

mypy (``make test``) already refuses an ignore without a code (``ignore-without-code``) and
one that no longer suppresses anything (``warn_unused_ignores``); the reason after it is
this project's rule, checked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import cinerec

_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[\w\-, ]+\])?(?P<rest>.*)$")
_REASON = re.compile(r"\s+#\s*\S")


def unexplained(lines: Iterable[str]) -> list[int]:
    """1-based numbers of the lines whose ``type: ignore`` lacks a code or a reason."""
    bad = []
    for number, line in enumerate(lines, start=1):
        match = _IGNORE.search(line)
        if match and not (match["code"] and _REASON.match(match["rest"])):
            bad.append(number)
    return bad


def test_the_check_tells_an_explained_ignore_from_a_bare_one() -> None:
    lines = [
        "x = f()  # type: ignore[attr-defined]  # faiss's stubs lack it",
        "x = f()  # type: ignore",
        "x = f()  # type: ignore[attr-defined]",
        "x = f()  # type: ignore  # a reason but no code",
        "x = f()  # type:ignore[arg-type,union-attr]  # both",
        "x = f()  # no ignore here",
    ]
    assert unexplained(lines) == [2, 3, 4]


def test_every_ignore_in_the_package_has_a_code_and_a_reason() -> None:
    root = Path(cinerec.__file__).parent
    bad = [
        f"{path.relative_to(root.parent)}:{number}"
        for path in sorted(root.rglob("*.py"))
        for number in unexplained(path.read_text(encoding="utf-8").splitlines())
    ]
    assert not bad, f"type: ignore without an error code and a reason: {bad}"
