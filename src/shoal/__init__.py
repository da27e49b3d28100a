"""shoal: a job server and Python task framework."""

from __future__ import annotations

from shoal.core.errors import (
    ConfigError,
    Conflict,
    InvalidArgument,
    LeaseLost,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ShoalError,
    StorageError,
    Unauthenticated,
    Unavailable,
    UnknownTask,
)
from shoal.core.model import Job, JobState

__all__ = [
    "ConfigError",
    "Conflict",
    "InvalidArgument",
    "Job",
    "JobState",
    "LeaseLost",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ShoalError",
    "StorageError",
    "Unauthenticated",
    "Unavailable",
    "UnknownTask",
    "__version__",
]

__version__ = "0.1.0.dev0"
