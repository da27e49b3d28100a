from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from shoal.core.model import Job, JobState, QueueInfo, QueueStats, WorkerInfo
from shoal.core.schedules import ScheduleView

_STATE_STYLE = {
    JobState.SCHEDULED: "cyan",
    JobState.QUEUED: "blue",
    JobState.RUNNING: "yellow",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "magenta",
}
_ORDER = tuple(JobState)


def when(value: float | None) -> str:
    """A POSIX time for people (UTC), or a dash."""
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def short_when(value: float | None) -> str:
    """A POSIX time for a table cell (UTC, no year)."""
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%m-%d %H:%M:%S")


def _id_column(table: Table, name: str = "id") -> None:
    # Ids are what people copy into the next command: never cut them.
    table.add_column(name, no_wrap=True, min_width=36)


def state_text(state: JobState) -> str:
    return f"[{_STATE_STYLE[state]}]{state.value}[/]"


def decode(data: bytes | None, content_type: str = "application/json") -> Any:
    """A payload or result as JSON when it is JSON, else as text or a byte count."""
    if data is None:
        return None
    if content_type == "application/json":
        try:
            return json.loads(data)
        except ValueError:
            pass
    try:
        return data.decode()
    except UnicodeDecodeError:
        return f"<{len(data)} bytes of {content_type}>"


def job_dict(job: Job) -> dict[str, Any]:
    error = None
    if job.error is not None:
        error = {
            "type": job.error.type,
            "message": job.error.message,
            "traceback": job.error.traceback,
            "retryable": job.error.retryable,
        }
    return {
        "id": job.id,
        "namespace": job.namespace,
        "queue": job.queue,
        "task": job.task,
        "state": job.state.value,
        "priority": job.priority,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "payload": decode(job.payload, job.content_type),
        "content_type": job.content_type,
        "result": decode(job.result, job.content_type),
        "error": error,
        "created_at": job.created_at,
        "run_at": job.run_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "worker_id": job.worker_id,
        "cancel_requested": job.cancel_requested,
        "progress": job.progress,
        "idempotency_key": job.idempotency_key,
        "tags": list(job.tags),
        "schedule_id": job.schedule_id,
        "parent_id": job.parent_id,
    }


def jobs_table(jobs: Iterable[Job]) -> Table:
    table = Table()
    _id_column(table)
    for name in ("queue", "task", "state", "attempt", "prio", "created (UTC)", "error"):
        table.add_column(name)
    for job in jobs:
        error = f"{job.error.type}: {job.error.message}" if job.error else ""
        table.add_row(
            job.id,
            job.queue,
            job.task,
            state_text(job.state),
            f"{job.attempt}/{job.max_attempts}",
            str(job.priority),
            short_when(job.created_at),
            error[:60],
        )
    return table


def job_detail(job: Job) -> Table:
    table = Table(show_header=False, box=None, title=f"job {job.id}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    data = job_dict(job)
    for key in ("queue", "task", "priority", "idempotency_key", "worker_id", "schedule_id"):
        if data[key] not in (None, ""):
            table.add_row(key, str(data[key]))
    table.add_row(
        "state", state_text(job.state) + (" (cancel requested)" if job.cancel_requested else "")
    )
    table.add_row("attempt", f"{job.attempt} of {job.max_attempts}")
    for key in ("created_at", "run_at", "started_at", "finished_at"):
        table.add_row(key, when(data[key]))
    if job.progress is not None:
        table.add_row("progress", f"{job.progress:.0%}")
    table.add_row("payload", json.dumps(data["payload"], default=str))
    if job.result is not None:
        table.add_row("result", json.dumps(data["result"], default=str))
    if job.error is not None:
        table.add_row("error", f"[red]{job.error.type}[/]: {job.error.message}")
        if job.error.traceback:
            table.add_row("traceback", job.error.traceback.rstrip())
    return table


def counts_dict(counts: Mapping[JobState, int]) -> dict[str, int]:
    return {state.value: counts.get(state, 0) for state in _ORDER}


def queue_dict(queue: QueueInfo) -> dict[str, Any]:
    return {
        "namespace": queue.namespace,
        "name": queue.name,
        "paused": queue.paused,
        "counts": counts_dict(queue.counts),
    }


def queues_table(queues: Iterable[QueueInfo]) -> Table:
    table = Table("queue", "paused", *(state.value for state in _ORDER))
    for queue in queues:
        counts = counts_dict(queue.counts)
        table.add_row(
            queue.name, "yes" if queue.paused else "", *(str(counts[s.value]) for s in _ORDER)
        )
    return table


def stats_dict(stats: QueueStats) -> dict[str, Any]:
    return {
        "by_state": counts_dict(stats.by_state),
        "by_task": {task: counts_dict(counts) for task, counts in stats.by_task.items()},
        "total": sum(stats.by_state.values()),
    }


def stats_table(stats: QueueStats) -> Table:
    table = Table("task", *(state.value for state in _ORDER), "total")
    for task, counts in sorted(stats.by_task.items()):
        row = counts_dict(counts)
        table.add_row(task, *(str(row[s.value]) for s in _ORDER), str(sum(counts.values())))
    row = counts_dict(stats.by_state)
    table.add_row(
        "[bold]all[/]", *(str(row[s.value]) for s in _ORDER), str(sum(stats.by_state.values()))
    )
    return table


def worker_dict(worker: WorkerInfo) -> dict[str, Any]:
    return {
        "id": worker.id,
        "namespace": worker.namespace,
        "queues": list(worker.queues),
        "tasks": list(worker.tasks),
        "state": worker.state.value,
        "concurrency": worker.concurrency,
        "running": worker.running,
        "language": worker.language,
        "host": worker.host,
        "pid": worker.pid,
        "connected_at": worker.connected_at,
        "last_heartbeat": worker.last_heartbeat,
    }


def workers_table(workers: Iterable[WorkerInfo]) -> Table:
    table = Table()
    _id_column(table)
    for name in ("state", "queues", "running", "language", "host", "pid", "last heartbeat"):
        table.add_column(name)
    for worker in workers:
        table.add_row(
            worker.id,
            worker.state.value,
            ",".join(worker.queues),
            f"{worker.running}/{worker.concurrency}",
            worker.language,
            worker.host,
            str(worker.pid),
            short_when(worker.last_heartbeat),
        )
    return table


def trigger_text(view: ScheduleView) -> str:
    if view.every_ms is not None:
        return f"every {view.every_ms}ms"
    if view.cron is not None:
        return f"cron {view.cron} ({view.timezone})"
    return f"at {when(view.at)}"


def schedule_dict(view: ScheduleView, upcoming: list[float] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": view.id,
        "namespace": view.namespace,
        "queue": view.queue,
        "task": view.task,
        "kind": view.kind,
        "every_ms": view.every_ms,
        "cron": view.cron,
        "timezone": view.timezone,
        "at": view.at,
        "paused": view.paused,
        "overlap": str(view.overlap),
        "catch_up": str(view.catch_up),
        "payload": decode(view.payload, view.content_type),
        "next_fire_at": view.next_fire_at,
        "last_fire_at": view.last_fire_at,
        "last_job_id": view.last_job_id,
    }
    if upcoming is not None:
        data["upcoming"] = upcoming
    return data


def schedules_table(views: Iterable[ScheduleView]) -> Table:
    table = Table("id", "task", "queue", "trigger", "paused", "next fire (UTC)", "last fire")
    for view in views:
        table.add_row(
            view.id,
            view.task,
            view.queue,
            trigger_text(view),
            "yes" if view.paused else "",
            short_when(view.next_fire_at),
            short_when(view.last_fire_at),
        )
    return table
