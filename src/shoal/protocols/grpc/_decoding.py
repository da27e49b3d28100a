"""Tolerant decoding: a message that does not parse is an invalid argument, not an internal
error, and on a stream it is reported as one message and the stream goes on.

grpcio ends a call with INTERNAL when a request does not deserialize. This interceptor wraps
each method's deserializer so that a failure yields a `Malformed` value instead; unary calls
receiving one are aborted with INVALID_ARGUMENT here, and stream handlers check for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from shoal.core.errors import InvalidArgument
from shoal.protocols.grpc._status import metadata_of

__all__ = ["Malformed", "TolerantDecoding"]

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True, slots=True)
class Malformed:
    """A request that did not parse."""

    reason: str

    def error(self) -> InvalidArgument:
        """The error to report."""
        return InvalidArgument("message", f"malformed protobuf message ({self.reason})")


async def _reject(context: Context, request: Malformed) -> None:
    error = request.error()
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.message, metadata_of(error))


class TolerantDecoding(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Turns undecodable requests into `Malformed` values (see the module docstring)."""

    def __init__(self) -> None:
        # The wrapped handler per method: wrapping costs closures and a namedtuple copy, which
        # every call paid before (the continuation hands back the same handler each time).
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _tolerant(handler)
        if handler is not None:
            self._wrapped[method] = (handler, wrapped)
        return wrapped


def _tolerant(handler: Any) -> Any:
    decode = getattr(handler, "request_deserializer", None)
    if decode is None:
        return handler

    def tolerant(data: bytes) -> object:
        try:
            return decode(data)
        except DecodeError as exc:
            return Malformed(str(exc) or "cannot parse")

    changes: dict[str, object] = {"request_deserializer": tolerant}
    if handler.unary_unary is not None:
        changes["unary_unary"] = _guard_unary(handler.unary_unary)
    elif handler.unary_stream is not None:
        changes["unary_stream"] = _guard_unary_stream(handler.unary_stream)
    return handler._replace(**changes)


def _guard_unary(
    behaviour: Callable[[Any, Context], Awaitable[object]],
) -> Callable[[Any, Context], Awaitable[object]]:
    async def guarded(request: object, context: Context) -> object:
        if isinstance(request, Malformed):
            await _reject(context, request)
        return await behaviour(request, context)

    return guarded


def _guard_unary_stream(
    behaviour: Callable[[Any, Context], AsyncIterator[object]],
) -> Callable[[Any, Context], AsyncIterator[object]]:
    async def guarded(request: object, context: Context) -> AsyncIterator[object]:
        if isinstance(request, Malformed):
            await _reject(context, request)
        async for item in behaviour(request, context):
            yield item

    return guarded
