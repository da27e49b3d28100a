"""The native framing's edges, against an in-process `NativeServer` with small handlers: calls
that end early, clients that read slowly or never, cancellation, deadlines, windows, closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import native_pb2
from shoal.protocols.grpc.native.frames import PREFACE, Frame, FrameDecoder, Kind, encode
from shoal.protocols.grpc.native.server import NativeServer
from shoal.sdk import _native_connection
from shoal.sdk._native import NativeChannel
from shoal.sdk._native_calls import UnaryUnaryCall

from ._auth_env import make_pki

running: list[str] = []


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _slow(request: bytes, context: Any) -> bytes:
    running.append("slow")
    try:
        await asyncio.sleep(30)
    finally:
        running.remove("slow")
    return request


async def _big(request: bytes, context: Any) -> bytes:
    return b"x" * int(request)


async def _count(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for i in range(int(request)):
        yield str(i).encode()


def _identity(data: bytes) -> bytes:
    return data


@pytest.fixture
async def server() -> AsyncIterator[tuple[NativeServer, int]]:
    native = NativeServer([], max_body=1000)
    unary = grpc.unary_unary_rpc_method_handler
    handlers = {
        name: unary(behaviour, request_deserializer=_identity, response_serializer=_identity)
        for name, behaviour in (("Echo", _echo), ("Slow", _slow), ("Big", _big))
    }
    handlers["Count"] = grpc.unary_stream_rpc_method_handler(
        _count, request_deserializer=_identity, response_serializer=_identity
    )
    native.add_registered_method_handlers("t.S", handlers)
    port = await native.start("127.0.0.1", 0)
    yield native, port
    await native.stop(0.1)


def _header(method: str, **fields: Any) -> bytes:
    return native_pb2.CallHeader(method=f"/t.S/{method}", **fields).SerializeToString()


class _Peer:
    """A raw client connection: bytes out, frames in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._decoder = FrameDecoder(1 << 20)

    @classmethod
    async def connect(cls, port: int) -> _Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(PREFACE)
        return cls(reader, writer)

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    async def frames(self, until: Any, timeout: float = 5) -> list[Frame]:
        got: list[Frame] = []
        async with asyncio.timeout(timeout):
            while not until(got):
                data = await self.reader.read(65536)
                assert data, "the server hung up"
                got += self._decoder.feed(data)
        return got

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def _ended(call: int) -> Any:
    return lambda got: any(f.kind == Kind.STATUS and f.call == call for f in got)


async def test_a_call_cancelled_before_it_ran_leaves_nothing_and_frees_its_id(
    server: tuple[NativeServer, int],
) -> None:
    native, port = server
    peer = await _Peer.connect(port)
    slow, echo = _header("Slow"), _header("Echo")
    # CALL and CANCEL in one write: the call's task is cancelled before it ever ran; then
    # the id is used again at once, as the protocol allows
    peer.send(encode(Kind.CALL, 7, slow), encode(Kind.MESSAGE, 7, b"a"), encode(Kind.CANCEL, 7))
    peer.send(encode(Kind.CALL, 7, echo), encode(Kind.MESSAGE, 7, b"b"))
    got = await peer.frames(_ended(7))
    answered = [(f.kind, f.body) for f in got if f.call == 7]
    assert answered == [(Kind.MESSAGE, b"b"), (Kind.STATUS, b"")]
    assert native.calls == 0 and not running
    await peer.close()


async def test_oversized_calls_do_not_use_up_the_connection(
    server: tuple[NativeServer, int],
) -> None:
    native, port = server
    host_channel = NativeChannel("127.0.0.1", port)
    big = host_channel.unary_unary("/t.S/Echo")
    for _ in range(1100):  # more than the 1,024 calls one connection may hold open
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await big(b"x" * 2000)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await big(b"ok") == b"ok" and native.calls == 0
    await host_channel.close()


