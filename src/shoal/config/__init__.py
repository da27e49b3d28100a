"""Configuration: one frozen, typed tree, loaded once at the entry point and passed down.

Layers, each overriding the one before: the defaults below, then `shoal.toml` (the `--config`
file, else `$SHOAL_CONFIG`, else `./shoal.toml` if it exists), then `SHOAL_<SECTION>_<KEY>`
environment variables (`SHOAL_STORE_URL`, `SHOAL_SERVICE_LEASE_TTL`, ...), then command-line
flags. An unknown key or a bad value is a `ConfigError` that names it (and the nearest valid
key); nothing is silently dropped. Durations are seconds, or text with a unit: `250ms`, `15s`,
`5m`, `2h`, `7d`.

Example `shoal.toml`::

    store.url = "sqlite:///var/lib/shoal/shoal.db"
    service.lease_ttl = "15s"
    queues.emails = { max_attempts = 5, backoff = "exponential:base=2,cap=600" }
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from shoal.config._addresses import (
    STORE_SCHEMES,
    ListenAddress,
    StoreUrl,
    parse_listen,
    parse_store_url,
)
from shoal.config._auth import (
    AuthConfig,
    Identities,
    NamespaceConfig,
    TlsConfig,
    UserConfig,
    check_auth,
    exposed_without_auth,
    load_authorizer,
    parse_namespaces,
    parse_users,
)
from shoal.config._build import _build, _unknown
from shoal.config._schedules import SchedulesConfig, parse_schedules
from shoal.config._tcp import TcpConfig
from shoal.core.errors import ConfigError, InvalidArgument
from shoal.core.retry import RetryPolicy
from shoal.core.service import MAX_LOOKAHEAD, QueuePolicy, ServiceSettings
from shoal.core.validation import MAX_INT32, MAX_MESSAGE_BYTES, Limits

__all__ = [
    "STORE_SCHEMES",
    "AuthConfig",
    "Identities",
    "ListenAddress",
    "LoadedConfig",
    "LogConfig",
    "NamespaceConfig",
    "QueueConfig",
    "SchedulesConfig",
    "ServerConfig",
    "ServiceConfig",
    "ShoalConfig",
    "StoreConfig",
    "StoreUrl",
    "TcpConfig",
    "TlsConfig",
    "UserConfig",
    "load_authorizer",
    "load_config",
    "parse_listen",
    "parse_store_url",
]

_ENV_PREFIX = "SHOAL_"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where jobs are kept: `memory://`, `sqlite:///path/shoal.db` or `postgresql://...`."""

    url: str = "sqlite:///shoal.db"
    #: SQLite's `PRAGMA synchronous`: `NORMAL` (durable against a process crash) or `FULL`
    #: (also against a power loss).
    synchronous: str = "NORMAL"
    #: PostgreSQL: apply missing migrations when the server opens the store. With false, a
    #: server refuses an out-of-date database, for deployments that run `shoal db migrate` as a
    #: step of their own before rolling out replicas. (A SQLite file is always brought up to
    #: date: only one process ever holds it.)
    migrate: bool = True


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Listeners (HOST:PORT; empty turns one off; port 0 takes a free port) and shutdown."""

    grpc_listen: str = "127.0.0.1:50051"
    #: The gRPC services on shoal's native framing (docs/native-protocol.md); the SDK's
    #: `shoal://` URLs. Off unless set; TLS and mutual TLS as for gRPC (`tls.grpc_*`).
    native_listen: str = ""
    http_listen: str = ""
    tcp_listen: str = ""
    #: Allow listening on a non-loopback address without authentication.
    insecure: bool = False
    #: Seconds workers get to finish their jobs when the server stops.
    grace_period: float = 10.0
    #: Largest gRPC message accepted or sent, and largest HTTP request body accepted.
    max_message_bytes: int = MAX_MESSAGE_BYTES


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Leases, heartbeats and the background duties."""

    lease_ttl: float = 15.0
    heartbeat_interval: float = 2.0
    #: Finished jobs are deleted this long after they finish.
    retention: float = 7 * 86400.0
    #: How often expired leases are looked for.
    reap_interval: float = 0.5
    #: How long before its run_at a job may go to a worker that holds it until then (and how
    #: early `allow` schedules fire); 0 turns this off.
    lookahead: float = 0.1
    #: The record of a worker silent this long and holding no lease is deleted (it shows as
    #: lost after `lease_ttl`); 0 keeps records until their workers leave.
    forget_workers_after: float = 3600.0


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """Defaults for a queue's jobs (`[queues.NAME]`; `[queues.default]` is every queue's)."""

    max_attempts: int = 3
    #: A retry policy as text, e.g. `fixed:base=10` or `exponential:base=1,factor=2,cap=300`.
    backoff: str = ""
    #: Seconds an attempt may run; 0 for no limit.
    timeout: float = 0.0

    def policy(self) -> QueuePolicy:
        """The service's policy for this queue."""
        try:
            backoff = RetryPolicy.parse(self.backoff)
        except InvalidArgument as exc:
            raise ConfigError(f"queues: bad backoff {self.backoff!r}: {exc.message}") from exc
        return QueuePolicy(self.max_attempts, backoff, self.timeout or None)


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Logging of the server process (configured by the entry point only)."""

    level: str = "info"
    #: `text` or `json`.
    format: str = "text"


@dataclass(frozen=True, slots=True)
class ShoalConfig:
    """Everything the server reads at start-up."""

    store: StoreConfig = field(default_factory=StoreConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    limits: Limits = field(default_factory=Limits)
    queues: Mapping[str, QueueConfig] = field(default_factory=dict)
    log: LogConfig = field(default_factory=LogConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    #: `[[users]]` and `[[namespaces]]` (in the file only).
    identities: Identities = field(default_factory=Identities)
    #: `[[schedules]]` (in the file only): put at every server start.
    schedules: SchedulesConfig = field(default_factory=SchedulesConfig)
    tcp: TcpConfig = field(default_factory=TcpConfig)

    def service_settings(self) -> ServiceSettings:
        """The `QueueService` settings this configuration describes."""
        policies = {name: queue.policy() for name, queue in self.queues.items()}
        default = policies.pop("default", QueuePolicy())
        return ServiceSettings(
            lease_ttl=self.service.lease_ttl,
            heartbeat_interval=self.service.heartbeat_interval,
            retention=self.service.retention,
            lookahead=self.service.lookahead,
            forget_workers_after=self.service.forget_workers_after,
            limits=self.limits,
            default_policy=default,
            queue_policies={**policies, "default": default},
        )


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """The configuration and, for each dotted key, where its value came from."""

    config: ShoalConfig
    sources: Mapping[str, str]


_SECTIONS: dict[str, type] = {
    "store": StoreConfig,
    "server": ServerConfig,
    "service": ServiceConfig,
    "limits": Limits,
    "log": LogConfig,
    "auth": AuthConfig,
    "tls": TlsConfig,
    "tcp": TcpConfig,
}
#: Arrays of tables, read from the file only.
_ARRAYS = ("users", "namespaces", "schedules")


def _flatten(data: Mapping[str, object], where: str) -> dict[str, object]:
    """A nested layer (`{"service": {"lease_ttl": 5}}`) as dotted keys, sections checked."""
    flat: dict[str, object] = {}
    for section, content in data.items():
        if section not in (*_SECTIONS, "queues"):
            raise _unknown("section", section, [*_SECTIONS, "queues"], where)
        if not isinstance(content, Mapping):
            raise ConfigError(f"{section} (from {where}): must be a table")
        for name, value in content.items():
            if section != "queues":
                flat[f"{section}.{name}"] = value
            elif isinstance(value, Mapping):
                flat.update({f"queues.{name}.{key}": item for key, item in value.items()})
            else:
                raise ConfigError(f"queues.{name} (from {where}): must be a table")
    return flat


def _env_layers(env: Mapping[str, str]) -> list[tuple[str, dict[str, object]]]:
    """`SHOAL_<SECTION>_<KEY>` variables, one layer each."""
    layers: list[tuple[str, dict[str, object]]] = []
    for variable, value in sorted(env.items()):
        section, _, name = variable.removeprefix(_ENV_PREFIX).lower().partition("_")
        if not variable.startswith(_ENV_PREFIX):
            continue
        if section == "queues":
            raise ConfigError(f"{variable}: queues are configured in shoal.toml only")
        if section in _SECTIONS and name:  # others: SHOAL_CONFIG, other tools' variables
            layers.append((f"env {variable}", {f"{section}.{name}": value}))
    return layers


def _flag_layers(overrides: Mapping[str, object]) -> list[tuple[str, dict[str, object]]]:
    """Flag values by dotted key, one layer each."""
    layers: list[tuple[str, dict[str, object]]] = []
    for key, value in overrides.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "queues":
            nested: dict[str, Any] = {"queues": {parts[1]: {parts[2]: value}}}
        elif len(parts) == 2:
            nested = {parts[0]: {parts[1]: value}}
        else:
            raise ConfigError(f"cannot set {key!r}: use SECTION.KEY or queues.NAME.KEY")
        layers.append((f"flag {key}", _flatten(nested, f"flag {key}")))
    return layers


def _within(values: Mapping[str, object], prefix: str) -> dict[str, object]:
    return {key[len(prefix) :]: v for key, v in values.items() if key.startswith(prefix)}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> LoadedConfig:
    """Load the layers (see the module docstring) into a checked `ShoalConfig`.

    Args:
        path: The configuration file; else `$SHOAL_CONFIG`, else `./shoal.toml` if present.
        env: The environment (the process's when None).
        overrides: Values from command-line flags, by dotted key (`store.url`).
    """
    env = os.environ if env is None else env
    if path is None and env.get("SHOAL_CONFIG"):
        path = env["SHOAL_CONFIG"]
    if path is None and Path("shoal.toml").is_file():
        path = "shoal.toml"
    layers: list[tuple[str, dict[str, object]]] = []
    arrays: dict[str, object] = {}
    if path is not None:
        data = _read_file(Path(path))
        arrays = {key: data.pop(key) for key in _ARRAYS if key in data}
        layers.append((f"file {path}", _flatten(data, f"file {path}")))
    layers += _env_layers(env) + _flag_layers(overrides or {})
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for where, layer in layers:
        values.update(layer)
        sources.update(dict.fromkeys(layer, where))
    sections = {
        name: _build(cls, name, _within(values, f"{name}."), sources)
        for name, cls in _SECTIONS.items()
    }
    queue_names = dict.fromkeys(key.split(".")[0] for key in _within(values, "queues."))
    queues = {
        name: _build(QueueConfig, f"queues.{name}", _within(values, f"queues.{name}."), sources)
        for name in queue_names
    }
    identities = Identities(
        parse_users(arrays.get("users", []), env),
        parse_namespaces(arrays.get("namespaces", [])),
    )
    schedules = parse_schedules(arrays.get("schedules", []), sections["limits"])
    if schedules.declared:
        sources["schedules.declared"] = f"file {path}"
    config = ShoalConfig(queues=queues, identities=identities, schedules=schedules, **sections)
    _check(config, sources)
    for name, cls in _SECTIONS.items():
        for item in fields(cls):
            sources.setdefault(f"{name}.{item.name}", "default")
    return LoadedConfig(config, sources)


#: Settings that need a value above 0 (every duration is finite and >= 0 already, see
#: `_convert`; `Limits` checks its own): a reap_interval of 0 made an idle server spin on its
#: reaper, and a session_ttl of 0 signed nobody in. Where 0 has a meaning the key is not here:
#: server.grace_period (stop at once), service.retention (finished jobs go at the next pass),
#: service.lookahead and forget_workers_after, auth.audit_retention, queues.*.timeout.
_POSITIVE = (
    "server.max_message_bytes",
    "service.lease_ttl",
    "service.heartbeat_interval",
    "service.reap_interval",
    "auth.session_ttl",
)


def _check_numbers(config: ShoalConfig, sources: Mapping[str, str]) -> None:
    for key in _POSITIVE:
        section, name = key.split(".")
        if not getattr(getattr(config, section), name) > 0:
            raise ConfigError(f"{key} (from {sources.get(key, 'default')}): must be above 0")
    # gRPC takes its message limits as a C int: a larger one crashed the start with a traceback
    if config.server.max_message_bytes > MAX_INT32:
        where = sources.get("server.max_message_bytes", "default")
        raise ConfigError(f"server.max_message_bytes (from {where}): must be at most {MAX_INT32}")


def _check(config: ShoalConfig, sources: Mapping[str, str]) -> None:
    _check_numbers(config, sources)
    parse_store_url(config.store.url)
    if not 0 < config.service.heartbeat_interval < config.service.lease_ttl:
        raise ConfigError("service.heartbeat_interval must be shorter than service.lease_ttl")
    forget = config.service.forget_workers_after
    if forget != 0 and not forget > config.service.lease_ttl:
        raise ConfigError("service.forget_workers_after must be 0 (never) or exceed lease_ttl")
    if not 0 <= config.service.lookahead <= min(MAX_LOOKAHEAD, config.service.lease_ttl / 2):
        raise ConfigError(
            f"service.lookahead must be between 0 and {MAX_LOOKAHEAD:g}s (what the SDK's workers"
            " take), and at most half of service.lease_ttl"
        )
    if config.server.max_message_bytes <= config.limits.max_payload_bytes:
        raise ConfigError("server.max_message_bytes must exceed limits.max_payload_bytes")
    if config.log.format not in ("text", "json"):
        raise ConfigError(f"log.format must be text or json, not {config.log.format!r}")
    if config.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"log.level {config.log.level!r} is not a logging level")
    server = config.server
    check_auth(config.auth, config.tls)
    listeners = [
        (name, text, not text or parse_listen(text).is_loopback())
        for name in ("grpc_listen", "native_listen", "http_listen", "tcp_listen")
        for text in [getattr(server, name)]
    ]
    exposed = exposed_without_auth(listeners, config.auth, config.identities.users)
    if exposed and not server.insecure:
        raise ConfigError(
            f"{exposed} is not a loopback address and no authentication is configured: "
            'declare [[users]], set auth.enabled = "on", or set server.insecure (--insecure)'
        )
    for name, queue in config.queues.items():
        if not 1 <= queue.max_attempts <= config.limits.max_attempts:
            raise ConfigError(f"queues.{name}.max_attempts must be 1..{config.limits.max_attempts}")
        queue.policy()
