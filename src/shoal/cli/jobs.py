"""`shoal jobs ls|show|cancel|retry|rm`: read and steer jobs, one by one or in bulk."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shoal.cli._client import (
    EXIT_ERROR,
    JsonOption,
    NamespaceOption,
    UrlOption,
    call,
    console,
    emit_json,
    error_exit,
    parse_state,
    progress_bar,
)
from shoal.cli._render import job_detail, job_dict, jobs_table
from shoal.core.errors import ShoalError
from shoal.core.model import Job, JobPage, JobQuery

if TYPE_CHECKING:
    from shoal.sdk._admin import Admin

__all__ = ["register"]

jobs = typer.Typer(help="List, inspect, cancel, retry and delete jobs.", no_args_is_help=True)

QueueFilter = Annotated[str | None, typer.Option("--queue", "-q", help="Only this queue.")]
StateFilter = Annotated[
    str | None,
    typer.Option("--state", "-s", help="scheduled, queued, running, succeeded, failed, cancelled"),
]
TaskFilter = Annotated[str | None, typer.Option("--task", "-t", help="Only this task.")]
IdsArgument = Annotated[list[str] | None, typer.Argument(help="Job ids.", show_default=False)]
AllOption = Annotated[
    bool, typer.Option("--all", help="Every job matching --queue/--state/--task (paged).")
]
#: Ids read per page when a bulk action pages through the filter's jobs.
_PAGE = 500


def register(app: typer.Typer) -> None:
    """Add the `jobs` command group to `app`."""
    app.add_typer(jobs, name="jobs")


@jobs.command("ls")
def list_jobs(
    queue: QueueFilter = None,
    state: StateFilter = None,
    task: TaskFilter = None,
    limit: Annotated[int, typer.Option("--limit", help="Jobs per page (1-1000).")] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Next page's cursor.")] = None,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """A page of jobs, newest first (the next page's cursor is printed below the table)."""
    query = JobQuery(namespace, queue, parse_state(state), task, cursor=cursor, limit=limit)

    async def run(admin: Admin) -> JobPage:
        return await admin.list_jobs(query)

    page = call(url, namespace, run)
    if as_json:
        emit_json({"jobs": [job_dict(job) for job in page.jobs], "next_cursor": page.next_cursor})
        return
    console().print(jobs_table(page.jobs))
    if page.next_cursor:
        typer.echo(f"next page: --cursor {page.next_cursor}")


@jobs.command("show")
def show(
    job_id: Annotated[str, typer.Argument(help="The job id.")],
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """One job: payload, result, error and traceback."""

    async def run(admin: Admin) -> Job:
        return await admin.get_job(job_id)

    job = call(url, namespace, run)
    if as_json:
        emit_json(job_dict(job))
    else:
        console().print(job_detail(job))


Action = Callable[["Admin", str], Awaitable[Any]]


def _bulk(
    verb: str,
    action: Action,
    ids: list[str] | None,
    every: bool,
    query: JobQuery,
    url: str | None,
    as_json: bool,
) -> None:
    """Run `action` on each id given, or on every job the filter matches (`--all`)."""
    if bool(ids) == every:
        error_exit("give job ids, or --all with filters (--state, --queue, --task)", 2)
    if ids and (query.queue, query.state, query.task) != (None, None, None):
        error_exit("--state, --queue and --task go with --all, not with job ids", 2)

    async def run(admin: Admin) -> tuple[list[str], list[dict[str, str]]]:
        targets = list(ids or [])
        if every:
            targets = await _matching(admin, query)
        done: list[str] = []
        failed: list[dict[str, str]] = []
        with progress_bar(f"{verb} jobs", len(targets), as_json or len(targets) < 2) as bar:
            for job_id in targets:
                try:
                    await action(admin, job_id)
                except ShoalError as error:
                    if len(targets) == 1:
                        raise
                    failed.append({"id": job_id, "code": error.code, "message": error.message})
                else:
                    done.append(job_id)
                bar.advance(bar.task_ids[0])
        return done, failed

    done, failed = call(url, query.namespace, run)
    if as_json:
        emit_json({"action": verb, "done": done, "failed": failed})
    else:
        for item in failed:
            typer.echo(f"shoal: error: {item['code']}: {item['id']}: {item['message']}", err=True)
        typer.echo(f"{verb}: {len(done)} job(s)" + (f", {len(failed)} refused" if failed else ""))
    if failed:
        raise typer.Exit(EXIT_ERROR)


async def _matching(admin: Admin, query: JobQuery) -> list[str]:
    # Read every id first: acting while paging would move jobs between the pages' filters.
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = await admin.list_jobs(
            JobQuery(
                query.namespace, query.queue, query.state, query.task, cursor=cursor, limit=_PAGE
            )
        )
        ids.extend(job.id for job in page.jobs)
        if not page.next_cursor:
            return ids
        cursor = page.next_cursor


def _query(namespace: str, queue: str | None, state: str | None, task: str | None) -> JobQuery:
    return JobQuery(namespace, queue, parse_state(state), task)


@jobs.command("cancel")
def cancel(
    ids: IdsArgument = None,
    every: AllOption = False,
    queue: QueueFilter = None,
    state: StateFilter = None,
    task: TaskFilter = None,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Cancel jobs: waiting ones at once, running ones by asking their worker."""
    query = _query(namespace, queue, state, task)
    _bulk("cancel", lambda admin, job_id: admin.cancel_job(job_id), ids, every, query, url, as_json)


@jobs.command("retry")
def retry(
    ids: IdsArgument = None,
    every: AllOption = False,
    queue: QueueFilter = None,
    state: StateFilter = None,
    task: TaskFilter = None,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Queue failed or cancelled jobs again (e.g. `--state failed --all`)."""
    _bulk(
        "retry",
        lambda admin, job_id: admin.retry_job(job_id),
        ids,
        every,
        _query(namespace, queue, state, task),
        url,
        as_json,
    )


@jobs.command("rm")
def remove(
    ids: IdsArgument = None,
    every: AllOption = False,
    queue: QueueFilter = None,
    state: StateFilter = None,
    task: TaskFilter = None,
    url: UrlOption = None,
    namespace: NamespaceOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Delete jobs that are not running (e.g. `--state succeeded --all`)."""
    _bulk(
        "rm",
        lambda admin, job_id: admin.delete_job(job_id),
        ids,
        every,
        _query(namespace, queue, state, task),
        url,
        as_json,
    )
