r"""Replies of the TCP protocol, their exact bytes, and the Go-shaped JSON they carry.

Every reply is text followed by `"\n"` (never `"\r\n"`), as Jobatator writes them::

    reply                                   bytes on the wire
    OK                                      OK
    OkId("0193f0c2-...")  / OkId(1)         OK#0193f0c2-...  /  OK#1
    ErrorReply(ErrorCode.UNKNOWN_JOB)       Err: unknown-job
    ErrorReply("invalid-cron", "bad")       Err: invalid-cron;bad
    PONG / WELCOME                          PONG  /  Welcome!
    BARE (QUIT, STOP_SERVER)                (an empty line)
    JsonReply(value)                        one line of compact JSON, Go `encoding/json` style
    Lines(...) / debug_lines(...)         several lines (DEBUG)
    Dispatch(job)                           {"Job":{...},"Debug":"Dispatch data"}  (pushed)

`encode(reply)` gives the bytes; `encode_all(replies)` joins several for one write. The JSON
builders (`go_job`, `go_queue`, ...) return dicts whose keys are Go's field names in Go's field
order; `go_json` renders them as Go does (compact, `<`, `>`, `&` escaped as `\u003c`...).
The mapping from shoal's model (`Job`, `QueueStats`, ...) lives in `go_job_from` and friends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from shoal.core.errors import ShoalError
from shoal.protocols.tcp._gomap import (
    GoHeartbeat,
    GoStats,
    error_reply_code,
    go_heartbeat,
    go_job_from,
    go_stats,
    jobatator_attempts,
    jobatator_state,
)
from shoal.protocols.tcp._goshapes import (
    GoDebug,
    GoGroup,
    GoHealth,
    GoHelp,
    GoJob,
    GoQueue,
    GoRecurrentJob,
    GoSession,
    GoWorker,
    go_debug,
    go_group,
    go_health,
    go_job,
    go_queue,
    go_recurrent_job,
    go_session,
    go_time,
    go_worker,
)
from shoal.protocols.tcp.commands import COMMANDS, HELP_NAMES, Command, ErrorCode

__all__ = [
    "BARE",
    "OK",
    "PONG",
    "WELCOME",
    "Dispatch",
    "ErrorReply",
    "GoDebug",
    "GoGroup",
    "GoHealth",
    "GoHeartbeat",
    "GoHelp",
    "GoJob",
    "GoQueue",
    "GoRecurrentJob",
    "GoSession",
    "GoStats",
    "GoWorker",
    "JsonReply",
    "Lines",
    "Ok",
    "OkId",
    "Reply",
    "TextReply",
    "debug_lines",
    "debug_parts_reply",
    "encode",
    "encode_all",
    "error_reply",
    "go_debug",
    "go_group",
    "go_health",
    "go_heartbeat",
    "go_job",
    "go_job_from",
    "go_json",
    "go_queue",
    "go_recurrent_job",
    "go_session",
    "go_stats",
    "go_time",
    "go_worker",
    "help_reply",
    "jobatator_attempts",
    "jobatator_state",
]

_EOL = b"\n"
# Go's encoding/json escapes these even inside valid strings (HTML safety, JS line breaks).
_GO_UNSAFE = re.compile("[<>&\u2028\u2029]")
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


@dataclass(frozen=True, slots=True)
class Ok:
    """`OK`: the command succeeded and has nothing to return."""


@dataclass(frozen=True, slots=True)
class OkId:
    """`OK#<id>`: a job was published (job ID) or a recurrent job declared (entry ID)."""

    value: str | int


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """`Err: <code>` or, with a detail, `Err: <code>;<detail>` (Jobatator's invalid-cron form)."""

    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TextReply:
    """One line of plain text (`PONG`, `Welcome!`, or empty for QUIT and STOP_SERVER)."""

    text: str


@dataclass(frozen=True, slots=True)
class JsonReply:
    """One line of JSON, rendered as Go's `encoding/json` does (see `go_json`)."""

    value: object


@dataclass(frozen=True, slots=True)
class Lines:
    """Several lines of text (the human-readable `DEBUG` dump)."""

    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dispatch:
    """The line pushed to a subscribed worker when a job is handed to it."""

    job: GoJob


#: Every kind of reply `encode` accepts.
Reply = Ok | OkId | ErrorReply | TextReply | JsonReply | Lines | Dispatch

#: The one `OK`.
OK = Ok()
#: What `PING` answers.
PONG = TextReply("PONG")
#: What a successful `AUTH` answers.
WELCOME = TextReply("Welcome!")
#: The bare line `QUIT` and `STOP_SERVER` send before closing.
BARE = TextReply("")


def _one_line(text: str) -> str:
    # A stray line break would desynchronise a client that reads one line per command.
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def _utf8(text: str) -> bytes:
    # Lone surrogates cannot be UTF-8; Go would write U+FFFD, we write "?": never raise.
    return text.encode("utf-8", "replace")


def go_json(value: object) -> str:
    """Render `value` as compact JSON the way Go's `encoding/json` writes it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_GO_ESCAPES) if _GO_UNSAFE.search(text) else text


def encode(reply: Reply) -> bytes:
    """The exact bytes of one reply, line terminator included.

    Args:
        reply: Any `Reply`.

    Returns:
        The bytes to write to the socket.
    """
    match reply:
        case Ok():
            return b"OK\n"
        case OkId(value):
            return b"OK#" + _utf8(_one_line(str(value))) + _EOL
        case ErrorReply(code, detail):
            text = f"Err: {code};{detail}" if detail else f"Err: {code}"
            return _utf8(_one_line(text)) + _EOL
        case TextReply(text):
            return _utf8(_one_line(text)) + _EOL
        case JsonReply(value):
            return _utf8(go_json(value)) + _EOL
        case Lines(lines):
            return b"".join(_utf8(_one_line(line)) + _EOL for line in lines)
        case Dispatch(job):
            return _utf8(go_json({"Job": job, "Debug": "Dispatch data"})) + _EOL
    raise TypeError(f"not a reply: {reply!r}")  # pragma: no cover - exhaustive above


def encode_all(replies: Iterable[Reply]) -> bytes:
    """The bytes of several replies, in order, for one socket write."""
    return b"".join(encode(reply) for reply in replies)


def help_reply(args: tuple[str, ...]) -> Reply:
    """What `HELP` answers: the list, or one command's description.

    `HELP` and `HELP a b` (three words or more) list the names; `HELP NAME` describes one,
    case-sensitively (`HELP publish` is `Err: unknown-command`), as Jobatator does.
    """
    if len(args) != 1:
        return JsonReply(list(HELP_NAMES))
    spec = COMMANDS.get(args[0])
    if spec is None or not spec.listed:
        return ErrorReply(ErrorCode.UNKNOWN_COMMAND)
    entry: GoHelp = {
        "Name": spec.name,
        "RequireAuth": spec.require_auth,
        "RequireGroup": spec.require_group,
        "Args": spec.args,
        "Description": spec.description,
        "Usage": spec.usage or spec.name,
    }
    return JsonReply(entry)


def debug_parts_reply(command: Command) -> JsonReply:
    """What `DEBUG_PARTS` answers: the parsed parts, name first."""
    return JsonReply(list(command.parts))


def error_reply(
    error: ShoalError,
    *,
    not_found: ErrorCode = ErrorCode.UNKNOWN_JOB,
    conflict: ErrorCode = ErrorCode.JOB_FINISHED,
) -> ErrorReply:
    """The `Err:` reply for an error raised by the service.

    Args:
        error: What the service raised.
        not_found: The code of a `NotFound`, which depends on the command's object
            (`unknown-job`, `unknown-queue`, `unknown-recurrent-job`).
        conflict: The code of a `Conflict` (`job-finished` for CANCEL_JOB,
            `job-not-retryable` for RETRY_JOB).

    Returns:
        The reply; only `InvalidArgument` carries its message, as the detail.
    """
    code, detail = error_reply_code(error, not_found=not_found, conflict=conflict)
    return ErrorReply(code, detail)


def debug_lines(
    *, groups: Iterable[str], sessions: Iterable[GoWorker], queues: Iterable[GoQueue]
) -> Lines:
    """The human-readable `DEBUG` dump (test mode), line for line as upstream prints it."""
    lines = ["== GROUPS ==", *(f"- slug: {slug}" for slug in groups)]
    lines += ["", "== SESSION USERS =="]
    for session in sessions:
        lines.append(f"- username: {session['Username']}")
        lines.append(f"  currentGroup: {session['CurrentGroup']['Slug']}")
        lines.append(f"  addr: {session['Addr']}")
    lines += ["", "== QUEUES =="]
    count = 0
    for queue in queues:
        count += 1
        lines += _debug_queue(queue)
    if count == 0:
        lines.append("No queues")
    return Lines(tuple(lines))


def _debug_queue(queue: GoQueue) -> list[str]:
    jobs = queue["Jobs"] or []
    recurrent = queue["RecurrentJobs"] or []
    workers = queue["Workers"] or []
    lines = [f"- slug: {queue['Slug']}", f"  id: {queue['ID']}", f"  jobs: {len(jobs)}"]
    for job in jobs:
        lines.append(f"    - id: {job['ID']}")
        lines.append(f"      type: {job['Type']}")
        lines.append(f"      state: {job['State']}")
        lines.append(f"      payload: {job['Payload']}")
    lines.append(f"  recurrent_jobs: {len(recurrent)}")
    for entry in recurrent:
        lines.append(f"    - id: {entry['EntryID']}")
        lines.append(f"      type: {entry['Type']}")
        lines.append(f"      expression: {entry['CronExpression']}")
    lines.append(f"  workers: {len(workers)}")
    for worker in workers:
        lines.append(f"    - addr: {worker['Addr']}")
        lines.append(f"      username: {worker['Username']}")
        lines.append(f"      status: {worker['Status']}")
    return lines
