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
#: Random bits are drawn from the OS in blocks (a system call per id was a tenth of a bulk
#: enqueue's event-loop time); each id still takes 62 fresh random bits of its own.
_POOL_IDS = 512
_pool = b""
_pool_at = 0
_fork_hook = False


def _forget_pool() -> None:
    # A forked child must not reuse the random bits its parent has yet to use, nor wait for
    # a lock another thread of the parent held when it forked.
    global _pool, _pool_at, _lock
    _pool, _pool_at, _lock = b"", 0, threading.Lock()


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of milliseconds, then a counter that keeps ids made in
    the same millisecond in order, then random bits.
    """
    return uuid.UUID(int=_uuid7_int())


def _refill() -> None:
    global _pool, _pool_at, _fork_hook
    if not _fork_hook:  # on first use, not at import
        os.register_at_fork(after_in_child=_forget_pool)
        _fork_hook = True
    _pool, _pool_at = os.urandom(10 * _POOL_IDS), 0


def _uuid7_int() -> int:
    global _last_ms, _seq, _pool_at
    with _lock:
        if _pool_at >= len(_pool):
            _refill()
        random_bits = int.from_bytes(_pool[_pool_at : _pool_at + 10], "big")
        _pool_at += 10
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFF:  # the counter is spent: borrow the next millisecond
                ms += 1
                _seq = 0
        else:
            _seq = (random_bits >> 64) & 0x3FF
        _last_ms = ms
        seq = _seq
    rand = random_bits & ((1 << 62) - 1)
    return (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand


def new_job_id() -> JobId:
    """A new job id: UUIDv7 text, so ids sort in creation order."""
    # Formatted here rather than by str(uuid.UUID): a third of the cost, paid once per job.
    h = f"{_uuid7_int():032x}"
    return JobId(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")


def new_token() -> str:
    """A new lease token; unguessable, so a worker cannot forge another's lease."""
    return secrets.token_hex(12)
