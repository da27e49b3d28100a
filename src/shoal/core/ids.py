"""Time-ordered identifiers (UUIDv7 text) and lease tokens."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
import uuid

from shoal.core.errors import InvalidArgument
from shoal.core.model import JobId

__all__ = [
    "check_chosen_worker_id",
    "new_connection_worker_id",
    "new_job_id",
    "new_job_ids",
    "new_token",
    "new_worker_session",
    "server_assigned",
    "uuid7",
    "worker_id_of",
]

_lock = threading.Lock()
_last_ms = 0
_seq = 0
#: Random bits are drawn from the OS in blocks (a system call per id was a tenth of a bulk
#: enqueue's event-loop time); each id still takes 62 fresh random bits of its own.
_POOL_IDS = 512
_pool = b""
_pool_at = 0
_fork_hook = False
#: The random bits of a UUIDv7 (after its version and variant).
_RANDOM_MASK = (1 << 62) - 1


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


def _refill(needed: int) -> None:
    global _pool, _pool_at, _fork_hook
    if not _fork_hook:  # on first use, not at import
        os.register_at_fork(after_in_child=_forget_pool)
        _fork_hook = True
    _pool, _pool_at = os.urandom(max(needed, 10 * _POOL_IDS)), 0


def _uuid7_int() -> int:
    return _uuid7_ints(1)[0]


def _uuid7_ints(count: int) -> list[int]:
    """`count` UUIDv7s as integers, in order: one lock, one clock read and one slice of random
    bits for all of them (a bulk enqueue asks for hundreds at once).
    """
    global _last_ms, _seq, _pool_at
    if count < 0:
        raise InvalidArgument("count", f"must be >= 0, not {count}")
    if count == 0:
        return []
    size = 10 * count
    with _lock:
        if _pool_at + size > len(_pool):
            _refill(size)
        block = _pool[_pool_at : _pool_at + size]
        _pool_at += size
        ms = time.time_ns() // 1_000_000
        seq = _seq
        if ms <= _last_ms:
            ms = _last_ms
        else:  # a new millisecond starts its counter at a random point of the lower quarter
            seq = ((block[0] << 8 | block[1]) & 0x3FF) - 1
        heads = []
        for _ in range(count):
            seq += 1
            if seq > 0xFFF:  # the counter is spent: borrow the next millisecond
                ms += 1
                seq = 0
            heads.append((ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62))
        _last_ms, _seq = ms, seq
    if count == 1:
        return [heads[0] | (int.from_bytes(block, "big") & _RANDOM_MASK)]
    return [
        head | (int.from_bytes(block[at : at + 10], "big") & _RANDOM_MASK)
        for head, at in zip(heads, range(0, size, 10), strict=True)
    ]


def new_job_id() -> JobId:
    """A new job id: UUIDv7 text, so ids sort in creation order."""
    return _text(_uuid7_int())


def new_job_ids(count: int) -> list[JobId]:
    """`count` new job ids, in creation order (cheaper per id than `new_job_id`)."""
    return [_text(value) for value in _uuid7_ints(count)]


def _text(value: int) -> JobId:
    # Formatted here rather than by str(uuid.UUID): a third of the cost, paid once per job.
    h = f"{value:032x}"
    return JobId(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")


def new_token() -> str:
    """A new lease token; unguessable, so a worker cannot forge another's lease."""
    return secrets.token_hex(12)


def new_worker_session() -> tuple[str, str]:
    """A worker stream's id and the secret that proves it is that stream's: the id is
    `worker_id_of(secret)`. Anyone who may list workers sees the id; only the worker gets the
    secret, and names its lost stream with it (`QueueService.resume_worker`).
    """
    secret = secrets.token_hex(16)
    return worker_id_of(secret), secret


def worker_id_of(secret: str) -> str:
    """The id of the worker stream `secret` was issued to (a hash: the id does not give the
    secret away, and no store needs to keep it).
    """
    return "w-" + hashlib.sha256(secret.encode()).hexdigest()[:32]


def new_connection_worker_id() -> str:
    """The worker id of a connection that works while it is open (a TCP session)."""
    return f"tcp-{uuid.uuid4().hex}"


#: The forms of the ids the server gives its worker streams and connections.
_SERVER_ASSIGNED = re.compile(r"(?:w|tcp)-[0-9a-f]{32}")


def server_assigned(worker_id: str) -> bool:
    """Whether `worker_id` has the form of an id the server assigns to a live stream or
    connection. A worker that names its own id (an HTTP pull worker) may not take one: its
    leave would then end a live worker's leases, a kick without the right to kick.
    """
    return _SERVER_ASSIGNED.fullmatch(worker_id) is not None


def check_chosen_worker_id(field_name: str, worker_id: str) -> str:
    """A worker id a worker chose itself (an HTTP pull worker, a unary gRPC fetch, a go-work
    member), refused in a form the server gives: its leave would end a live worker's leases.
    """
    if server_assigned(worker_id):
        raise InvalidArgument(field_name, "ids like w-<32 hex> and tcp-<32 hex> are the server's")
    return worker_id
