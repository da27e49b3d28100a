"""The example app runs in local mode, and a worker process started through the CLI's entry
(`shoal.sdk.worker.run_worker`) serves it against a real server until SIGTERM.
"""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples" / "python"


def load_shop() -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLES / "shop.py"), run_name="shop_under_test")


def test_example_runs_in_local_mode(capsys: pytest.CaptureFixture[str]) -> None:
    load_shop()["main"]()
    out = capsys.readouterr().out
    assert "sent 41.50 EUR to ada@example.com" in out
    assert "Thumbnail(name='cat.png', width=256, height=192)" in out
    assert "later      cancelled" in out


def test_run_worker_serves_until_sigterm(grpc_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_URL", grpc_server)
    code = "from shoal.sdk.worker import run_worker; run_worker('shop:app', None, 2, 'thread')"
    worker = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=EXAMPLES,
        env={**os.environ, "SHOAL_URL": grpc_server},
        stderr=subprocess.PIPE,
        text=True,
    )
    shop = load_shop()
    app = shop["app"]
    try:
        with app:
            rate = shop["fetch_exchange_rate"].enqueue(shop["Currency"].USD)
            assert rate.result(timeout=60) == Decimal("1.08")
            assert rate.job.attempt == 2
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors
    assert "Traceback" not in errors
