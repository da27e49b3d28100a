"""The commands about the session itself: AUTH and USE_GROUP (who the client is, and the group
it works in; `session`'s docstring has the rules), CURRENT_SESSION, LIST_SESSIONS, PING, QUIT
and HELP, then DEBUG_PARTS and STOP_SERVER (test mode only) and DISPATCH (`allow_dispatch`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shoal.core.errors import Unauthenticated
from shoal.protocols.tcp.commands import Command, ErrorCode
from shoal.protocols.tcp.replies import (
    BARE,
    OK,
    PONG,
    WELCOME,
    ErrorReply,
    JsonReply,
    Reply,
    debug_parts_reply,
    go_session,
    help_reply,
)

if TYPE_CHECKING:
    from shoal.protocols.tcp.session import Session

__all__ = ["HANDLERS"]

_TOKEN_PREFIX = "shoal_"


async def _auth(session: Session, command: Command) -> Reply:
    name, password = command.args
    access = session.hub.access
    # Failed logins are slowed per peer host: a new connection (a new port) does not reset it.
    peer = session.addr.rsplit(":", 1)[0]
    try:
        if not access.enabled:
            principal = access.anonymous()
        elif password.startswith(_TOKEN_PREFIX):
            try:
                principal = await access.authenticate_token(password, peer)
            except Unauthenticated:
                principal = await access.authenticate_password(name, password, peer)
        else:
            principal = await access.authenticate_password(name, password, peer)
    except Unauthenticated:
        session._logout()
        return ErrorReply(ErrorCode.INVALID_CREDS)
    session._login(name, principal)
    if session.group and await session.group_error(session.group) is not None:
        session.group = ""  # the new user may not use the old user's group
    return WELCOME


async def _use_group(session: Session, command: Command) -> Reply:
    error = await session.group_error(command.args[0])
    if error is not None:
        return ErrorReply(error)
    session.group = command.args[0]
    return OK


async def _current_session(session: Session, command: Command) -> Reply:
    return JsonReply(
        go_session(
            username=session.username,
            addr=session.addr,
            current_group=session.group,
            is_worker=session.worker.is_worker,
            groups=session.groups(),
        )
    )


async def _list_sessions(session: Session, command: Command) -> Reply:
    mine = [other for other in session.hub.sessions.values() if other.group == session.group]
    return JsonReply([other.view() for other in mine])


async def _ping(session: Session, command: Command) -> Reply:
    return PONG


async def _quit(session: Session, command: Command) -> Reply:
    session.closing = True
    return BARE


async def _help(session: Session, command: Command) -> Reply:
    return help_reply(command.args)


async def _debug_parts(session: Session, command: Command) -> Reply:
    if not session.hub.settings.test_mode:
        return ErrorReply(ErrorCode.TEST_MODE_DISABLED)
    return debug_parts_reply(command)


async def _stop_server(session: Session, command: Command) -> Reply:
    if not session.hub.settings.test_mode:
        return ErrorReply(ErrorCode.FORBIDDEN)
    session.closing = session.stop_server = True
    return BARE


async def _dispatch(session: Session, command: Command) -> Reply:
    if not session.hub.settings.allow_dispatch:
        return ErrorReply(ErrorCode.DISPATCH_DISABLED)
    for other in session.hub.sessions.values():
        other.worker.wake()
    return OK


#: Handlers of the session commands, by name.
HANDLERS = {
    "AUTH": _auth,
    "USE_GROUP": _use_group,
    "CURRENT_SESSION": _current_session,
    "LIST_SESSIONS": _list_sessions,
    "PING": _ping,
    "QUIT": _quit,
    "HELP": _help,
    "DEBUG_PARTS": _debug_parts,
    "STOP_SERVER": _stop_server,
    "DISPATCH": _dispatch,
}
