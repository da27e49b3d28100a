"""The SDK against a server with authentication on: a token, and mutual TLS, for producers
and workers alike (the worker stream carries the credentials too)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shoal.core.errors import PermissionDenied, Unauthenticated
from shoal.sdk import App, Credentials, GrpcTransport, Task, Worker

from ._auth_env import NS, make_pki, role_users, start_auth_server

pytestmark = pytest.mark.slow


def double(n: int) -> int:
    return 2 * n


def app_for(url: str, credentials: Credentials) -> tuple[App, Task[[int], int]]:
    app = App(transport=GrpcTransport(url, credentials), namespace=NS, worker=None)
    return app, app.task(name="double")(double)


async def test_tokens_authenticate_producers_and_workers(tmp_path: Path) -> None:
    ids = role_users()
    server = await asyncio.to_thread(start_auth_server, tmp_path, ids, listeners=False)
    url = f"grpc://{server.address}"
    try:
        producer, task = app_for(url, Credentials(token=ids.tokens["t-producer"]))
        worker_app, _ = app_for(url, Credentials(token=ids.tokens["t-worker"]))
        async with producer, worker_app:
            handle = await task.aenqueue(21)
            async with Worker(worker_app):
                assert await handle.aresult(timeout=20) == 42
        anonymous, anonymous_task = app_for(url, Credentials())
        with pytest.raises(Unauthenticated):
            async with anonymous:
                await anonymous_task.aenqueue(1)
        viewer, viewer_task = app_for(url, Credentials(token=ids.tokens["t-viewer"]))
        with pytest.raises(PermissionDenied):
            async with viewer:
                await viewer_task.aenqueue(1)
    finally:
        assert server.stop() == 0


async def test_mutual_tls_maps_the_certificate_to_its_user(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, "root")
    tls = "\n".join(
        [
            "[tls]",
            f'grpc_cert = "{pki.server_cert}"',
            f'grpc_key = "{pki.server_key}"',
            f'grpc_client_ca = "{pki.ca}"',
        ]
    )
    server = await asyncio.to_thread(
        start_auth_server, tmp_path, role_users(), extra=tls, listeners=False
    )
    try:
        as_root = Credentials(
            ca=pki.ca.read_bytes(),
            cert=pki.client_cert.read_bytes(),
            key=pki.client_key.read_bytes(),
        )
        app, task = app_for(f"grpcs://{server.address}", as_root)
        async with app:
            handle = await task.aenqueue(4)
            async with Worker(app):
                assert await handle.aresult(timeout=20) == 8
    finally:
        assert server.stop() == 0


def test_credentials_never_show_the_token() -> None:
    secret = "shoal_" + "x" * 40
    assert secret not in repr(Credentials(token=secret)) and "token" in repr(
        Credentials(token=secret)
    )
