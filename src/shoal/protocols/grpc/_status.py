"""The one table from shoal error codes to gRPC status codes, and the helpers that use it.

Every servicer reports a `ShoalError` the same way: the mapped status, the error's message as
details, and trailing metadata `shoal-error-code` (plus `shoal-error-field` for an invalid
argument), so a client rebuilds the same error with `shoal.core.errors.error_from_code`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
import grpc.aio

from shoal.core.errors import InvalidArgument, ShoalError
from shoal.protocols.grpc.gen.shoal.v1 import model_pb2

#: gRPC status per shoal error code; any other code is INTERNAL.
STATUS_BY_CODE: dict[str, grpc.StatusCode] = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "unknown_task": grpc.StatusCode.NOT_FOUND,
    "conflict": grpc.StatusCode.FAILED_PRECONDITION,
    "lease_lost": grpc.StatusCode.ABORTED,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
    "resource_exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    # A driver error is most often passing (a lock, a lost connection): worth a retry, as
    # HTTP's 503 says too.
    "storage_error": grpc.StatusCode.UNAVAILABLE,
}
#: Trailing metadata keys carrying the shoal error.
CODE_KEY = "shoal-error-code"
FIELD_KEY = "shoal-error-field"


def status_of(error: ShoalError) -> grpc.StatusCode:
    """The gRPC status a shoal error is reported with."""
    return STATUS_BY_CODE.get(error.code, grpc.StatusCode.INTERNAL)


def metadata_of(error: ShoalError) -> tuple[tuple[str, str], ...]:
    """The trailing metadata that names the shoal error code (and field)."""
    if isinstance(error, InvalidArgument):
        return ((CODE_KEY, error.code), (FIELD_KEY, error.field))
    return ((CODE_KEY, error.code),)


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: ShoalError) -> NoReturn:
    """End the call with the status, message and metadata of `error`."""
    await context.abort(status_of(error), error.message, metadata_of(error))
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def error_message(error: ShoalError, job_id: str = "") -> model_pb2.Error:
    """The error as a stream message (the stream goes on)."""
    return model_pb2.Error(
        status=status_of(error).value[0],
        code=error.code,
        message=error.message,
        field=error.field if isinstance(error, InvalidArgument) else "",
        job_id=job_id,
    )


Request = TypeVar("Request")
Response = TypeVar("Response")
Servicer = TypeVar("Servicer")
Context = grpc.aio.ServicerContext[Any, Any]
UnaryMethod = Callable[[Servicer, Request, Context], Awaitable[Response]]


def mapped(
    method: UnaryMethod[Servicer, Request, Response],
) -> UnaryMethod[Servicer, Request, Response]:
    """Decorate a unary servicer method so that a `ShoalError` ends the call mapped."""

    @functools.wraps(method)
    async def wrapper(self: Servicer, request: Request, context: Context) -> Response:
        try:
            return await method(self, request, context)
        except ShoalError as error:
            await abort(context, error)

    return wrapper
