"""Without authentication, answer only requests addressed to this machine by name or address.

A server without authentication listens on loopback only (the config refuses anything else),
so no other machine can reach it; a web page can, through the browser of someone on the
machine, by DNS rebinding: its own domain resolves to 127.0.0.1, and the page's requests are
then same-origin for the browser (no CORS check applies) while they reach this server. The
`Host` header still carries the page's domain. `LoopbackHosts` refuses a `Host` that names a
domain (a dotted name that is not an IP address or under `.localhost`): loopback addresses,
`localhost` and single-label names (a test client's `testserver`) pass.
"""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from shoal.core.errors import PermissionDenied

from .errors import error_response

__all__ = ["LoopbackHosts", "is_local_host"]


def is_local_host(host: str) -> bool:
    """Whether a `Host` header value (with or without its port) may address this server."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8080
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    try:
        ipaddress.ip_address(name)
        return True  # an address cannot be rebound to another machine
    except ValueError:
        pass
    name = name.rstrip(".")
    return "." not in name or name.endswith(".localhost")


class LoopbackHosts:
    """Answer 403 `permission_denied` to a request whose `Host` names a domain."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request on if its `Host` may address this server (module docstring)."""
        if scope["type"] in ("http", "websocket"):
            host = Headers(scope=scope).get("host", "")
            if host and not is_local_host(host):
                refused = PermissionDenied(
                    f"this server has no authentication and answers only requests addressed to"
                    f" this machine (localhost, a loopback address), not to {host!r}"
                )
                response = error_response(403, refused.code, refused.message)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