async def test_a_call_ending_with_unread_messages_lets_the_connection_read_again(
    server: tuple[NativeServer, int],
) -> None:
    _, port = server
    peer = await _Peer.connect(port)
    flood = [encode(Kind.MESSAGE, 1, b"m") for _ in range(600)]  # a unary call: 599 extra
    peer.send(encode(Kind.CALL, 1, _header("Echo")), *flood)
    await peer.frames(_ended(1))
    peer.send(encode(Kind.CALL, 2, _header("Echo")), encode(Kind.MESSAGE, 2, b"hello"))
    got = await peer.frames(_ended(2))
    assert (Kind.MESSAGE, b"hello") in [(f.kind, f.body) for f in got]
    await peer.close()


async def test_a_client_that_never_reads_stops_the_server_reading_it(
    server: tuple[NativeServer, int],
) -> None:
    native, port = server
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    header = _header("Big")
    sent = 0
    try:
        await loop.sock_sendall(sock, PREFACE)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                for batch in range(200):
                    frames = b"".join(
                        encode(Kind.CALL, i, header) + encode(Kind.MESSAGE, i, b"200")
                        for i in range(batch * 100 + 1, batch * 100 + 101)
                    )
                    await loop.sock_sendall(sock, frames)
                    sent += 100
                    await asyncio.sleep(0.005)  # the server's turn
        [connection] = native._connections
        transport = connection._transport
        assert transport is not None and not connection._reading
        # the calls sent would be answered with 4 MB; the server stopped reading (the kernel
        # holds the rest of what we sent) once its own buffer passed the high-water mark
        assert sent == 20_000 and transport.get_write_buffer_size() < 256 * 1024
    finally:
        sock.close()


async def test_closing_during_the_dial_ends_the_calls_waiting_for_it() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts TCP, never sends a preface: the dial waits
        channel = NativeChannel("127.0.0.1", listener.getsockname()[1])
        unary = channel.unary_unary("/t.S/Echo")(b"x")
        stream = channel.stream_stream("/t.S/Echo")()
        await asyncio.sleep(0.2)
        await channel.close()
        with pytest.raises(grpc.aio.AioRpcError) as closed:
            await asyncio.wait_for(unary, 5)
        assert closed.value.code() is grpc.StatusCode.UNAVAILABLE
        with pytest.raises(asyncio.InvalidStateError):
            await asyncio.wait_for(stream.write(b"y"), 5)


