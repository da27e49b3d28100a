"""Credentials on the native port: the gRPC port's tokens, TLS and mutual TLS, checked by the
same interceptor, for each call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import grpc.aio
import pytest

from shoal.core.errors import ConfigError
from shoal.protocols.grpc.gen.shoal.v1 import admin_pb2, admin_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from shoal.sdk import Credentials
from shoal.sdk._credentials import open_channel

from ._auth_env import NS, Pki, make_pki, role_users, start_auth_server


def _tls_section(pki: Pki, *, mutual: bool) -> str:
    lines = ["[tls]", f'grpc_cert = "{pki.server_cert}"', f'grpc_key = "{pki.server_key}"']
    if mutual:
        lines.append(f'grpc_client_ca = "{pki.ca}"')
    return "\n".join(lines)


async def _who(url: str, credentials: Credentials) -> admin_pb2.Principal:
    channel = open_channel(url, credentials)
    try:
        stub = admin_pb2_grpc.AdminServiceStub(channel)  # type: ignore[no-untyped-call]
        reply: admin_pb2.Principal = await stub.WhoAmI(admin_pb2.WhoAmIRequest(), timeout=10)
        return reply
    finally:
        await channel.close()


def _status(url: str, credentials: Credentials) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        asyncio.run(_who(url, credentials))
    return refused.value.code()


@pytest.mark.slow
def test_tokens_are_checked_on_every_native_call(tmp_path: Path) -> None:
    ids = role_users()
    server = start_auth_server(tmp_path, ids, listeners=False, native=True)
    url = f"shoal://{server.ready['native']}"
    try:
        assert _status(url, Credentials()) is grpc.StatusCode.UNAUTHENTICATED
        assert (
            _status(url, Credentials(token="shoal_not-a-token")) is grpc.StatusCode.UNAUTHENTICATED
        )
        me = asyncio.run(_who(url, Credentials(token=ids.tokens["t-viewer"])))
        assert me.method == "token" and list(me.grants) == [NS]

        async def enqueue_as_viewer() -> None:
            channel = open_channel(url, Credentials(token=ids.tokens["t-viewer"]))
            try:
                stub = jobs_pb2_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
                await stub.Enqueue(jobs_pb2.EnqueueRequest(namespace=NS, task="t"), timeout=10)
            finally:
                await channel.close()

        with pytest.raises(grpc.aio.AioRpcError) as denied:
            asyncio.run(enqueue_as_viewer())
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_tls_and_mutual_tls_on_the_native_port(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, "u-producer")
    ids = role_users()
    extra = _tls_section(pki, mutual=True)
    server = start_auth_server(tmp_path, ids, extra=extra, listeners=False, native=True)
    address = server.ready["native"]
    ca, cert, key = pki.ca.read_bytes(), pki.client_cert.read_bytes(), pki.client_key.read_bytes()
    try:
        # The client certificate's common name is the user; a token still names its own.
        me = asyncio.run(_who(f"shoals://{address}", Credentials(ca=ca, cert=cert, key=key)))
        assert (me.name, me.method) == ("u-producer", "certificate")
        assert list(me.grants[NS].roles) == ["producer"]
        token = Credentials(token=ids.tokens["t-viewer"], ca=ca, cert=cert, key=key)
        assert asyncio.run(_who(f"shoals://{address}", token)).method == "token"
        # Without a certificate the handshake fails; clear text is not spoken at all.
        assert _status(f"shoals://{address}", Credentials(ca=ca)) is grpc.StatusCode.UNAVAILABLE
        assert _status(f"shoal://{address}", Credentials()) is grpc.StatusCode.UNAVAILABLE
        with pytest.raises(ConfigError, match="needs TLS"):
            open_channel(f"shoal://{address}", Credentials(cert=cert, key=key))
    finally:
        assert server.stop() == 0
