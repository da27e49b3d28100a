"""mypy must reject wrong `enqueue` arguments: runs mypy on enqueue_cases.py and compares its
errors and notes, line by line, with the `# E:` and `# N:` marks in that file.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).with_name("enqueue_cases.py")
ROOT = Path(__file__).parents[2]
_MARK = re.compile(r"#\s*([EN]):\s*(.+?)\s*$")
_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<level>error|note): (?P<text>.*)$")


def expected() -> set[tuple[int, str, str]]:
    marks = set()
    for number, line in enumerate(CASES.read_text().splitlines(), start=1):
        found = _MARK.search(line)
        if found:
            marks.add((number, found.group(1), found.group(2)))
    return marks


def reported(output: str) -> set[tuple[int, str, str]]:
    seen = set()
    for line in output.splitlines():
        found = _LINE.match(line)
        if not found or Path(found["path"]).name != CASES.name:
            continue
        text = found["text"]
        if found["level"] == "error":
            code = re.search(r"\[([a-z-]+)\]$", text)
            assert code, line
            seen.add((int(found["line"]), "E", code.group(1)))
        elif " defined in " not in text:  # a hint that follows some errors
            seen.add((int(found["line"]), "N", text))
    return seen


@pytest.mark.slow
def test_wrong_enqueue_arguments_do_not_type_check() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--show-error-codes",
            "--hide-error-context",
            "--no-pretty",
            "--no-error-summary",
            "--show-absolute-path",
            str(CASES),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert reported(result.stdout) == expected(), result.stdout
