from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shoal.core.auth import AuthorizerHook, Role, parse_grants
from shoal.core.errors import ConfigError, ShoalError
from shoal.core.validation import check_name

AUTH_MODES = ("auto", "on", "off")


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Authentication and authorization (`[auth]`)."""

    #: `auto` (on when users are declared, in this file or in the store), `on` or `off`
    #: (`off` only on loopback addresses, or with server.insecure).
    enabled: str = "auto"
    #: A callable `module:name` refining each decision: (principal, action, namespace,
    #: decision) -> decision.
    authorizer: str = ""
    #: How long a dashboard sign-in lasts.
    session_ttl: float = 12 * 3600.0
    #: Audit entries older than this are deleted (checked once a minute); 0 keeps them all.
    audit_retention: float = 0.0


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS per listener (`[tls]`): PEM files; a listener without a certificate speaks clear
    text. `grpc_client_ca` turns on mutual TLS for gRPC: a client must show a certificate
    signed by that CA, and its common name is the user it acts as.
    """

    grpc_cert: str = ""
    grpc_key: str = ""
    grpc_client_ca: str = ""
    http_cert: str = ""
    http_key: str = ""
    tcp_cert: str = ""
    tcp_key: str = ""

    def pair(self, listener: str) -> tuple[str, str] | None:
        """The (certificate, key) files of `listener` (`grpc`, `http`, `tcp`), or None."""
        cert, key = getattr(self, f"{listener}_cert"), getattr(self, f"{listener}_key")
        return (cert, key) if cert else None


@dataclass(frozen=True, slots=True)
class UserConfig:
    """A user declared in `[[users]]`; its password is a scrypt hash (`shoal users hash`) or
    the name of an environment variable holding it in clear.
    """

    name: str
    grants: Mapping[str, frozenset[Role]]
    password_hash: str = ""
    password_env: str = ""


@dataclass(frozen=True, slots=True)
class NamespaceConfig:
    """A namespace declared in `[[namespaces]]` (created at start if missing)."""

    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Identities:
    """What `[[users]]` and `[[namespaces]]` declare."""

    users: tuple[UserConfig, ...] = ()
    namespaces: tuple[NamespaceConfig, ...] = field(default_factory=tuple)


def _table_list(data: object, key: str) -> list[Mapping[str, object]]:
    if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
        raise ConfigError(f"{key}: must be an array of tables ([[{key}]])")
    return list(data)


def _text(item: Mapping[str, object], key: str, where: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: must be text")
    return value


def parse_users(data: object, env: Mapping[str, str]) -> tuple[UserConfig, ...]:
    """`[[users]]` tables into `UserConfig`s; `ConfigError` naming the bad entry."""
    users: list[UserConfig] = []
    for index, item in enumerate(_table_list(data, "users")):
        where = f"users[{index}]"
        unknown = set(item) - {"name", "grants", "password_hash", "password_env"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        name = _text(item, "name", where)
        grants_raw = item.get("grants")
        if not isinstance(grants_raw, Mapping):
            raise ConfigError(f"{where}.grants: a table namespace -> role(s)")
        try:
            check_name("name", name)
            grants = parse_grants(grants_raw)
        except ShoalError as exc:
            raise ConfigError(f"{where}: {exc.message}") from exc
        password_hash = _text(item, "password_hash", where, "")
        password_env = _text(item, "password_env", where, "")
        if bool(password_hash) == bool(password_env):
            raise ConfigError(f"{where}: give exactly one of password_hash and password_env")
        if password_hash and not password_hash.startswith("scrypt$"):
            raise ConfigError(f"{where}.password_hash: not a hash made by `shoal users hash`")
        if password_env and not env.get(password_env):
            raise ConfigError(f"{where}.password_env: ${password_env} is not set")
        users.append(UserConfig(name, grants, password_hash, password_env))
    if len({user.name for user in users}) != len(users):
        raise ConfigError("users: a name is declared twice")
    return tuple(users)


def parse_namespaces(data: object) -> tuple[NamespaceConfig, ...]:
    """`[[namespaces]]` tables into `NamespaceConfig`s."""
    namespaces: list[NamespaceConfig] = []
    for index, item in enumerate(_table_list(data, "namespaces")):
        where = f"namespaces[{index}]"
        if set(item) - {"name", "description"}:
            raise ConfigError(f"{where}: only name and description are known")
        name = _text(item, "name", where)
        try:
            check_name("namespace", name)
        except ShoalError as exc:
            raise ConfigError(f"{where}: {exc.message}") from exc
        namespaces.append(NamespaceConfig(name, _text(item, "description", where, "")))
    return tuple(namespaces)


def check_auth(auth: AuthConfig, tls: TlsConfig) -> None:
    """The values of `[auth]` and `[tls]` that can be checked without starting."""
    if auth.enabled not in AUTH_MODES:
        raise ConfigError(f"auth.enabled must be one of {', '.join(AUTH_MODES)}")
    if auth.authorizer and ":" not in auth.authorizer:
        raise ConfigError("auth.authorizer must name a callable as module:name")
    for listener in ("grpc", "http", "tcp"):
        cert, key = getattr(tls, f"{listener}_cert"), getattr(tls, f"{listener}_key")
        if bool(cert) != bool(key):
            raise ConfigError(f"tls.{listener}_cert and tls.{listener}_key go together")
        for path in (cert, key):
            if path and not Path(path).is_file():
                raise ConfigError(f"tls.{listener}: no file {path!r}")
    if tls.grpc_client_ca and not tls.grpc_cert:
        raise ConfigError("tls.grpc_client_ca needs tls.grpc_cert and tls.grpc_key")
    if tls.grpc_client_ca and not Path(tls.grpc_client_ca).is_file():
        raise ConfigError(f"tls.grpc_client_ca: no file {tls.grpc_client_ca!r}")


def load_authorizer(spec: str) -> AuthorizerHook | None:
    """The hook `module:name` names, imported now; `ConfigError` if it is not a callable."""
    if not spec:
        return None
    module_name, _, attribute = spec.partition(":")
    try:
        hook = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"auth.authorizer {spec!r}: {exc}") from exc
    if not callable(hook):
        raise ConfigError(f"auth.authorizer {spec!r} is not callable")
    result: AuthorizerHook = hook
    return result


def exposed_without_auth(
    listeners: Sequence[tuple[str, str, bool]], auth: AuthConfig, users: Sequence[UserConfig]
) -> str | None:
    """The first (key, address) listening beyond loopback while auth may be off, as text."""
    if auth.enabled == "on" or (auth.enabled == "auto" and users):
        return None
    for key, text, loopback in listeners:
        if text and not loopback:
            return f"server.{key} = {text!r}"
    return None
