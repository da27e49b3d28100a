"""shoal's benchmarks; each module runs with `python -m bench.<name>`."""

from __future__ import annotations
