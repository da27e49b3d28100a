"""The checked-in generated code is what scripts/gen_proto.py makes from proto/ today."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    gen_proto = importlib.util.module_from_spec(spec)
    sys.modules["gen_proto"] = gen_proto
    try:
        spec.loader.exec_module(gen_proto)
        gen_proto.generate(tmp_path)
        stale = gen_proto.differences(tmp_path, gen_proto.GEN_DIR)
    finally:
        del sys.modules["gen_proto"]
    assert stale == [], f"run `python scripts/gen_proto.py`; out of date: {stale}"
