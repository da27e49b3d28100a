"""Jobatator's JSON objects: Go field names, Go field order, Go's null for nil slices.

Upstream serialises its Go structs with `encoding/json` and no tags, so the keys are the
struct field names and appear in declaration order; a nil slice is `null`, an empty one `[]`.
Passwords were echoed in clear (seed-systems.md section 8, item 7): the `Password` field is
kept for the shape and is always empty here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypedDict, TypeVar

_T = TypeVar("_T")

GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class GoGroup(TypedDict):
    Slug: str


class GoJob(TypedDict):
    ID: str
    State: str
    Type: str
    Payload: str
    Attempts: int
    StartedProcessingAt: str
    EndProcessingAt: str
    Queue: GoQueue
    Group: GoGroup


class GoRecurrentJob(TypedDict):
    EntryID: int
    Queue: GoQueue
    Type: str
    CronExpression: str


class GoWorker(TypedDict):
    Username: str
    Password: str
    Groups: list[str]
    Addr: str
    CurrentGroup: GoGroup
    Conn: dict[str, str]
    Status: str


class GoQueue(TypedDict):
    ID: str
    Slug: str
    Group: GoGroup
    RecurrentJobs: list[GoRecurrentJob] | None
    Jobs: list[GoJob] | None
    Workers: list[GoWorker] | None


class GoSession(TypedDict):
    Username: str
    Addr: str
    CurrentGroup: str
    IsWorker: bool
    Groups: list[str]


class GoHealth(TypedDict):
    Uptime: int
    Os: str
    Version: str
    NumCPU: int
    NumGoroutine: int
    NumSessions: int
    NumAuthed: int
    NumGroups: int
    NumUsers: int
    NumQueues: int
    NumJobs: int
    NumWorkers: int
    UnixTimestamp: int


class GoHelp(TypedDict):
    Name: str
    RequireAuth: bool
    RequireGroup: bool
    Args: int
    Description: str
    Usage: str


class GoDebug(TypedDict):
    Queues: list[GoQueue] | None
    Groups: list[GoGroup]
    Sessions: list[GoWorker]
    Users: list[GoWorker]
    Host: str
    Port: int


def _maybe(items: Sequence[_T] | None) -> list[_T] | None:
    return None if items is None else list(items)


def go_time(timestamp: float | None) -> str:
    """A POSIX time as Go's RFC 3339 with nanoseconds, in UTC; Go's zero time for None.

    Go trims trailing zeros of the fraction and omits it when it is zero.
    """
    if timestamp is None:
        return GO_ZERO_TIME
    moment = datetime.fromtimestamp(timestamp, UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def go_group(slug: str) -> GoGroup:
    """A group (shoal's namespace) as `{"Slug": ...}`."""
    return {"Slug": slug}


def _empty_queue() -> GoQueue:
    return go_queue(id="", slug="", group="")


def go_job(
    *,
    id: str,
    state: str,
    type: str,
    payload: str,
    attempts: int = 0,
    started_at: str = GO_ZERO_TIME,
    ended_at: str = GO_ZERO_TIME,
) -> GoJob:
    """A job object; its nested `Queue` and `Group` are empty, as upstream always sends them.

    Times are already formatted (`go_time`).
    """
    return {
        "ID": id,
        "State": state,
        "Type": type,
        "Payload": payload,
        "Attempts": attempts,
        "StartedProcessingAt": started_at,
        "EndProcessingAt": ended_at,
        "Queue": _empty_queue(),
        "Group": go_group(""),
    }


def go_queue(
    *,
    id: str,
    slug: str,
    group: str,
    recurrent_jobs: Sequence[GoRecurrentJob] | None = None,
    jobs: Sequence[GoJob] | None = None,
    workers: Sequence[GoWorker] | None = None,
) -> GoQueue:
    """A queue object; None lists are Go's nil slices (`null`), empty ones `[]`."""
    return {
        "ID": id,
        "Slug": slug,
        "Group": go_group(group),
        "RecurrentJobs": _maybe(recurrent_jobs),
        "Jobs": _maybe(jobs),
        "Workers": _maybe(workers),
    }


def go_recurrent_job(*, entry_id: int, type: str, cron: str) -> GoRecurrentJob:
    """A recurrent job object (its nested `Queue` is empty, as upstream)."""
    return {"EntryID": entry_id, "Queue": _empty_queue(), "Type": type, "CronExpression": cron}


def go_worker(
    *, username: str, groups: Sequence[str], addr: str, current_group: str, status: str = ""
) -> GoWorker:
    """A worker or session user; `Password` is always empty, `Conn` always `{}`.

    `status` is `""`, `"available"` or `"busy"`.
    """
    return {
        "Username": username,
        "Password": "",
        "Groups": list(groups),
        "Addr": addr,
        "CurrentGroup": go_group(current_group),
        "Conn": {},
        "Status": status,
    }


def go_session(
    *, username: str, addr: str, current_group: str, is_worker: bool, groups: Sequence[str]
) -> GoSession:
    """The `CURRENT_SESSION` object."""
    return {
        "Username": username,
        "Addr": addr,
        "CurrentGroup": current_group,
        "IsWorker": is_worker,
        "Groups": list(groups),
    }


def go_health(
    *,
    uptime: int,
    version: str,
    num_cpu: int,
    num_tasks: int,
    num_sessions: int,
    num_authed: int,
    num_groups: int,
    num_users: int,
    num_queues: int,
    num_jobs: int,
    num_workers: int,
    unix_timestamp: int,
    os: str = "linux",
) -> GoHealth:
    """The `HEALTH` object (`num_tasks` fills Go's `NumGoroutine`: asyncio tasks here)."""
    return {
        "Uptime": uptime,
        "Os": os,
        "Version": version,
        "NumCPU": num_cpu,
        "NumGoroutine": num_tasks,
        "NumSessions": num_sessions,
        "NumAuthed": num_authed,
        "NumGroups": num_groups,
        "NumUsers": num_users,
        "NumQueues": num_queues,
        "NumJobs": num_jobs,
        "NumWorkers": num_workers,
        "UnixTimestamp": unix_timestamp,
    }


def go_debug(
    *,
    queues: Sequence[GoQueue] | None,
    groups: Sequence[str],
    sessions: Sequence[GoWorker],
    users: Sequence[GoWorker],
    host: str,
    port: int,
) -> GoDebug:
    """The `DEBUG_JSON` object (test mode only); `Users` carry no passwords."""
    return {
        "Queues": _maybe(queues),
        "Groups": [go_group(slug) for slug in groups],
        "Sessions": list(sessions),
        "Users": list(users),
        "Host": host,
        "Port": port,
    }
