"""`shoal demo`: a server on a temporary SQLite file, a worker, and a mix of jobs to watch.

Everything runs in this process (the server, a worker connected to it over gRPC, and the
producer), so the demo needs nothing but the installed package. `--once` exits when the demo's
jobs are finished: 0 if each ended as planned, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.live import Live

from shoal.cli._client import EXIT_ERROR, error_exit
from shoal.cli._demo_view import Tracked, board, change_line, new_progress
from shoal.core.errors import ShoalError
from shoal.core.model import JobQuery, JobState
from shoal.core.schedules import ScheduleInput

if TYPE_CHECKING:
    from shoal.sdk import Admin, App, JobHandle

__all__ = ["demo", "register"]

#: Seconds between two looks at the jobs.
_TICK = 0.2
#: The long job is cancelled once it has run this long.
_CANCEL_AFTER = 0.6
#: The demo's periodic schedule fires this often (milliseconds).
_EVERY_MS = 1000


def register(app: typer.Typer) -> None:
    """Add the `demo` command to `app`."""
    app.command("demo")(demo)


def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Exit when the demo's jobs are done (0 if as planned).")
    ] = False,
    http_port: Annotated[
        int, typer.Option("--http-port", help="The dashboard's port (0: any free port).")
    ] = 0,
    grpc_port: Annotated[int, typer.Option("--grpc-port", help="gRPC port (0: any).")] = 0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="With --once: fail after this many seconds.")
    ] = 120.0,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary folder with the SQLite file.")
    ] = False,
) -> None:
    """Run a server, a worker and a mix of jobs (some retry, fail, wait, get cancelled); watch
    them live and open the dashboard. Ctrl-C stops it.
    """
    from shoal import logs

    logs.configure("text", "warning")  # the live view is the output; warnings still show
    folder = Path(tempfile.mkdtemp(prefix="shoal-demo-"))
    try:
        limit = timeout if once else None
        code = asyncio.run(_main(folder, limit, http_port, grpc_port))
    except ShoalError as error:
        error_exit(error)
    finally:
        if keep:
            typer.echo(f"kept {folder}", err=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    raise typer.Exit(code)


@contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _main(folder: Path, limit: float | None, http_port: int, grpc_port: int) -> int:
    from shoal.cli._demo_tasks import tasks
    from shoal.config import ServerConfig, ShoalConfig, StoreConfig
    from shoal.sdk import Admin, App, Worker
    from shoal.server import Server

    store = f"sqlite:///{folder}/shoal.db"
    config = ShoalConfig(
        store=StoreConfig(url=store),
        server=ServerConfig(
            grpc_listen=f"127.0.0.1:{grpc_port}",
            http_listen=f"127.0.0.1:{http_port}",
            grace_period=2.0,
        ),
    )
    server = Server(config)
    ready = await server.start()
    url = f"grpc://{ready.grpc}"
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 120)  # a log file: keep one line per event
    app = App(url, worker=None)
    app.include(tasks)
    admin = Admin(url)
    worker: Worker | None = None
    stop = asyncio.Event()
    try:
        await app.start()
        await admin.open()
        worker = Worker(app, None, concurrency=8, pool="thread", shutdown_grace=2.0)
        await worker.start()
        _banner(console, store, url, f"http://{ready.http}/")
        with _stop_on_signals(stop):
            items, report = await _enqueue(app)
            await admin.add_schedule(
                ScheduleInput(
                    task="demo.send_digest",
                    queue="mail",
                    id="digest",
                    every_ms=_EVERY_MS,
                    payload=b'{"args": [], "kwargs": {}}',
                )
            )
            code = await _watch(console, admin, items, report, stop, limit)
    finally:
        if worker is not None:
            await worker.stop()
        await app.close()
        await admin.close()
        await server.stop()
    return code


def _banner(console: Console, store: str, url: str, dashboard: str) -> None:
    console.print(f"[bold]shoal demo[/]  store {store}")
    console.print(f"  dashboard  [link={dashboard}]{dashboard}[/link]")
    console.print(f"  gRPC       {url}   (try: shoal jobs ls --url {url})")
    console.print("  a worker runs the tasks of shoal.cli._demo_tasks; Ctrl-C stops the demo\n")


async def _enqueue(app: App) -> tuple[list[Tracked], Tracked]:
    from shoal.cli._demo_tasks import (
        build_report,
        charge_card,
        resize_image,
        ship_order,
        validate_order,
    )

    items: list[Tracked] = []

    def track(handle: JobHandle[Any], label: str, expected: JobState) -> Tracked:
        item = Tracked(handle.id, label, expected, handle.state)
        items.append(item)
        return item

    ok = JobState.SUCCEEDED
    for n in range(8):
        track(await resize_image.aenqueue(f"photo-{n}.jpg", 320 + 64 * n), "resize_image", ok)
    for seconds in (1.5, 2.5):
        later = resize_image.options(delay=seconds)
        track(await later.aenqueue("banner.png", 1200), f"resize_image (delayed {seconds}s)", ok)
    for failures in (0, 1, 2):
        charge = await charge_card.aenqueue(1000 + failures, failures)
        track(charge, f"charge_card ({failures} failure(s))", ok)
    track(await ship_order.aenqueue(2001), "ship_order (always fails)", JobState.FAILED)
    track(await validate_order.aenqueue(2002), "validate_order (bad input)", JobState.FAILED)
    report = track(
        await build_report.aenqueue(30_000), "build_report (cancelled)", JobState.CANCELLED
    )
    return items, report


async def _watch(
    console: Console,
    admin: Admin,
    items: list[Tracked],
    report: Tracked,
    stop: asyncio.Event,
    limit: float | None,
) -> int:
    """Show the jobs until Ctrl-C; with a `limit` (--once), until they are done or it passes."""
    progress = new_progress()
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    cancel = _Canceller(report)
    digest = False
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while not stop.is_set():
            for item in items:
                if not item.done:
                    line = change_line(item, await admin.get_job(item.job_id))
                    if line is not None:
                        live.console.print(line)
            await cancel.step(admin, live.console, loop.time())
            live.update(board(await admin.queue_stats(), items, progress), refresh=True)
            if deadline is not None:
                digest = digest or await _digest_sent(admin)
                if digest and all(item.done for item in items):
                    break
                if loop.time() > deadline:
                    live.console.print(f"[red]the demo did not finish in {limit:g}s[/]")
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _TICK)
    return 0 if deadline is None else _verdict(console, items, digest)


class _Canceller:
    """Cancels the long job once it has run a little while (a running job is asked to stop)."""

    def __init__(self, item: Tracked) -> None:
        self.item = item
        self.running_since: float | None = None
        self.asked = False

    async def step(self, admin: Admin, console: Console, now: float) -> None:
        item = self.item
        if self.asked or item.done or item.state is not JobState.RUNNING:
            return
        if self.running_since is None:
            self.running_since = now
        elif now - self.running_since > _CANCEL_AFTER:
            await admin.cancel_job(item.job_id)
            console.print(f"[magenta]⊘[/] cancelling {item.label} {item.job_id[-8:]} (running)")
            self.asked = True


async def _digest_sent(admin: Admin) -> bool:
    page = await admin.list_jobs(
        JobQuery(task="demo.send_digest", state=JobState.SUCCEEDED, limit=1)
    )
    return bool(page.jobs)


def _verdict(console: Console, items: list[Tracked], digest: bool) -> int:
    wrong = [item for item in items if item.state is not item.expected]
    console.print()
    if not digest:
        console.print("[red]the periodic schedule's job did not succeed[/]")
    elif not wrong:
        console.print(
            f"[green]all {len(items)} demo jobs ended as planned[/] (and the schedule fired)"
        )
        return 0
    for item in wrong:
        console.print(
            f"[red]{item.label} {item.job_id} ended {item.state}, expected {item.expected}[/]"
        )
    return EXIT_ERROR
