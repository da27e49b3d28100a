"""One client of the TCP protocol: commands in, service calls, replies out. No sockets.

A `Session` is made per connection (and per `/gateway` request). `execute(command)` runs
Jobatator's checks, then the command's handler (`_session_commands`, `_queues`, `_recurrent`,
`_worker_commands`), which calls the `QueueService` through a `GuardedService` for the
logged-in principal (so TCP enforces the same rights table as every other surface), and
returns the replies. Service errors become `Err:` replies; an unexpected exception is logged
and answered `Err: internal`, and the session carries on.

Asynchronous output (dispatch lines) goes through `push`. While a command runs, what it
causes is held back and written after its reply (upstream could write a dispatch line
before the reply of the SUBSCRIBE or UPDATE_JOB that caused it).

Groups are namespaces. `AUTH` checks a user's password (or, when the password is a shoal API
token, `shoal_...`, the token); with authentication off (loopback, no users) any `AUTH`
succeeds, as Jobatator clients always send one. A new `AUTH` re-checks the selected group
against the new user's grants (upstream kept it unchecked).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from shoal.core.auth import ALL_NAMESPACES, Action, Principal
from shoal.core.errors import NotFound, PermissionDenied, ShoalError, Unauthenticated
from shoal.core.guard import GuardedService
from shoal.core.ids import new_connection_worker_id
from shoal.core.model import DEFAULT_NAMESPACE, Job
from shoal.core.schedules import GuardedSchedules
from shoal.core.validation import check_name
from shoal.protocols.tcp import _queues, _recurrent, _session_commands, _worker_commands, dispatch
from shoal.protocols.tcp._hub import Hub
from shoal.protocols.tcp.commands import Command, ErrorCode, check
from shoal.protocols.tcp.replies import (
    ErrorReply,
    GoWorker,
    Reply,
    encode_all,
    error_reply,
    go_worker,
)

__all__ = ["Session"]

logger = logging.getLogger(__name__)

Handler = Callable[["Session", Command], Awaitable[Reply | Sequence[Reply]]]
_QUEUE_COMMANDS = frozenset(
    {
        "UNSUBSCRIBE",
        "DELETE_QUEUE",
        "PURGE_JOBS",
        "PURGE_WORKERS",
        "LIST_JOBS",
        "LIST_RECURRENT_JOBS",
        "STATS",
    }
)
_CONFLICTS = {"RETRY_JOB": ErrorCode.JOB_NOT_RETRYABLE, "DELETE_QUEUE": ErrorCode.QUEUE_BUSY}
#: Replies of commands received together are written at once; past this many bytes they are
#: written and the socket drained before the next command runs, so that a client that sends
#: many commands and reads nothing cannot make the server hold their replies (a 64 KiB read
#: of LIST_JOBS lines could ask for gigabytes).
_FLUSH_AT = 256 * 1024


class Session:
    """The state of one client: who it is, its group, its subscriptions and leases.

    Args:
        hub: What the sessions of this listener share.
        addr: The peer as `ip:port` (Jobatator identifies sessions by it).
        push: Writes bytes to the client; None for a session that cannot receive
            asynchronous lines (a `/gateway` request), which then is never sent jobs.
        hang_up: Ends the connection (a kick); None where there is none to end.
        drained: Waits until the client has read enough of what was written; None where
            replies are not written to a socket.
    """

    def __init__(
        self,
        hub: Hub,
        addr: str,
        push: Callable[[bytes], object] | None = None,
        hang_up: Callable[[], object] | None = None,
        drained: Callable[[], Awaitable[None]] | None = None,
    ):
        self.hub = hub
        self.id = hub.next_session_id()
        self.addr = addr
        self.worker_id = new_connection_worker_id()
        self.connected_at = hub.service.clock.now()
        self.receives = push is not None
        self._write = push
        self._hang_up = hang_up
        self._drained = drained
        self.principal: Principal | None = None
        self.username = ""
        self.group = ""
        self.guarded: GuardedService | None = None
        self.schedules: GuardedSchedules | None = None
        self.worker = dispatch.WorkerLink(self)
        #: Set by QUIT and STOP_SERVER: close the connection once the reply is written.
        self.closing = False
        #: Set by STOP_SERVER: stop the listener once the reply is written.
        self.stop_server = False
        self._held: list[bytes] | None = None
        hub.sessions[self.id] = self

    # --- identity ---------------------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        """Whether the client passed `AUTH`."""
        return self.principal is not None

    def groups(self) -> list[str]:
        """The groups named in the user's grants (`*` for all), as CURRENT_SESSION lists them."""
        return sorted(self.principal.grants) if self.principal is not None else []

    def require_guarded(self) -> GuardedService:
        """The service as this client may use it (`Unauthenticated` before AUTH)."""
        if self.guarded is None:
            raise Unauthenticated("AUTH first")
        return self.guarded

    def require_schedules(self) -> GuardedSchedules:
        """The schedules as this client may use them (`Unauthenticated` before AUTH)."""
        if self.schedules is None:
            raise Unauthenticated("AUTH first")
        return self.schedules

    def require(self, action: Action, namespace: str | None = None) -> None:
        """`PermissionDenied` unless the user may do `action` in the group (or `namespace`)."""
        if self.principal is None:
            raise Unauthenticated("AUTH first")
        self.hub.access.require(self.principal, action, namespace or self.group)

    def may(self, action: Action, namespace: str) -> bool:
        """Whether the user may do `action` in `namespace` (False before AUTH)."""
        if self.principal is None:
            return False
        return self.hub.access.authorizer.allows(self.principal, action, namespace)

    async def audit(self, action: str, target: str) -> None:
        """Record an admin action of this client in its group (the audit log)."""
        if self.principal is not None:
            await self.hub.access.record(self.principal, action, self.group, target)

    def _login(self, name: str, principal: Principal) -> None:
        authorizer = self.hub.access.authorizer
        self.principal = principal
        self.username = name
        self.guarded = GuardedService(self.hub.service, principal, authorizer)
        self.schedules = GuardedSchedules(self.hub.schedules, principal, authorizer)
        self.worker.wake()  # a worker logged out by a failed AUTH takes jobs again

    def _logout(self) -> None:
        self.principal = self.guarded = self.schedules = None
        self.username = self.group = ""

    def view(self) -> GoWorker:
        """The session as LIST_SESSIONS and DEBUG_JSON show it (never a password)."""
        return go_worker(
            username=self.username,
            groups=self.groups(),
            addr=self.addr,
            current_group=self.group,
            status=self.worker.status if self.worker.is_worker else "",
        )

    async def known_groups(self) -> set[str]:
        """Groups that exist: shoal's namespaces, those named in grants, and `default`."""
        names = {info.name for info in await self.hub.access.store.list_namespaces()}
        names |= {ns for ns, _ in self.hub.declared}
        if self.principal is not None:
            names |= set(self.principal.grants)
        names.add(DEFAULT_NAMESPACE)
        names.discard(ALL_NAMESPACES)
        return names

    async def group_error(self, group: str) -> ErrorCode | None:
        """Why the user may not select `group`, or None when it may."""
        try:
            check_name("group", group)
        except ShoalError:
            return ErrorCode.UNKNOWN_GROUP
        if group == ALL_NAMESPACES or self.principal is None:
            return ErrorCode.UNKNOWN_GROUP
        # Without authentication any group exists (there is no list of them to check).
        if self.hub.access.enabled and group not in await self.known_groups():
            return ErrorCode.UNKNOWN_GROUP
        if not self.principal.roles_in(group):
            return ErrorCode.FORBIDDEN_GROUP
        return None

    # --- lookups shared by the handlers -----------------------------------------------------

    async def queue_names(self, namespace: str | None = None) -> list[str]:
        """The queues of the group: those holding jobs, plus those published or subscribed to."""
        namespace = namespace or self.group
        stored = await self.require_guarded().list_queues(namespace)
        return sorted({info.name for info in stored} | self.hub.declared_in(namespace))

    async def queue_exists(self, queue: str) -> bool:
        """Whether the queue exists in the group (Jobatator's `unknown-queue` check)."""
        return queue in await self.queue_names()

    async def find_job(self, job_id: str) -> Job:
        """The job, looked up in the group, then in the user's other groups (upstream found
        jobs across all groups); `NotFound` if none holds it.
        """
        guarded = self.require_guarded()
        candidates = [self.group]
        others = self.groups()
        if ALL_NAMESPACES in others:
            others = sorted(await self.known_groups())
        candidates += [ns for ns in others if ns not in (self.group, ALL_NAMESPACES)]
        for namespace in candidates:
            try:
                return await guarded.get(namespace, job_id)
            except (NotFound, PermissionDenied):
                continue
        raise NotFound(f"job {job_id} not found")

    # --- running commands -------------------------------------------------------------------

    async def execute(self, command: Command) -> list[Reply]:
        """Check and run one command; its replies (several only for DEBUG's lines)."""
        failure = check(command, authenticated=self.authenticated, group_selected=bool(self.group))
        if failure is not None:
            return [ErrorReply(failure)]
        handler = _HANDLERS[command.name]
        try:
            result = await handler(self, command)
        except ShoalError as exc:
            not_found = ErrorCode.UNKNOWN_JOB
            if command.name in _QUEUE_COMMANDS:
                not_found = ErrorCode.UNKNOWN_QUEUE
            elif command.name == "DELETE_RECURRENT_JOB":
                not_found = ErrorCode.UNKNOWN_RECURRENT_JOB
            conflict = _CONFLICTS.get(command.name, ErrorCode.JOB_FINISHED)
            return [error_reply(exc, not_found=not_found, conflict=conflict)]
        except Exception:
            logger.exception(
                "TCP command %s failed",
                command.name,
                extra={"event": "tcp.command_failed", "command": command.name, "peer": self.addr},
            )
            return [ErrorReply(ErrorCode.INTERNAL)]
        if isinstance(result, Sequence):
            return list(result)
        return [result]

    async def respond(self, commands: Sequence[Command]) -> None:
        """Run commands received together, in order, and write their replies, then what they
        caused (dispatch lines). Consecutive PUBLISHes are enqueued in one store call.
        """
        self._held = []
        out: list[bytes] = []
        size = 0
        try:
            start = 0
            while start < len(commands) and not self.closing:
                end = self._publish_run(commands, start)
                if end - start > 1:
                    replies = await _queues.publish_many(self, commands[start:end])
                else:
                    replies = await self.execute(commands[start])
                start = max(end, start + 1)
                out.append(encode_all(replies))
                size += len(out[-1])
                if size > _FLUSH_AT and self._drained is not None:
                    self._flush(out)
                    out, size = [], 0
                    await self._drained()
        finally:
            self._flush(out)
            self._held = None

    def _flush(self, replies: list[bytes]) -> None:
        """Write the replies so far, then the lines their commands caused."""
        held, self._held = self._held or [], []
        if self._write is not None:
            self._write(b"".join(replies) + b"".join(held))

    def _publish_run(self, commands: Sequence[Command], start: int) -> int:
        """The end of the run of PUBLISHes that pass their checks, from `start`."""
        limit = start + self.hub.service.settings.limits.max_batch
        end = start
        while end < min(len(commands), limit):
            command = commands[end]
            if command.name != "PUBLISH" or check(
                command, authenticated=self.authenticated, group_selected=bool(self.group)
            ):
                break
            end += 1
        return end

    def push(self, data: bytes) -> None:
        """Send an asynchronous line (held back while a command of this session runs)."""
        if self._write is None:
            return
        if self._held is not None:
            self._held.append(data)
        else:
            self._write(data)

    def hang_up(self) -> None:
        """End the connection (a kick): its end releases what it still holds."""
        self.closing = True
        if self._hang_up is not None:
            self._hang_up()

    def finish(self) -> None:
        """End the connection once the command under way is answered (at once if none runs):
        the worker whose `done` let the server stop still reads its `OK`.
        """
        if self._held is not None:  # `respond` runs: the connection ends after its replies
            self.closing = True
        else:
            self.hang_up()

    async def close(self) -> None:
        """The client is gone: release its jobs and leave the session table."""
        self.hub.sessions.pop(self.id, None)
        self._write = None
        await self.worker.close()


_HANDLERS: dict[str, Handler] = {
    **_session_commands.HANDLERS,
    **_queues.HANDLERS,
    **_recurrent.HANDLERS,
    **_worker_commands.HANDLERS,
}
