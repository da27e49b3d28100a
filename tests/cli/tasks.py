"""Tasks the CLI tests' worker runs (`shoal worker tests.cli.tasks:app`)."""

from __future__ import annotations

import asyncio
import os

from shoal.sdk import App, NonRetryable, current_job

#: The namespace comes from the test that starts the worker; the URL from --url.
app = App(namespace=os.environ.get("CLI_TEST_NAMESPACE", "default"), worker=None)


@app.task(name="cli.add", queue="cli")
async def add(a: int, b: int) -> int:
    return a + b


@app.task(name="cli.boom", queue="cli")
async def boom(reason: str) -> None:
    raise NonRetryable(reason)


@app.task(name="cli.slow", queue="cli")
async def slow(seconds: float) -> str:
    job = current_job()
    job.progress(0.0)
    await asyncio.sleep(seconds)
    return "slept"
