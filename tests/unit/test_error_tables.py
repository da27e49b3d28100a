"""Every protocol reports each shoal error code the same way (DESIGN.md: one root error, one
stable code, mapped alike everywhere): the HTTP status, the gRPC status and the TCP `Err:`
code of an error must all say the same kind of thing, so that a client of any protocol knows
whether to retry, fix its request or give up.
"""

from __future__ import annotations

import grpc
import pytest

from shoal.core import errors
from shoal.protocols.grpc._status import status_of
from shoal.protocols.http.errors import STATUS_BY_CODE as HTTP_STATUS
from shoal.protocols.tcp._gomap import error_reply_code
from shoal.protocols.tcp.commands import ErrorCode

#: What each HTTP status means on the other two protocols.
_TWINS: dict[int, tuple[set[grpc.StatusCode], set[ErrorCode]]] = {
    422: ({grpc.StatusCode.INVALID_ARGUMENT}, {ErrorCode.INVALID_ARGUMENT}),
    404: ({grpc.StatusCode.NOT_FOUND}, {ErrorCode.UNKNOWN_JOB}),
    409: (
        {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED},
        {ErrorCode.JOB_FINISHED, ErrorCode.LEASE_LOST},
    ),
    401: ({grpc.StatusCode.UNAUTHENTICATED}, {ErrorCode.NOT_LOGGED}),
    403: ({grpc.StatusCode.PERMISSION_DENIED}, {ErrorCode.FORBIDDEN}),
    429: ({grpc.StatusCode.RESOURCE_EXHAUSTED}, {ErrorCode.RESOURCE_EXHAUSTED}),
    503: ({grpc.StatusCode.UNAVAILABLE}, {ErrorCode.UNAVAILABLE}),
    500: ({grpc.StatusCode.INTERNAL}, {ErrorCode.INTERNAL}),
}


def _error_classes() -> list[type[errors.ShoalError]]:
    """The errors a server raises (the SDK's own, such as `TaskFailed`, never cross a wire)."""
    return [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ShoalError)
    ]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda cls: cls.__name__)
def test_an_error_means_the_same_on_every_protocol(cls: type[errors.ShoalError]) -> None:
    error = errors.InvalidArgument("x", "bad") if cls is errors.InvalidArgument else cls("m")
    assert error.code in HTTP_STATUS, f"{error.code} has no HTTP status"
    grpc_twins, tcp_twins = _TWINS[HTTP_STATUS[error.code]]
    assert status_of(error) in grpc_twins
    assert error_reply_code(error)[0] in tcp_twins
