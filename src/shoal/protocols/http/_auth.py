from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from fastapi import Request

from shoal.core.access import AccessService
from shoal.core.auth import Principal
from shoal.core.clock import Clock
from shoal.core.errors import PermissionDenied, Unauthenticated

#: The dashboard's session cookie (an opaque id; the principal stays on the server).
SESSION_COOKIE = "shoal_session"
#: The header a cookie-authenticated state-changing request must carry (the page's token).
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_SESSIONS = 10_000

_CALLER: ContextVar[Principal | None] = ContextVar("shoal_http_caller", default=None)


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in dashboard user."""

    principal: Principal
    csrf: str
    expires_at: float


class Sessions:
    """Dashboard sign-ins, in memory: a restart signs everyone out (a session cookie is a
    convenience for people, not a credential that must outlive the process).
    """

    def __init__(self, clock: Clock, ttl: float) -> None:
        self._clock = clock
        self._ttl = ttl
        self._sessions: dict[str, WebSession] = {}

    def open(self, principal: Principal) -> tuple[str, WebSession]:
        """A new session id (the cookie's value) and the session."""
        now = self._clock.now()
        if len(self._sessions) >= _MAX_SESSIONS:  # bounded: forget the expired, else the oldest
            live = {k: s for k, s in self._sessions.items() if s.expires_at > now}
            self._sessions = live or {}
            while len(self._sessions) >= _MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
        session_id = secrets.token_urlsafe(32)
        session = WebSession(principal, secrets.token_urlsafe(24), now + self._ttl)
        self._sessions[session_id] = session
        return session_id, session

    def get(self, session_id: str) -> WebSession | None:
        """The live session of a cookie value, or None."""
        session = self._sessions.get(session_id)
        if session is not None and session.expires_at <= self._clock.now():
            self._sessions.pop(session_id, None)
            return None
        return session

    def close(self, session_id: str) -> None:
        """Sign out."""
        self._sessions.pop(session_id, None)


def _peer(request: Request) -> str:
    return request.client.host if request.client else ""


async def authenticate(
    access: AccessService, sessions: Sessions, request: Request
) -> tuple[Principal, WebSession | None]:
    """The caller: `Authorization: Bearer <token>` or `Basic <user:password>`, else the
    dashboard's session cookie (with the CSRF header on a state-changing request), else
    anonymous (refused when authentication is on).
    """
    header = request.headers.get("authorization", "").strip()
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return await access.authenticate_token(credentials, _peer(request)), None
    if scheme.lower() == "basic" and credentials:
        try:
            name, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed basic credentials") from None
        return await access.authenticate_password(name, password, _peer(request)), None
    if header:
        raise Unauthenticated("send Authorization: Bearer <token>")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = sessions.get(cookie)
        if session is not None and not access.is_live(session.principal):
            sessions.close(cookie)  # its token was revoked, its user removed or re-passworded
            session = None
        if session is None:
            raise Unauthenticated("the session has ended; sign in again")
        if request.method not in _SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                raise PermissionDenied("missing or wrong CSRF token (X-CSRF-Token)")
        return session.principal, session
    return access.anonymous(), None


def set_caller(principal: Principal) -> None:
    """Keep the request's principal for the route (dependencies run in the route's context)."""
    _CALLER.set(principal)


def current_caller() -> Principal:
    """The principal of the request being served."""
    principal = _CALLER.get()
    if principal is None:
        raise Unauthenticated("credentials are required")
    return principal


def basic_header(name: str, password: str) -> Mapping[str, str]:
    """An `Authorization: Basic` header (for clients and tests)."""
    text = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"authorization": f"Basic {text}"}
