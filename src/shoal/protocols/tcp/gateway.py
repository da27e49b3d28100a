"""Jobatator's HTTP gateway: `POST /gateway` runs a list of TCP commands, answers in JSON.

Request: `{"commands": ["AUTH user1 pass1", "USE_GROUP group1", "LIST_QUEUES"]}`. Response:
`{"success": bool, "data": [...], "errors": [...]}`, 200 when no command failed, else 400.
Each reply that is not an error goes to `data` in order (JSON replies as JSON values, the
others as their text); each `Err: <code>` goes to `errors` as `{"message": "", "code":
"<code>"}`. Authentication is per request: put AUTH and USE_GROUP in the list. OPTIONS answers
200 with an empty result, other methods 405, a bad body 400 `invalid-body` (seed-systems.md
1.8). The body must be sent as `application/json` (else 415 `invalid-content-type`).

Upstream turned CORS on for the origin of any `Referer`; here only a page of the server's own
origin (its `Origin`, else its `Referer`, naming the request's `Host`) gets those headers, and
a request from a page of any other origin is refused with 403 `forbidden-origin` before a
command runs. A request that names no origin (a script, curl) is served as before.

Upstream opened a TCP connection to its own port per request and injected only the first JSON
reply into `data`, leaving `"$!$!__1__!$!$"` placeholders for the others (section 8, item 6).
Here the commands run through a fresh in-process `Session` (no socket), and every JSON reply
is placed in `data`. A session of the gateway receives no dispatch lines: a SUBSCRIBE through
it registers a worker that leaves when the request ends, and is never sent a job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.core.access import AccessService
from shoal.core.schedules import ScheduleApi
from shoal.core.service import QueueService
from shoal.protocols.tcp._hub import Hub, TcpSettings
from shoal.protocols.tcp.codec import ParseError, Parser
from shoal.protocols.tcp.replies import ErrorReply, JsonReply, Lines, Reply, encode, go_json
from shoal.protocols.tcp.session import Session

__all__ = ["GATEWAY_PATH", "MAX_COMMANDS", "create_gateway_app", "gateway_route"]

#: Where the gateway answers.
GATEWAY_PATH = "/gateway"
#: The most commands one request may run.
MAX_COMMANDS = 1000
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _origin(request: Request) -> str | None:
    """The web origin the request comes from (a browser names it), or None (a script)."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin
    referer = request.headers.get("referer")  # upstream's only source, for clients without Origin
    if not referer:
        return None
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}"


def _same_origin(request: Request, origin: str) -> bool:
    # The page must come from the host it posts to. Only host and port are compared: behind a
    # TLS proxy the page is https while the request reaches us as http. "null" (a sandboxed
    # frame, a file) has no host and never matches.
    host = request.headers.get("host", "").lower()
    return bool(host) and urlsplit(origin).netloc.lower() == host


def _cors(request: Request) -> dict[str, str] | None:
    """Upstream's CORS headers for a page of the server's own origin; {} for a request no
    page sent; None for a page of another origin, which must not use the gateway.

    Upstream reflected any Referer's origin, so with authentication off (any AUTH succeeds)
    every web site could run commands and read their answers.
    """
    origin = _origin(request)
    if origin is None:
        return {}
    if not _same_origin(request, origin):
        return None
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "Content-Type, Referer",
    }


def _is_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0]
    return media_type.strip().lower() == "application/json"


def _answer(
    status: int,
    data: list[object] | None,
    errors: list[dict[str, str]],
    headers: Mapping[str, str],
) -> Response:
    body = go_json({"success": status == 200, "data": data, "errors": errors})
    return Response(body, status, headers=headers, media_type="application/json")


def _error(status: int, message: str, code: str, headers: Mapping[str, str]) -> Response:
    return _answer(status, None, [{"message": message, "code": code}], headers)


def _commands(body: bytes) -> list[str] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    commands = parsed.get("commands") if isinstance(parsed, dict) else None
    if not isinstance(commands, list) or not commands or len(commands) > MAX_COMMANDS:
        return None
    if not all(isinstance(command, str) for command in commands):
        return None
    return commands


async def _read(request: Request, limit: int) -> bytes | None:
    """The body, or None past `limit` bytes (read no further: a huge body costs nothing)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _place(reply: Reply, data: list[object], errors: list[dict[str, str]]) -> None:
    if isinstance(reply, ErrorReply):
        code = f"{reply.code};{reply.detail}" if reply.detail else str(reply.code)
        errors.append({"message": "", "code": code})
    elif isinstance(reply, JsonReply):
        data.append(reply.value)
    elif isinstance(reply, Lines):
        data.append("\n".join(reply.lines))
    else:
        data.append(encode(reply).decode("utf-8", "replace").removesuffix("\n"))


async def _run(
    hub: Hub, addr: str, commands: list[str]
) -> tuple[list[object], list[dict[str, str]]]:
    data: list[object] = []
    errors: list[dict[str, str]] = []
    session = Session(hub, addr)
    parser = Parser(hub.settings.max_line)
    try:
        for text in commands:
            for event in parser.feed(text.encode("utf-8", "replace") + b"\n"):
                replies: list[Reply]
                if isinstance(event, ParseError):
                    replies = [event.reply]
                else:
                    replies = await session.execute(event)
                for reply in replies:
                    _place(reply, data, errors)
            if session.closing or parser.closed:
                break
        if session.stop_server:
            hub.stop_requested.set()
    finally:
        await session.close()
    return data, errors


def gateway_route(hub: Hub) -> Route:
    """The `/gateway` route, to add to another Starlette or FastAPI app."""

    async def gateway(request: Request) -> Response:
        cors = _cors(request)
        headers = cors or {}
        if request.method == "OPTIONS":
            return _answer(200, None, [], headers)  # a preflight from elsewhere gets no grant
        if request.method != "POST":
            return _error(405, "Method not allowed", "method-not-allowed", headers)
        if cors is None:
            # Refused before anything runs: a simple request (a form, a text/plain fetch) is
            # sent without a preflight, so withholding CORS headers alone would still run it.
            return _error(403, "Origin not allowed", "forbidden-origin", headers)
        if not _is_json(request):
            # A JSON content type makes a browser ask first (a preflight), which only the
            # server's own origin is granted; upstream's clients send it (hence the
            # Content-Type in its Access-Control-Allow-Headers).
            message = "Content-Type must be application/json"
            return _error(415, message, "invalid-content-type", headers)
        body = await _read(request, 4 * hub.settings.max_line)
        commands = _commands(body) if body is not None else None
        if commands is None:
            return _error(400, "Invalid body", "invalid-body", headers)
        client = request.client
        addr = f"{client.host}:{client.port}" if client else "gateway"
        data, errors = await _run(hub, addr, commands)
        return _answer(400 if errors else 200, data, errors, headers)

    return Route(GATEWAY_PATH, gateway, methods=_METHODS)


def create_gateway_app(
    service: QueueService,
    access: AccessService,
    schedules: ScheduleApi,
    settings: TcpSettings | None = None,
    *,
    hub: Hub | None = None,
) -> Starlette:
    """An ASGI app serving `/gateway`.

    Args:
        service: The queue service.
        access: Authentication (AUTH in the command list).
        schedules: For RECURRENT_JOB and its kin.
        settings: The TCP surface's settings (test mode, delay policy, ...).
        hub: The TCP listener's hub (`TcpServer.hub`), to share its sessions and queues;
            a new one when None (the gateway without a TCP listener).
    """
    hub = hub or Hub(service, access, schedules, settings)
    return Starlette(routes=[gateway_route(hub)])
