"""`shoal enqueue TASK`: store one job, and optionally wait for its outcome."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

from shoal.cli._client import (
    EXIT_ERROR,
    JsonOption,
    NamespaceOption,
    UrlOption,
    call,
    console,
    emit_json,
    parse_duration,
    parse_json,
    progress_bar,
)
from shoal.cli._render import decode, job_dict
from shoal.core.model import Job, JobState
from shoal.core.validation import EnqueueRequest

if TYPE_CHECKING:
    from shoal.sdk._admin import Admin

__all__ = ["enqueue", "register"]

#: Seconds of one long poll while `--wait` shows progress.
_POLL = 0.5


def register(app: typer.Typer) -> None:
    """Add the `enqueue` command to `app`."""
    app.command("enqueue")(enqueue)


def enqueue(
    task: Annotated[str, typer.Argument(help="The task name, e.g. shop.send_invoice.")],
    args: Annotated[
        str | None, typer.Option("--args", help="Positional arguments: a JSON list.")
    ] = None,
    kwargs: Annotated[
        str | None, typer.Option("--kwargs", help="Keyword arguments: a JSON object.")
    ] = None,
    queue: Annotated[str, typer.Option("--queue", "-q", help="The queue.")] = "default",
    delay: Annotated[str | None, typer.Option("--delay", help="Run after e.g. 30s, 5m.")] = None,
    priority: Annotated[int, typer.Option("--priority", help="Higher runs first.")] = 0,
    max_attempts: Annotated[
        int | None, typer.Option("--max-attempts", help="Attempts before it fails for good.")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Return the live job with this key.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the outcome and print it.")
    ] = False,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="With --wait: give up after e.g. 60s.")
    ] = None,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Enqueue a job and print its id (with --wait: its result, or its error and exit 1)."""
    payload = {
        "args": parse_json("--args", args, list),
        "kwargs": parse_json("--kwargs", kwargs, dict),
    }
    request = EnqueueRequest(
        task=task,
        payload=json.dumps(payload).encode(),
        namespace=namespace,
        queue=queue,
        priority=priority,
        delay=parse_duration("--delay", delay),
        max_attempts=max_attempts,
        idempotency_key=idempotency_key,
    )
    limit = parse_duration("--timeout", timeout)

    async def run(admin: Admin) -> tuple[Job, bool]:
        enqueued = await admin.enqueue(request)
        if not wait:
            return enqueued.job, enqueued.created
        return await _wait(admin, enqueued.job, limit, quiet=as_json), enqueued.created

    job, created = call(url, namespace, run)
    if as_json:
        emit_json({**job_dict(job), "created": created})
    elif not wait:
        typer.echo(job.id)
    if wait:
        _report(job, as_json)


async def _wait(admin: Admin, job: Job, limit: float | None, quiet: bool) -> Job:
    deadline = None if limit is None else time.monotonic() + limit
    with progress_bar(f"{job.task} {job.id}", 1.0, quiet) as bar:
        while not job.is_terminal:
            left = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
            if left <= 0:
                break
            job = await admin.wait_job(job.id, left, job.namespace)
            bar.update(
                bar.task_ids[0],
                completed=job.progress or 0.0,
                description=f"{job.task} {job.state.value}",
            )
    return job


def _report(job: Job, as_json: bool) -> None:
    if job.state is JobState.SUCCEEDED:
        if not as_json:
            console().print_json(json.dumps(decode(job.result, job.content_type), default=str))
        return
    if job.state is JobState.FAILED and job.error is not None:
        message = f"job {job.id} failed: {job.error.type}: {job.error.message}"
        if job.error.traceback and not as_json:
            typer.echo(job.error.traceback.rstrip(), err=True)
    elif job.state is JobState.CANCELLED:
        message = f"job {job.id} was cancelled"
    else:
        message = f"timeout: job {job.id} is still {job.state.value}"
    typer.echo(f"shoal: error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)
