"""How a client proves itself to a server: an API token, and TLS material for `grpcs://`.

The token travels as `authorization: Bearer <token>` metadata on every call, the worker stream
included (a client interceptor adds it, so no call site can forget it). `grpcs://host:port`
opens a TLS channel checked against `ca` (the system's roots when None); `cert` and `key` make it
mutual TLS, and the server maps the certificate's common name to a user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import grpc
import grpc.aio

from shoal.core.errors import ConfigError
from shoal.core.validation import MAX_MESSAGE_BYTES
from shoal.sdk._transport import GRPC_SCHEMES, NATIVE_SCHEMES, REMOTE_SCHEMES

__all__ = ["GRPC_SCHEMES", "Credentials", "open_channel", "parse_grpc_url"]

#: gRPC's own limits are 4 MiB received, unbounded sent: a client must take what a server sends
#: (a job with a large result, a batch of assignments), up to the server's message limit. Its
#: reconnect backoff grows to 120 s: a worker (or a result wait) that keeps calling through an
#: outage left its channel waiting that long to try again once the server was back, and calls
#: failed meanwhile; a job server's clients want it back within a second.
_CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)

#: Where `Credentials.from_env` reads: the token itself, and paths of PEM files.
TOKEN_ENV, CA_ENV, CERT_ENV, KEY_ENV = "SHOAL_TOKEN", "SHOAL_CA", "SHOAL_CERT", "SHOAL_KEY"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A token and TLS material (PEM bytes); every part is optional."""

    token: str | None = None
    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None

    def __repr__(self) -> str:
        # Never print the token (logs, tracebacks, reprs of the objects that hold it).
        parts = [name for name in ("token", "ca", "cert", "key") if getattr(self, name)]
        return f"Credentials({', '.join(parts) or 'none'})"

    @classmethod
    def from_env(cls) -> Credentials:
        """`$SHOAL_TOKEN`, and the PEM files named by `$SHOAL_CA`, `$SHOAL_CERT`, `$SHOAL_KEY`."""
        return cls(
            token=os.environ.get(TOKEN_ENV) or None,
            ca=_read(CA_ENV),
            cert=_read(CERT_ENV),
            key=_read(KEY_ENV),
        )


def _read(variable: str) -> bytes | None:
    path = os.environ.get(variable)
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"${variable}: cannot read {path!r}: {exc.strerror or exc}") from exc


def _split(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url if "://" in url else f"grpc://{url}")
    if parts.scheme not in REMOTE_SCHEMES or not parts.hostname or not parts.port:
        raise ConfigError(
            f"{url!r} is not a server address; use grpc://host:port, shoal://host:port "
            "(the native framing), or grpcs:// / shoals:// for TLS"
        )
    return parts.scheme, parts.hostname, parts.port


def _target(hostname: str, port: int) -> str:
    host = f"[{hostname}]" if ":" in hostname else hostname
    return f"{host}:{port}"


def parse_grpc_url(url: str) -> tuple[str, str]:
    """(scheme, `host:port`) of a server URL: `grpc://`, `grpcs://`, `shoal://`, `shoals://`."""
    scheme, hostname, port = _split(url)
    return scheme, _target(hostname, port)


def open_channel(url: str, credentials: Credentials | None = None) -> grpc.aio.Channel:
    """A channel to `url`, carrying `credentials` (from the environment when None).

    `shoal://` and `shoals://` give a channel on the native framing: the same services and
    calls, a fraction of gRPC's cost per call for a Python client.
    """
    credentials = credentials if credentials is not None else Credentials.from_env()
    scheme, host, port = _split(url)
    if scheme in NATIVE_SCHEMES:
        return _native_channel(scheme, host, port, credentials)
    target = _target(host, port)
    # grpc-stubs types interceptors as a partial stub that must be cast.
    interceptors: Any = _token_interceptors(credentials.token) if credentials.token else None
    if scheme == "grpc":
        if credentials.cert or credentials.key:
            raise ConfigError(f"{url!r}: a client certificate needs TLS; use grpcs://")
        return grpc.aio.insecure_channel(target, _CHANNEL_OPTIONS, interceptors=interceptors)
    tls = grpc.ssl_channel_credentials(
        root_certificates=credentials.ca,
        private_key=credentials.key,
        certificate_chain=credentials.cert,
    )
    return grpc.aio.secure_channel(target, tls, _CHANNEL_OPTIONS, interceptors=interceptors)


def _native_channel(
    scheme: str, host: str, port: int, credentials: Credentials
) -> grpc.aio.Channel:
    from shoal.sdk._native import NativeChannel
    from shoal.sdk._native_connection import client_ssl

    metadata = [("authorization", f"Bearer {credentials.token}")] if credentials.token else []
    if scheme == "shoal":
        if credentials.cert or credentials.key:
            raise ConfigError(
                f"shoal://{host}:{port}: a client certificate needs TLS; use shoals://"
            )
        return NativeChannel(host, port, metadata=metadata)
    try:
        tls = client_ssl(credentials.ca, credentials.cert, credentials.key)
    except (ValueError, OSError) as exc:  # ssl.SSLError is an OSError
        raise ConfigError(f"shoals://{host}:{port}: bad TLS material: {exc}") from exc
    return NativeChannel(host, port, tls=tls, metadata=metadata)


if TYPE_CHECKING:  # generic in grpc-stubs only
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor[Any, Any]
    _StreamStream = grpc.aio.StreamStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor
    _StreamStream = grpc.aio.StreamStreamClientInterceptor


class _Token:
    def __init__(self, token: str) -> None:
        self._value = f"Bearer {token}"

    def _with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata()
        for key, value in details.metadata or ():
            metadata.add(key, value)
        metadata.add("authorization", self._value)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files each interceptor under the first call kind it implements, so each kind needs
# an interceptor of its own (one object implementing all four would only see unary calls).
class _UnaryUnaryToken(_Token, _UnaryUnary):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_token(details), request)


class _UnaryStreamToken(_Token, _UnaryStream):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_token(details), request)


class _StreamUnaryToken(_Token, _StreamUnary):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._with_token(details), requests)


class _StreamStreamToken(_Token, _StreamStream):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._with_token(details), requests)


def _token_interceptors(token: str) -> list[_Token]:
    kinds = (_UnaryUnaryToken, _UnaryStreamToken, _StreamUnaryToken, _StreamStreamToken)
    return [kind(token) for kind in kinds]
