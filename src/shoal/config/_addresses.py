"""The addresses the configuration names: the store's URL and each listener's HOST:PORT, and
how they are parsed. `shoal.config` checks them as the configuration loads; `shoal.server`
picks its store and opens its listeners by them. Import these names from `shoal.config`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from shoal.config._build import _unknown
from shoal.core.errors import ConfigError

#: Store URL schemes the server knows (see `shoal.server`).
STORE_SCHEMES = ("memory", "sqlite", "postgresql", "postgres")


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A parsed store URL: the scheme and what follows (a path for SQLite)."""

    scheme: str
    path: str
    url: str


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A HOST:PORT to listen on."""

    host: str
    port: int

    def is_loopback(self) -> bool:
        """Whether only this machine can connect."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_store_url(url: str) -> StoreUrl:
    """Split a store URL; `ConfigError` for an unknown scheme or a missing path."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"store.url {url!r} is not a URL (memory://, sqlite:///path, ...)")
    if scheme not in STORE_SCHEMES:
        raise _unknown("store scheme", scheme, STORE_SCHEMES, f"store.url {url!r}")
    if scheme == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy writes them
        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise ConfigError(f"store.url {url!r} names no file (sqlite:///path/shoal.db)")
        return StoreUrl(scheme, path, url)
    return StoreUrl(scheme, rest, url)


def parse_listen(text: str) -> ListenAddress:
    """`HOST:PORT` (`[v6]:PORT` for IPv6) into its parts; `ConfigError` when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"cannot listen on {text!r}: expected HOST:PORT, e.g. 127.0.0.1:50051")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return ListenAddress(host, int(port))
