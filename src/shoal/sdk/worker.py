"""Running a worker process: what `shoal worker module:app` calls.

This is an entry point, so it may install signal handlers: SIGTERM and SIGINT stop the worker
gracefully (take nothing more, let running jobs finish for a while, give the rest back).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Sequence

from shoal.core.errors import ConfigError
from shoal.sdk._app import App
from shoal.sdk._execution import Pool
from shoal.sdk._worker import Worker

__all__ = ["load_app", "run_worker"]

logger = logging.getLogger(__name__)


def load_app(target: str) -> App:
    """The `App` named by `module:attribute` (or `module`, whose `app` attribute is used)."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attribute or "app", None)
    if not isinstance(app, App):
        raise ConfigError(f"{target!r} is not a shoal App (found {type(app).__name__})")
    return app


async def serve(worker: Worker) -> None:
    """Run `worker` until SIGTERM or SIGINT, then stop it gracefully and close its app."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await worker.start()
        await stop.wait()
        logger.info("stopping on signal", extra={"event": "worker.signal"})
        await worker.stop()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await worker.app.close()


def run_worker(
    target: str,
    queues: Sequence[str] | None = None,
    concurrency: int = 4,
    pool: Pool = "thread",
) -> None:
    """Load the app at `target` (`module:app`) and run a worker for it until a signal."""
    app = load_app(target)
    worker = Worker(app, tuple(queues) if queues else None, concurrency, pool)
    asyncio.run(serve(worker))
