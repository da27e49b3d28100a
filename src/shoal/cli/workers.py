"""`shoal workers ls|kick|drain`: the cluster membership."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shoal.cli._client import JsonOption, NamespaceOption, UrlOption, call, console, emit_json
from shoal.cli._render import worker_dict, workers_table
from shoal.core.model import WorkerInfo

if TYPE_CHECKING:
    from shoal.sdk._admin import Admin

__all__ = ["register"]

workers = typer.Typer(help="List, disconnect and drain workers.", no_args_is_help=True)
WorkerArgument = Annotated[str, typer.Argument(help="The worker id (see `shoal workers ls`).")]


def register(app: typer.Typer) -> None:
    """Add the `workers` command group to `app`."""
    app.add_typer(workers, name="workers")


@workers.command("ls")
def list_workers(
    url: UrlOption = None, namespace: NamespaceOption = "default", as_json: JsonOption = False
) -> None:
    """The connected workers, their state and running jobs."""

    async def run(admin: Admin) -> list[WorkerInfo]:
        return await admin.list_workers()

    found = call(url, namespace, run)
    if as_json:
        emit_json({"workers": [worker_dict(worker) for worker in found]})
    else:
        console().print(workers_table(found))


@workers.command("kick")
def kick(
    worker_id: WorkerArgument,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Disconnect a worker now: its jobs' leases end and they run elsewhere."""

    async def run(admin: Admin) -> list[str]:
        return await admin.kick_worker(worker_id)

    released = call(url, namespace, run)
    if as_json:
        emit_json({"worker_id": worker_id, "released": released})
    else:
        typer.echo(f"worker {worker_id} kicked; {len(released)} job(s) released")


@workers.command("drain")
def drain(
    worker_id: WorkerArgument,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Ask a worker to finish what it runs and take nothing more."""

    async def run(admin: Admin) -> WorkerInfo:
        return await admin.drain_worker(worker_id)

    worker = call(url, namespace, run)
    if as_json:
        emit_json(worker_dict(worker))
    else:
        typer.echo(f"worker {worker_id}: {worker.state.value}")
