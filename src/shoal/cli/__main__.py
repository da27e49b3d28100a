"""`python -m shoal.cli`: the same as the `shoal` command."""

from __future__ import annotations

from shoal.cli import main

main()
