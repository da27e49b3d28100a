"""Fail when a hand-written module under src/ is longer than the hard limit (800 lines)."""

from __future__ import annotations

import sys
from pathlib import Path

LIMIT = 800
GENERATED = ("/gen/",)


def main() -> int:
    """Print every module over the limit; exit 1 if there is one."""
    root = Path(__file__).resolve().parents[1] / "src"
    too_big = [
        (path, count)
        for path in sorted(root.rglob("*.py"))
        if not any(part in path.as_posix() for part in GENERATED)
        and (count := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    ]
    for path, count in too_big:
        print(f"{path.relative_to(root.parent)}: {count} lines (limit {LIMIT})")
    return 1 if too_big else 0


if __name__ == "__main__":
    sys.exit(main())
