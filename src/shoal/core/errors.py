"""The one exception tree of shoal.

Every error a surface can report derives from `ShoalError` and carries a stable `code`. Each
protocol maps the code the same way (gRPC status, HTTP status, TCP `Err:` line), so a client
sees the same failure whichever door it came in by::

    ShoalError                  internal
    ├── InvalidArgument         invalid_argument      (names the offending field)
    ├── NotFound                not_found
    │   └── UnknownTask         unknown_task
    ├── Conflict                conflict              (the object is in the wrong state)
    ├── LeaseLost               lease_lost            (stale or unknown lease token)
    ├── Unauthenticated         unauthenticated
    ├── PermissionDenied        permission_denied
    ├── ResourceExhausted       resource_exhausted
    ├── Unavailable             unavailable           (shutting down, store closed)
    ├── ConfigError             config_error
    └── StorageError            storage_error         (a driver error, kept as __cause__)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "Conflict",
    "InvalidArgument",
    "LeaseLost",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ShoalError",
    "StorageError",
    "Unauthenticated",
    "Unavailable",
    "UnknownTask",
    "error_from_code",
]


class ShoalError(Exception):
    """An internal error."""

    code: str = "internal"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (type(self).__doc__ or self.code).strip()
        super().__init__(self.message)


class InvalidArgument(ShoalError):
    """An argument is not valid."""

    code = "invalid_argument"

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class NotFound(ShoalError):
    """The object does not exist."""

    code = "not_found"


class UnknownTask(NotFound):
    """No handler is registered for this task name."""

    code = "unknown_task"


class Conflict(ShoalError):
    """The object is not in a state that allows this operation."""

    code = "conflict"


class LeaseLost(ShoalError):
    """The lease token is stale: the job was reclaimed or finished by someone else."""

    code = "lease_lost"


class Unauthenticated(ShoalError):
    """Credentials are missing or wrong."""

    code = "unauthenticated"


class PermissionDenied(ShoalError):
    """The caller may not do this."""

    code = "permission_denied"


class ResourceExhausted(ShoalError):
    """A limit was reached."""

    code = "resource_exhausted"


class Unavailable(ShoalError):
    """The service is not available (starting, shutting down or closed)."""

    code = "unavailable"


class ConfigError(ShoalError):
    """The configuration is not valid."""

    code = "config_error"


class StorageError(ShoalError):
    """The storage backend failed."""

    code = "storage_error"


_BY_CODE: dict[str, type[ShoalError]] = {
    cls.code: cls
    for cls in (
        ShoalError,
        NotFound,
        UnknownTask,
        Conflict,
        LeaseLost,
        Unauthenticated,
        PermissionDenied,
        ResourceExhausted,
        Unavailable,
        ConfigError,
        StorageError,
    )
}


def error_from_code(code: str, message: str, field: str | None = None) -> ShoalError:
    """Rebuild an error received over the wire from its code, message and optional field."""
    if code == InvalidArgument.code:
        prefix = f"{field}: " if field else ""
        error = InvalidArgument(field or "?", message.removeprefix(prefix))
        return error
    cls = _BY_CODE.get(code, ShoalError)
    return cls(message)
