"""The `[tcp]` section: how the TCP surface (Jobatator's protocol) behaves.

The server turns it into the listener's `TcpSettings`; config imports no protocol, so the
section mirrors those settings here (the keys of Jobatator's `config.yml`, where they exist).
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.core.errors import InvalidArgument
from shoal.core.validation import MAX_INT32

__all__ = ["TcpConfig"]

#: The delay policies: none, or Jobatator's `IGNORE` (retries at once).
_DELAY_POLICIES = ("", "IGNORE")


@dataclass(frozen=True, slots=True)
class TcpConfig:
    """`[tcp]`: see `docs/tcp-protocol.md` (Settings) for each key."""

    #: The longest command line, in bytes.
    max_line: int = 1024 * 1024
    #: A partial line ending with a space, idle this long, is a command (the CLI).
    idle_flush: float = 0.05
    #: A connection that has not passed `AUTH` is closed after this long without input.
    auth_timeout: float = 30.0
    #: Enables DEBUG, DEBUG_JSON, DEBUG_PARTS and STOP_SERVER.
    test_mode: bool = False
    #: Enables DISPATCH.
    allow_dispatch: bool = False
    #: `IGNORE`: a job marked `errored` is retried at once.
    delay_policy: str = ""
    #: Seconds a job marked `done` is kept before it is deleted (0: at once).
    job_timeout: float = 3600.0
    #: The most jobs LIST_JOBS (and each queue of LIST_QUEUES) shows.
    max_listed_jobs: int = 1000
    #: The server renews the leases of connected workers.
    renew_leases: bool = True
    #: The most connections served at once.
    max_connections: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_line", "max_listed_jobs", "max_connections"):
            if not 1 <= getattr(self, name) <= MAX_INT32:
                raise InvalidArgument(name, f"must be an integer from 1 to {MAX_INT32}")
        for name in ("idle_flush", "auth_timeout"):
            if not getattr(self, name) > 0:
                raise InvalidArgument(name, "must be above 0")
        if self.delay_policy not in _DELAY_POLICIES:
            raise InvalidArgument("delay_policy", 'must be "" or "IGNORE"')
