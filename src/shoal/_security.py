"""The composition root's security half: the `AccessService` built from `[auth]`, `[[users]]`
and `[[namespaces]]`, and the TLS material of each listener from `[tls]`.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

from shoal.config import ShoalConfig, load_authorizer
from shoal.core.access import AccessService
from shoal.core.auth import Authorizer, hash_password
from shoal.core.errors import ConfigError, Conflict
from shoal.core.identity import IdentityStore, NamespaceInfo
from shoal.core.service import QueueService
from shoal.protocols.grpc import GrpcTls

logger = logging.getLogger(__name__)


async def build_access(
    config: ShoalConfig, store: IdentityStore, service: QueueService | None = None
) -> AccessService:
    """Declare the configured namespaces and users, and decide whether auth is on.

    `auth.enabled = "auto"` turns it on when a user is declared in the file or exists in the
    store, or an API token exists: a server whose users were added with `shoal users add`
    cannot be left open by a forgotten setting. A namespace deleted is announced on the
    `service`'s bus, which the HTTP surface observes, and to the other replicas of a shared
    store.
    """
    authorizer = Authorizer(load_authorizer(config.auth.authorizer))
    access = AccessService(
        store,
        enabled=False,
        authorizer=authorizer,
        events=service.events if service else None,
        announce=service.publish_everywhere if service else None,
    )
    now = access.clock.now()
    for namespace in config.identities.namespaces:
        try:
            await store.create_namespace(NamespaceInfo(namespace.name, now, namespace.description))
        except Conflict:
            pass  # declared before: kept as it is
    for user in config.identities.users:
        password_hash = user.password_hash
        if user.password_env:
            password = os.environ.get(user.password_env, "")
            if not password:
                raise ConfigError(f"users {user.name!r}: ${user.password_env} is not set")
            password_hash = hash_password(password)
        await access.declare_user(user.name, password_hash, user.grants)
    mode = config.auth.enabled
    if mode == "auto":
        access.enabled = bool(
            config.identities.users or await store.list_users() or await store.list_tokens()
        )
    else:
        access.enabled = mode == "on"
    # Off is the quiet default on loopback; on is worth a line.
    logger.log(
        logging.INFO if access.enabled else logging.DEBUG,
        "authentication %s",
        "on" if access.enabled else "off (every caller may do everything)",
        extra={"event": "server.auth", "enabled": access.enabled},
    )
    return access


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path!r}: {exc.strerror or exc}") from exc


def grpc_tls(config: ShoalConfig) -> GrpcTls | None:
    """The gRPC listener's certificate, key and client CA, read now."""
    pair = config.tls.pair("grpc")
    if pair is None:
        return None
    ca = config.tls.grpc_client_ca
    return GrpcTls(
        cert_chain=_read(pair[0], "tls.grpc_cert"),
        private_key=_read(pair[1], "tls.grpc_key"),
        client_ca=_read(ca, "tls.grpc_client_ca") if ca else None,
    )


def server_ssl(config: ShoalConfig, listener: str) -> ssl.SSLContext | None:
    """A server TLS context for `listener` (`http`, `tcp`), or None for clear text."""
    pair = config.tls.pair(listener)
    if pair is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(pair[0], pair[1])
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls.{listener}_cert / _key: {exc}") from exc
    return context


def native_ssl(config: ShoalConfig) -> ssl.SSLContext | None:
    """The native listener's TLS context: the gRPC listener's certificate, and its client CA
    for mutual TLS (it serves the same services, so it takes the same credentials).
    """
    context = server_ssl(config, "grpc")
    ca = config.tls.grpc_client_ca
    if context is not None and ca:
        try:
            context.load_verify_locations(ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"tls.grpc_client_ca: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context
