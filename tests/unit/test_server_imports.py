"""A server without an HTTP listener must not pay for FastAPI at start-up (W6: ready <= 1 s)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_composition_root_leaves_http_and_tcp_unloaded() -> None:
    probe = (
        "import sys, shoal.server\n"
        "heavy = [m for m in ('fastapi', 'starlette', 'shoal.protocols.http',"
        " 'shoal.protocols.tcp.server') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
