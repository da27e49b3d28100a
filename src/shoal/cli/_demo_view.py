from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shoal.cli._render import counts_dict, state_text
from shoal.core.model import Job, JobState, QueueStats


@dataclass
class Tracked:
    """One job the demo enqueued, what it should end as, and what was last seen of it."""

    job_id: str
    label: str
    expected: JobState
    state: JobState = JobState.QUEUED
    attempt: int = 0
    #: The last failed attempt shown as retried.
    retried: int = 0
    enqueued_at: float = field(default_factory=time.monotonic)
    done: bool = False


def change_line(item: Tracked, job: Job) -> str | None:
    """Lines for what changed since the job was last seen (a retry, a finish), or None.

    A retry is read from the attempt count, not from catching the job `scheduled`: a short
    backoff can pass between two looks, and then the job is already running its next attempt.
    """
    lines = []
    short = job.id[-8:]
    retried = _last_retried(job)
    if retried > item.retried:
        # a failed job's error is its last attempt's, not the one retried before it
        why = f" ({job.error.type}: {job.error.message})" if job.error else ""
        if job.state is JobState.FAILED:
            why = ""
        lines.append(
            f"[yellow]↻[/] {item.label:<28} {short} attempt {retried} failed{why}; retrying"
        )
        item.retried = retried
    if job.is_terminal and not item.done:
        took = time.monotonic() - item.enqueued_at
        mark = {JobState.SUCCEEDED: "[green]✓[/]", JobState.FAILED: "[red]✗[/]"}.get(
            job.state, "[magenta]⊘[/]"
        )
        detail = f" {job.error.type}: {job.error.message}" if job.error else ""
        expected = "" if job.state is item.expected else f" [bold red](expected {item.expected})[/]"
        lines.append(
            f"{mark} {item.label:<28} {short} {state_text(job.state)} after "
            f"{job.attempt} attempt(s), {took:.1f}s{detail}{expected}"
        )
        item.done = True
    item.state, item.attempt = job.state, job.attempt
    return "\n".join(lines) or None


def _last_retried(job: Job) -> int:
    """The last attempt that failed and was followed by another (0: none)."""
    if job.state is JobState.SCHEDULED:
        return job.attempt  # it failed, and waits for the next
    if job.state is JobState.FAILED:
        return job.attempt - 1  # the last one failed for good; those before were retried
    return max(job.attempt - 1, 0)  # it runs, or ran, an attempt after a failed one


def board(stats: QueueStats, items: list[Tracked], progress: Progress) -> RenderableType:
    """The live view: jobs by state (all of the demo's queues) and the demo's progress."""
    table = Table(title="jobs by state", title_justify="left")
    counts = counts_dict(stats.by_state)
    for state in JobState:
        table.add_column(state_text(state), justify="right")
    table.add_row(*(str(counts[state.value]) for state in JobState))
    finished = sum(item.done for item in items)
    progress.update(progress.task_ids[0], completed=finished, total=len(items))
    return Group(table, progress)


def new_progress() -> Progress:
    """The bar of the demo's jobs that have finished."""
    progress = Progress(
        TextColumn("demo jobs finished"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        auto_refresh=False,
    )
    progress.add_task("demo", total=None)
    return progress
