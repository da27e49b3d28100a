"""A bound on request bodies, applied before routing.

FastAPI reads a route's whole body before it runs the route's dependencies (authentication
among them) and before any validation, so without a bound an anonymous caller can make the
server hold a body of any size. `BodyLimit` answers 413 `resource_exhausted` at once when
`Content-Length` announces more than the limit (not a byte of the body is read), and stops a
body sent without a length (chunked) as soon as the bytes received pass it.

It is a plain ASGI middleware rather than a `BaseHTTPMiddleware`, which would buffer responses
and cost a task per request: it only counts the `http.request` messages it passes on.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoal.core.errors import ResourceExhausted

from .errors import error_response

__all__ = ["BodyLimit"]


def _too_large(limit: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"the request body is larger than {limit} bytes (the server's max_message_bytes)"
    )


def _announced(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None or not (value.isascii() and value.isdigit()):
        return None  # no length (chunked), or one the server itself will refuse
    return int(value)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413 and the API's error body."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 for an announced body over the limit; else pass the request on, counting."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        announced = _announced(scope)
        if announced is not None and announced > limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counted() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised into whatever reads the body: it cannot go on with a part of it.
                    exceeded = True
                    raise _too_large(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body cut short; the 413 below replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = _too_large(self.limit)
        # The server discards the rest of an unread body; the connection stays usable.
        await error_response(413, error.code, error.message)(scope, receive, send)
