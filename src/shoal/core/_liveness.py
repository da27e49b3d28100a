"""Whether a principal's credentials are still usable, for what outlives one request.

A dashboard session, a TCP session after AUTH and a worker or enqueue stream keep the principal
they were opened with. `Liveness` answers, before each decision the authorizer makes, whether
its token is still neither revoked nor expired and its user (password or certificate) still the
one it was: from what the store said last, trusted for `LIVE_RECHECK` seconds and then read
again in the background, so that a check costs a dict lookup. A revocation made on this server
is seen at once; one made on another replica (PostgreSQL), within about `LIVE_RECHECK` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging

from shoal.core.auth import Principal
from shoal.core.clock import Clock
from shoal.core.errors import ShoalError
from shoal.core.identity import IdentityStore, User

__all__ = ["LIVE_RECHECK", "Liveness", "user_credential"]

logger = logging.getLogger(__name__)

#: Seconds what the store said of a principal's credentials is trusted.
LIVE_RECHECK = 5.0
#: The ways of proving oneself whose credentials the store holds, and can take back.
_STORED_METHODS = ("token", "password", "certificate")
#: How a principal is known here: its method, name (a token's owner) and credential.
Key = tuple[str, str, str]


class Liveness:
    """What this server knows of the credentials behind the principals it made."""

    def __init__(self, store: IdentityStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        #: By credential: since when, whether it is usable, and the write that said so (a
        #: re-read started before a revocation must not undo it).
        self._live: dict[Key, tuple[float, bool, int]] = {}
        self._writes = itertools.count()
        self._refreshing: dict[Key, asyncio.Future[None]] = {}

    def is_live(self, principal: Principal) -> bool:
        """Whether the credentials behind `principal` are still usable (module docstring)."""
        if principal.method not in _STORED_METHODS:
            return True  # anonymous, or a principal of the process's own (the CLI)
        key = key_of(principal)
        checked = self._live.get(key)
        if checked is None:  # made before this server forgot it (the table is bounded)
            self.verified(principal)
            return True
        since, usable, _ = checked
        if self._clock.now() - since >= LIVE_RECHECK and key not in self._refreshing:
            self._refreshing[key] = asyncio.ensure_future(self._refresh(key, principal))
        return usable

    def verified(self, principal: Principal) -> Principal:
        """`principal`, just checked against the store: trusted from now."""
        if principal.method in _STORED_METHODS:
            if len(self._live) >= 100_000:  # bounded: many short sessions come and go
                self._live.clear()
            self._live[key_of(principal)] = (self._clock.now(), True, next(self._writes))
        return principal

    def revoke(self, *keys: Key) -> None:
        """This server's sessions of these credentials end at once."""
        now = self._clock.now()
        for key in keys:
            self._live[key] = (now, False, next(self._writes))

    async def _refresh(self, key: Key, principal: Principal) -> None:
        start = self._live[key][2]
        try:
            now = self._clock.now()
            if principal.method == "token":
                record = await self._store.find_token(principal.credential)
                usable = record is not None and record.usable(now)
            else:
                user = await self._store.get_user(principal.name)
                credential = None if user is None else user_credential(user, principal.method)
                usable = credential == principal.credential
            current = self._live.get(key)
            if current is not None and current[2] == start:  # not revoked meanwhile
                self._live[key] = (now, usable, next(self._writes))
        except ShoalError as exc:  # a store failing: keep what was known, try again later
            logger.warning("could not check credentials: %s", exc.message)
        finally:
            del self._refreshing[key]


def key_of(principal: Principal) -> Key:
    """How `Liveness` knows a principal's credentials."""
    owner = principal.name.partition("/token:")[0] if principal.method == "token" else None
    return principal.method, owner or principal.name, principal.credential


def user_credential(user: User, method: str = "password") -> str:
    """A user principal's `credential`: which user it is (one removed and added again under
    its name is another) and, for a password login, which password (a new one ends the old
    one's sessions). Not a secret: a digest of the password's salted hash.
    """
    if method != "password":
        return f"user:{user.created_at!r}"
    digest = hashlib.blake2b(user.password_hash.encode(), digest_size=8).hexdigest()
    return f"user:{user.created_at!r}:{digest}"
