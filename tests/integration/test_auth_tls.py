"""TLS on every listener, and mutual TLS on gRPC, with certificates made by the test."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

import grpc
import httpx
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import admin_pb2, admin_pb2_grpc

from ._auth_env import NS, Pki, make_pki, role_users, start_auth_server
from ._grpc_server import ServerProcess


def _tls_section(pki: Pki, *, mutual: bool) -> str:
    lines = [
        "[tls]",
        f'grpc_cert = "{pki.server_cert}"',
        f'grpc_key = "{pki.server_key}"',
        f'http_cert = "{pki.server_cert}"',
        f'http_key = "{pki.server_key}"',
        f'tcp_cert = "{pki.server_cert}"',
        f'tcp_key = "{pki.server_key}"',
    ]
    if mutual:
        lines.append(f'grpc_client_ca = "{pki.ca}"')
    return "\n".join(lines)


def _client_context(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca))


def _who(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> admin_pb2.Principal:
    stub = admin_pb2_grpc.AdminServiceStub(channel)
    reply: admin_pb2.Principal = stub.WhoAmI(
        admin_pb2.WhoAmIRequest(), metadata=metadata, timeout=10
    )
    return reply


def _stop(server: ServerProcess) -> None:
    assert server.stop() == 0


@pytest.mark.slow
def test_tls_on_grpc_http_and_tcp(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, "nobody")
    ids = role_users()
    server = start_auth_server(tmp_path, ids, extra=_tls_section(pki, mutual=False))
    try:
        token = ids.tokens["t-viewer"]
        # gRPC: the CA verifies the server; the token authenticates the caller.
        credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
        with grpc.secure_channel(server.address, credentials) as channel:
            me = _who(channel, (("authorization", f"Bearer {token}"),))
            assert me.method == "token" and list(me.grants) == [NS]
        with grpc.insecure_channel(server.address) as channel:  # clear text is not spoken
            with pytest.raises(grpc.RpcError) as refused:
                _who(channel, (("authorization", f"Bearer {token}"),))
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        # HTTP: https only.
        base = f"https://{server.ready['http']}"
        with httpx.Client(verify=_client_context(pki), timeout=10) as client:
            reply = client.get(f"{base}/api/v1/me", headers={"authorization": f"Bearer {token}"})
            assert reply.status_code == 200 and reply.json()["method"] == "token"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{server.ready['http']}/api/v1/me", timeout=5)
        # TCP: AUTH over TLS.
        assert asyncio.run(_tcp_login(server.ready["tcp"], pki, ids.passwords["u-viewer"]))
    finally:
        _stop(server)


async def _tcp_login(address: str, pki: Pki, password: str) -> bool:
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(
        host, int(port), ssl=_client_context(pki), server_hostname=host
    )
    try:
        writer.write(f"AUTH u-viewer {password}\nUSE_GROUP {NS}\n".encode())
        await writer.drain()
        welcome = await asyncio.wait_for(reader.readline(), 10)
        selected = await asyncio.wait_for(reader.readline(), 10)
        return (welcome, selected) == (b"Welcome!\n", b"OK\n")
    finally:
        # Under TLS, close() only starts the close_notify exchange: the socket transport
        # underneath closes when it completes. Without waiting, asyncio.run may close the loop
        # first and leave that transport for the garbage collector to warn about, in a later test.
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


@pytest.mark.slow
def test_mutual_tls_on_grpc_maps_the_certificate_to_a_user(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, "u-producer")
    ids = role_users()
    server = start_auth_server(tmp_path, ids, extra=_tls_section(pki, mutual=True), listeners=False)
    ca = pki.ca.read_bytes()
    try:
        with_cert = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=pki.client_key.read_bytes(),
            certificate_chain=pki.client_cert.read_bytes(),
        )
        with grpc.secure_channel(server.address, with_cert) as channel:
            me = _who(channel)
            assert (me.name, me.method) == ("u-producer", "certificate")
            assert list(me.grants[NS].roles) == ["producer"]
            # A token sent over the same connection still names its own principal.
            token = ids.tokens["t-viewer"]
            assert _who(channel, (("authorization", f"Bearer {token}"),)).method == "token"
        without_cert = grpc.ssl_channel_credentials(root_certificates=ca)
        with grpc.secure_channel(server.address, without_cert) as channel:
            with pytest.raises(grpc.RpcError) as refused:  # the handshake fails
                _who(channel)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        _stop(server)


@pytest.mark.slow
def test_a_certificate_of_an_unknown_user_is_unauthenticated(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, "mallory")
    ids = role_users()
    server = start_auth_server(tmp_path, ids, extra=_tls_section(pki, mutual=True), listeners=False)
    try:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=pki.ca.read_bytes(),
            private_key=pki.client_key.read_bytes(),
            certificate_chain=pki.client_cert.read_bytes(),
        )
        with grpc.secure_channel(server.address, credentials) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                _who(channel)
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    finally:
        _stop(server)
