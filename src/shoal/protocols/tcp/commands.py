"""The command table of the TCP text protocol (Jobatator's set plus shoal's extensions).

A parsed line is a `Command`: its name upper-cased, its arguments as sent. The table
`COMMANDS` says, for every name, how many arguments it takes, whether it needs `AUTH` and a
selected group (`USE_GROUP`), and the help text that `HELP <NAME>` returns. `check` runs the
checks Jobatator runs before any handler, in its order, and returns the exact `Err:` reply.

Extension commands (listed by `HELP` after Jobatator's 25, so a client that indexes the
upstream list still finds it unchanged)::

    command                   auth group args  success reply           errors
    HEARTBEAT                 yes  yes   0     {"Renewed":[ids],       -
                                                "Lost":[ids],
                                                "Cancel":[ids]}
    CANCEL_JOB {job_id}       yes  yes   1     OK                      unknown-job, job-finished
    RETRY_JOB {job_id}        yes  yes   1     OK                      unknown-job,
                                                                       job-not-retryable
    STATS {queue_slug}        yes  yes   1     {"Queue":..,"Total":..,  unknown-queue
                                                "ByState":{..},
                                                "ByType":{..}}

`HEARTBEAT` renews the leases of every job the connection holds; `Lost` lists the jobs it no
longer holds (reclaimed, cancelled), `Cancel` the running jobs whose cancellation was asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ANY_ARGS",
    "COMMANDS",
    "EXTENSION_COMMANDS",
    "HELP_NAMES",
    "JOBATATOR_COMMANDS",
    "Command",
    "CommandSpec",
    "ErrorCode",
    "JobatatorState",
    "check",
    "update_state",
]

#: `CommandSpec.args` of a command that takes any number of arguments.
ANY_ARGS = -1


class ErrorCode(StrEnum):
    """The codes of `Err: <code>` replies: Jobatator's, then shoal's additions."""

    UNKNOWN_COMMAND = "unknown-command"
    NOT_LOGGED = "not-logged"
    GROUP_NON_SELECTED = "group-non-selected"
    WRONG_NUMBERS_ARGUMENTS = "wrong-numbers-arguments"
    INVALID_CREDS = "invalid-creds"
    UNKNOWN_GROUP = "unknown-group"
    FORBIDDEN_GROUP = "forbidden-group"
    UNKNOWN_QUEUE = "unknown-queue"
    UNKNOWN_JOB = "unknown-job"
    UNKNOWN_STATE = "unknown-state"
    DISPATCH_DISABLED = "dispatch-disabled"
    INVALID_CRON = "invalid-cron"
    UNKNOWN_RECURRENT_JOB = "unknown-recurrent-job"
    TEST_MODE_DISABLED = "test-mode-disabled"
    FORBIDDEN = "forbidden"
    #: A line longer than the parser's `max_line`; the server closes the connection.
    LINE_TOO_LONG = "line-too-long"
    #: The line is not valid UTF-8; the line is ignored, the connection stays open.
    INVALID_UTF8 = "invalid-utf8"
    #: A `'` group was opened and never closed (upstream silently dropped it).
    UNBALANCED_QUOTE = "unbalanced-quote"
    #: A malformed Redis-style array; the framing is lost, so the server closes.
    PROTOCOL_ERROR = "protocol-error"
    #: The job is finished and cannot be cancelled (`CANCEL_JOB`).
    JOB_FINISHED = "job-finished"
    #: Only failed or cancelled jobs can be retried (`RETRY_JOB`).
    JOB_NOT_RETRYABLE = "job-not-retryable"
    #: `DELETE_QUEUE` of a queue some of whose jobs are running.
    QUEUE_BUSY = "queue-busy"
    #: The job's lease is no longer held by this connection (`UPDATE_JOB`).
    LEASE_LOST = "lease-lost"
    #: An argument is out of bounds (too long a name, too big a payload).
    INVALID_ARGUMENT = "invalid-argument"
    #: A limit was reached (connections, queue size).
    RESOURCE_EXHAUSTED = "resource-exhausted"
    #: The server is shutting down or its store is unavailable.
    UNAVAILABLE = "unavailable"
    #: Anything else; the server logs the cause.
    INTERNAL = "internal"


class JobatatorState(StrEnum):
    """Job states as Jobatator names them (`UPDATE_JOB`, the `State` field of jobs)."""

    PENDING = "pending"
    IN_PROGRESS = "in-progress"
    ERRORED = "errored"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Command:
    """One parsed command: the name upper-cased, the arguments exactly as sent."""

    name: str
    args: tuple[str, ...] = ()

    @property
    def parts(self) -> tuple[str, ...]:
        """The name followed by the arguments (what `DEBUG_PARTS` echoes)."""
        return (self.name, *self.args)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """What the table knows of one command."""

    name: str
    #: Exact number of arguments, or `ANY_ARGS`.
    args: int
    require_auth: bool
    require_group: bool
    description: str
    #: The `{placeholder}` form; Jobatator reports the bare name when there is none.
    usage: str = ""
    #: Listed by `HELP` (every command but `HELP` itself).
    listed: bool = True

    @property
    def arg_names(self) -> tuple[str, ...]:
        """The placeholder names of the usage string, e.g. `("queue_slug",)`."""
        return tuple(word.strip("{}") for word in self.usage.split()[1:])


def _table(rows: tuple[tuple[str, bool, bool, str], ...]) -> tuple[CommandSpec, ...]:
    """Build specs from (usage, auth, group, description); the arg count follows the usage."""
    specs = []
    for usage, auth, group, description in rows:
        words = usage.split()
        name = words[0]
        count = ANY_ARGS if name == "DEBUG_PARTS" else len(words) - 1
        specs.append(CommandSpec(name, count, auth, group, description, usage))
    return tuple(specs)


# Order = Jobatator's `HELP` order; descriptions are verbatim (typos included: clients show them).
JOBATATOR_COMMANDS: tuple[CommandSpec, ...] = _table(
    (
        ("AUTH {username} {password}", False, False, "Authenticate with a username and a password"),
        ("USE_GROUP {group}", True, False, "Declare which group the client want to use"),
        (
            "PUBLISH {queue_slug} {job_type} {job_payload}",
            True,
            True,
            "Create a job in a queue and return the ID of the created job",
        ),
        ("SUBSCRIBE {queue_slug}", True, True, "Subscribe to a queue to receive jobs"),
        ("UNSUBSCRIBE {queue_slug}", True, True, "The exact oposite of the SUBSCRIBE command"),
        ("LIST_QUEUES", True, True, "List all queues in the current group"),
        ("DELETE_QUEUE {queue_slug}", True, True, "Delete a queue"),
        ("PURGE_JOBS {queue_slug}", True, True, "Delete every jobs in a queue"),
        ("PURGE_WORKERS {queue_slug}", True, True, "Unsubscribe every worker in a queue"),
        ("LIST_JOBS {queue_slug}", True, True, "List all jobs in a queue"),
        ("UPDATE_JOB {job_id} {job_status}", True, True, "Set the status of a job"),
        ("DELETE_JOB {job_id}", True, True, "Delete a job"),
        ("DISPATCH", False, False, "Will force the dispatch of jobs accross all the workers"),
        (
            "RECURRENT_JOB {queue_slug} {job_type} {cron_instruction}",
            True,
            True,
            "Declare recurrent job on a queue",
        ),
        (
            "LIST_RECURRENT_JOBS {queue_slug}",
            True,
            True,
            "List all the recurrent jobs of a queue",
        ),
        ("DELETE_RECURRENT_JOB {job_entry_id}", True, True, "Delete a recurrent job"),
        ("HEALTH", True, False, "Get the health of this jobatator instance"),
        ("DEBUG_PARTS", False, False, "Dump parsed command parts"),
        (
            "DEBUG",
            False,
            False,
            "Dump server data in a human readable format, only work if debug is enabled",
        ),
        (
            "DEBUG_JSON",
            False,
            False,
            "Dump server data in a JSON format, only work if debug is enabled",
        ),
        ("STOP_SERVER", False, False, "Stop the server, only work if test_mode is enabled"),
        ("PING", False, False, "Check if the connexion is alive"),
        ("QUIT", False, False, "Disconnect from the server"),
        (
            "CURRENT_SESSION",
            True,
            False,
            "Get current session data (user allowed groups for example)",
        ),
        ("LIST_SESSIONS", True, False, "List all sessions in the group"),
    )
)

EXTENSION_COMMANDS: tuple[CommandSpec, ...] = _table(
    (
        ("HEARTBEAT", True, True, "Renew the leases of the jobs this connection is running"),
        ("CANCEL_JOB {job_id}", True, True, "Cancel a job (a running one is told to stop)"),
        ("RETRY_JOB {job_id}", True, True, "Put a failed or cancelled job back in its queue"),
        ("STATS {queue_slug}", True, True, "Count the jobs of a queue by state and by type"),
    )
)

_HELP = CommandSpec(
    "HELP", ANY_ARGS, False, False, "List the commands, or describe one", "HELP", listed=False
)

#: Every command by name, in `HELP` order (HELP itself last and unlisted).
COMMANDS: Mapping[str, CommandSpec] = {
    spec.name: spec for spec in (*JOBATATOR_COMMANDS, *EXTENSION_COMMANDS, _HELP)
}

#: The names `HELP` lists: Jobatator's 25 in its order, then the extensions.
HELP_NAMES: tuple[str, ...] = tuple(spec.name for spec in COMMANDS.values() if spec.listed)


def check(command: Command, *, authenticated: bool, group_selected: bool) -> ErrorCode | None:
    """Run Jobatator's pre-handler checks, in its order, and return the first failure.

    The order matters to clients: an unauthenticated `PUBLISH` with two arguments gets
    `not-logged`, not `wrong-numbers-arguments`.

    Args:
        command: The parsed command.
        authenticated: Whether the connection has passed `AUTH`.
        group_selected: Whether the connection has a group (`USE_GROUP`).

    Returns:
        None when the handler may run, else the code of the `Err:` reply to send.
    """
    spec = COMMANDS.get(command.name)
    if spec is None:
        return ErrorCode.UNKNOWN_COMMAND
    if spec.require_auth and not authenticated:
        return ErrorCode.NOT_LOGGED
    if spec.require_group and not group_selected:
        return ErrorCode.GROUP_NON_SELECTED
    if spec.args != ANY_ARGS and len(command.args) != spec.args:
        return ErrorCode.WRONG_NUMBERS_ARGUMENTS
    return None


def update_state(text: str) -> JobatatorState | None:
    """The state an `UPDATE_JOB` argument names, or None (`Err: unknown-state`).

    Only `in-progress`, `done` and `errored` are accepted, exactly (case-sensitive), as
    upstream; `pending` is not a state a client may set.
    """
    if text == JobatatorState.PENDING:
        return None
    try:
        return JobatatorState(text)
    except ValueError:
        return None
