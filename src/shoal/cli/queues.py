"""`shoal queues ls|stats|pause|resume|purge|rm`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shoal.cli._client import JsonOption, NamespaceOption, UrlOption, call, console, emit_json
from shoal.cli._render import queue_dict, queues_table, stats_dict, stats_table
from shoal.core.model import QueueInfo, QueueStats

if TYPE_CHECKING:
    from shoal.sdk._admin import Admin

__all__ = ["register"]

queues = typer.Typer(
    help="List, count, pause, resume, purge and delete queues.", no_args_is_help=True
)
QueueArgument = Annotated[str, typer.Argument(help="The queue name.")]


def register(app: typer.Typer) -> None:
    """Add the `queues` command group to `app`."""
    app.add_typer(queues, name="queues")


@queues.command("ls")
def list_queues(
    url: UrlOption = None, namespace: NamespaceOption = "default", as_json: JsonOption = False
) -> None:
    """The namespace's queues with their counts by state."""

    async def run(admin: Admin) -> list[QueueInfo]:
        return await admin.list_queues()

    found = call(url, namespace, run)
    if as_json:
        emit_json({"queues": [queue_dict(queue) for queue in found]})
    else:
        console().print(queues_table(found))


@queues.command("stats")
def stats(
    queue: Annotated[
        str | None, typer.Argument(help="One queue; the namespace when omitted.")
    ] = None,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Counts of jobs by state and by task."""

    async def run(admin: Admin) -> QueueStats:
        return await admin.queue_stats(queue)

    result = call(url, namespace, run)
    if as_json:
        emit_json({"queue": queue, **stats_dict(result)})
    else:
        console().print(stats_table(result))


def _simple(verb: str, queue: str, url: str | None, namespace: str, as_json: bool) -> None:
    async def run(admin: Admin) -> int | None:
        if verb == "pause":
            await admin.pause_queue(queue)
            return None
        if verb == "resume":
            await admin.resume_queue(queue)
            return None
        if verb == "purge":
            return await admin.purge_queue(queue)
        return await admin.delete_queue(queue)

    deleted = call(url, namespace, run)
    if as_json:
        emit_json({"queue": queue, "action": verb, "deleted": deleted})
    elif deleted is None:
        typer.echo(f"queue {queue}: {verb}d")
    else:
        typer.echo(f"queue {queue}: {deleted} job(s) deleted")


@queues.command("pause")
def pause(
    queue: QueueArgument,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Stop handing out the queue's jobs (enqueues still land)."""
    _simple("pause", queue, url, namespace, as_json)


@queues.command("resume")
def resume(
    queue: QueueArgument,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Hand out the queue's jobs again."""
    _simple("resume", queue, url, namespace, as_json)


@queues.command("purge")
def purge(
    queue: QueueArgument,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Delete the queue's waiting (queued and scheduled) jobs."""
    _simple("purge", queue, url, namespace, as_json)


@queues.command("rm")
def remove(
    queue: QueueArgument,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Delete the queue and all its jobs (refused while any runs)."""
    _simple("rm", queue, url, namespace, as_json)
