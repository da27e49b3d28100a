"""Time-ordered identifiers (UUIDv7 text) and lease tokens."""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid

from shoal.core.model import JobId

__all__ = ["new_job_id", "new_token", "uuid7"]

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of milliseconds, then a counter that keeps ids made in
    the same millisecond in order, then random bits.
    """
    return uuid.UUID(int=_uuid7_int())


def _uuid7_int() -> int:
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFF:  # the counter is spent: borrow the next millisecond
                ms += 1
                _seq = 0
        else:
            _seq = int.from_bytes(os.urandom(2), "big") & 0x3FF
        _last_ms = ms
        seq = _seq
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    return (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand


def new_job_id() -> JobId:
    """A new job id: UUIDv7 text, so ids sort in creation order."""
    # Formatted here rather than by str(uuid.UUID): a third of the cost, paid once per job.
    h = f"{_uuid7_int():032x}"
    return JobId(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")


def new_token() -> str:
    """A new lease token; unguessable, so a worker cannot forge another's lease."""
    return secrets.token_hex(12)
