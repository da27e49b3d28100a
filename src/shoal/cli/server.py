"""`shoal server`: run the job server in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from shoal.cli._common import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_LISTEN,
    EXIT_STORE,
    fail,
    load,
    parse_sets,
)
from shoal.config import ShoalConfig
from shoal.core.errors import ConfigError, StorageError, Unavailable

__all__ = ["register", "server"]


def register(app: typer.Typer) -> None:
    """Add the `server` command to `app`."""
    app.command("server")(server)


def server(
    config: Annotated[
        Path | None, typer.Option("--config", help="A shoal.toml file.", dir_okay=False)
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="memory://, sqlite:///path/shoal.db or postgresql://..."),
    ] = None,
    grpc_listen: Annotated[
        str | None, typer.Option("--grpc-listen", help="HOST:PORT for gRPC (port 0: any).")
    ] = None,
    native_listen: Annotated[
        str | None,
        typer.Option(
            "--native-listen", help="HOST:PORT for the gRPC services on the native framing."
        ),
    ] = None,
    http_listen: Annotated[
        str | None, typer.Option("--http-listen", help="HOST:PORT for HTTP (REST, dashboard).")
    ] = None,
    tcp_listen: Annotated[
        str | None, typer.Option("--tcp-listen", help="HOST:PORT for the TCP text protocol.")
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow non-loopback addresses without auth.")
    ] = False,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any setting: SECTION.KEY=VALUE (repeatable)."),
    ] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="debug, info, ...")] = None,
) -> None:
    """Run the shoal server until SIGTERM or SIGINT (a second one stops it at once).

    Prints `shoal ready grpc=HOST:PORT [native=...] [http=...] [tcp=...] store=URL` on
    standard output once it serves. Exit codes: 2 bad configuration, 3 cannot listen, 4
    cannot open the store, 130 stopped by a second signal.
    """
    overrides = parse_sets(settings or [])
    flags = {
        "store.url": store,
        "server.grpc_listen": grpc_listen,
        "server.native_listen": native_listen,
        "server.http_listen": http_listen,
        "server.tcp_listen": tcp_listen,
        "server.insecure": True if insecure else None,
        "log.level": log_level,
    }
    overrides.update({key: value for key, value in flags.items() if value is not None})
    loaded = load(config, overrides)
    _configure_logging(loaded.config)
    try:
        _run(loaded.config)
    except ConfigError as error:
        fail(error, EXIT_CONFIG)
    except StorageError as error:
        fail(error, EXIT_STORE)
    except Unavailable as error:
        fail(error, EXIT_LISTEN)


def _run(config: ShoalConfig) -> None:
    # gRPC's C core logs its own line when a bind fails; shoal reports it in one line already.
    # Set before grpc is imported (GRPC_VERBOSITY=ERROR brings the core's logs back).
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from shoal.runtime import run, tune_gc
    from shoal.server import Ready, Server  # the whole server is imported only when it runs

    async def serve() -> None:
        stop = asyncio.Event()

        def on_signal() -> None:
            if stop.is_set():  # a second signal: do not wait for the grace period
                typer.echo("shoal: stopping at once", err=True)
                os._exit(EXIT_INTERRUPTED)
            stop.set()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
        await Server(config).serve(stop, on_ready=on_ready)

    def on_ready(ready: Ready) -> None:
        tune_gc()  # after start-up, so that what it made is frozen
        print(ready.line(), flush=True)

    run(serve())


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "at": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("event", "job_id", "worker_id", "queue", "address"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def _configure_logging(config: ShoalConfig) -> None:
    # The entry point is the one place that configures logging (to standard error: standard
    # output carries the ready line).
    handler = logging.StreamHandler(sys.stderr)
    if config.log.format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log.level.upper())
