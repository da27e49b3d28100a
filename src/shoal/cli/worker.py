"""`shoal worker module:app`: run a worker for an app's tasks until SIGTERM or SIGINT."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from shoal.cli._client import error_exit
from shoal.core.errors import ShoalError

__all__ = ["register", "worker"]


def register(app: typer.Typer) -> None:
    """Add the `worker` command to `app`."""
    app.command("worker")(worker)


def worker(
    target: Annotated[
        str, typer.Argument(help="The app: module:attribute (or module, for `app`).")
    ],
    queues: Annotated[
        str | None, typer.Option("--queues", "-Q", help="a,b: the queues to take jobs from.")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Jobs at once.")] = 4,
    pool: Annotated[str, typer.Option("--pool", help="asyncio, thread or process.")] = "thread",
    prefetch: Annotated[
        int,
        typer.Option(
            "--prefetch",
            help="Jobs to lease beyond the free slots (0-64): hides the round trip for many "
            "short jobs; keep 0 for long ones, which would hold the extra jobs back.",
        ),
    ] = 0,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The server (overrides the app's URL and SHOAL_URL)."),
    ] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json.")] = "text",
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, ...")] = "info",
) -> None:
    """Run a worker for the tasks of `module:app`, until SIGTERM or SIGINT (then gracefully).

    The current directory is importable, as with `python -m`. Every queue of the app's tasks
    is served unless --queues names some.
    """
    from shoal import logs
    from shoal.runtime import run, tune_gc
    from shoal.sdk._worker import Worker
    from shoal.sdk.worker import load_app, serve

    if pool not in ("asyncio", "thread", "process"):
        error_exit(f"--pool {pool!r}: expected asyncio, thread or process", 2)
    try:
        logs.configure(log_format, log_level)
    except ValueError as exc:
        error_exit(str(exc), 2)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    names = tuple(name.strip() for name in queues.split(",") if name.strip()) if queues else None
    try:
        app = load_app(target)
        if url is not None:
            app.url = url  # nothing is connected yet: the app connects when the worker starts
        runner = Worker(app, names, concurrency, pool, prefetch=prefetch)  # type: ignore[arg-type]
        tune_gc()  # the app and its imports are loaded: freeze them
        run(serve(runner))
    except ShoalError as error:
        error_exit(error)