async def test_a_call_on_a_connection_lost_just_after_its_dial_ends_unavailable() -> None:
    async def preface_then_hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(PREFACE)
        await writer.drain()
        writer.close()

    # the dial ends with the preface and the hang-up follows at once: the call that waited
    # for the dial resumes after the connection is gone, and must not join its emptied table
    listener = await asyncio.start_server(preface_then_hang_up, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        for _ in range(5):
            channel = NativeChannel("127.0.0.1", port)
            with pytest.raises(grpc.aio.AioRpcError) as lost:
                async with asyncio.timeout(3):
                    await channel.unary_unary("/t.S/Echo")(b"x")
            assert lost.value.code() is grpc.StatusCode.UNAVAILABLE
            with pytest.raises(ConnectionError):  # the dial does not return it as connected
                async with asyncio.timeout(3):
                    await channel.connect()
            await channel.close()
    finally:
        listener.close()


async def test_a_call_opened_on_a_connection_already_gone_ends_unavailable(
    server: tuple[NativeServer, int],
) -> None:
    _, port = server
    channel = NativeChannel("127.0.0.1", port)
    connection = await channel.connect()
    await connection.hang_up()
    call = UnaryUnaryCall(partial(connection.open, request=b"x"), _header("Echo"), _identity, None)
    with pytest.raises(grpc.aio.AioRpcError) as lost:
        async with asyncio.timeout(3):
            await call
    assert lost.value.code() is grpc.StatusCode.UNAVAILABLE
    await channel.close()


async def test_cancelling_the_awaiting_task_cancels_the_call_on_both_sides(
    server: tuple[NativeServer, int],
) -> None:
    native, port = server
    channel = NativeChannel("127.0.0.1", port)
    call = channel.unary_unary("/t.S/Slow")(b"x")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await call
    assert call.cancelled()
    await asyncio.sleep(0.1)
    assert native.calls == 0 and not running
    await channel.close()


async def test_writing_after_the_end_is_an_invalid_state_as_on_grpc(
    server: tuple[NativeServer, int],
) -> None:
    _, port = server
    channel = NativeChannel("127.0.0.1", port)
    stream = channel.stream_stream("/t.S/Missing")()
    with pytest.raises(grpc.aio.AioRpcError):
        await stream.read()
    with pytest.raises(asyncio.InvalidStateError):
        await stream.write(b"late")
    cancelled = channel.stream_stream("/t.S/Missing")()
    cancelled.cancel()
    with pytest.raises(asyncio.InvalidStateError):
        await cancelled.write(b"late")
    await channel.close()


async def test_a_response_over_the_clients_limit_is_resource_exhausted(
    server: tuple[NativeServer, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, port = server
    monkeypatch.setattr(_native_connection, "MAX_RESPONSE", 100)
    channel = NativeChannel("127.0.0.1", port)
    with pytest.raises(grpc.aio.AioRpcError) as large:
        await channel.unary_unary("/t.S/Big")(b"500")
    assert large.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await channel.unary_unary("/t.S/Big")(b"10") == b"x" * 10  # the connection goes on
    await channel.close()


async def test_a_window_bounds_what_a_stream_sends_ahead_of_its_reader(
    server: tuple[NativeServer, int],
) -> None:
    _, port = server
    peer = await _Peer.connect(port)
    peer.send(encode(Kind.CALL, 3, _header("Count", window=4)), encode(Kind.MESSAGE, 3, b"10"))
    got = await peer.frames(lambda got: len(got) >= 4)
    with pytest.raises(TimeoutError):  # four sent; the fifth waits for a WINDOW frame
        got += await peer.frames(lambda more: more, timeout=0.3)
    assert [f.body for f in got] == [b"0", b"1", b"2", b"3"]
    peer.send(encode(Kind.WINDOW, 3, (10).to_bytes(4, "big")))
    rest = await peer.frames(_ended(3))
    assert [f.body for f in rest if f.kind == Kind.MESSAGE] == [
        str(i).encode() for i in range(4, 10)
    ]
    await peer.close()


async def test_an_unread_stream_holds_up_no_other_call(server: tuple[NativeServer, int]) -> None:
    _, port = server
    channel = NativeChannel("127.0.0.1", port)
    unread = channel.unary_stream("/t.S/Count")(b"100000")  # never read: its window fills
    await asyncio.sleep(0.3)
    assert await asyncio.wait_for(channel.unary_unary("/t.S/Echo")(b"still"), 5) == b"still"
    counted = [int(x) async for x in channel.unary_stream("/t.S/Count")(b"1000")]
    assert counted == list(range(1000))  # WINDOW frames carry a long stream through
    unread.cancel()
    await channel.close()


async def test_the_server_ends_a_call_at_its_deadline(server: tuple[NativeServer, int]) -> None:
    native, port = server
    peer = await _Peer.connect(port)
    # a client that never cancels: the server stops the call when its deadline passes
    peer.send(encode(Kind.CALL, 9, _header("Slow", timeout=0.2)), encode(Kind.MESSAGE, 9, b"x"))
    [status] = await peer.frames(_ended(9))
    expired = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert native_pb2.CallStatus.FromString(status.body).code == expired
    await asyncio.sleep(0.05)
    assert native.calls == 0 and not running
    await peer.close()


async def test_peers_that_fail_the_tls_handshake_leave_no_connection_behind(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path, "client")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.server_cert, pki.server_key)
    native = NativeServer([], max_body=1000)
    port = await native.start("127.0.0.1", 0, tls)
    try:
        # what a load balancer's TCP check and a clear-text client do: asyncio calls neither
        # connection_made nor connection_lost on the protocol of a failed handshake
        for junk in (b"", b"GET / HTTP/1.1\r\n\r\n") * 10:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(junk)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        client = ssl.create_default_context(cafile=pki.ca)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        writer.write(PREFACE)
        await asyncio.sleep(0.2)
        assert len(native._connections) == 1  # the one that completed its handshake
    finally:
        await native.stop(0.1)
    # ... and stopping hangs up on it
    async with asyncio.timeout(5):
        assert await reader.read() == PREFACE
        assert await reader.read() == b""
    writer.close()
