"""A call flooded with messages its handler does not take ends alone: the connection goes on.

The native framing has no request windows, so the server bounds what each call holds
(docs/native-protocol.md, Flow control). Before that bound, the connection stopped reading the
socket once its calls held 512 messages, and one call whose handler stopped reading held up
every other call of the connection for good.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2, native_pb2
from shoal.protocols.grpc.native import _connection
from shoal.protocols.grpc.native.frames import PREFACE, Frame, FrameDecoder, Kind, encode
from shoal.protocols.grpc.native.server import NativeServer
from tests.integration._grpc_server import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp_path: Path = tmp_path_factory.mktemp("native-flood")
    process = start_server(tmp_path, "--native-listen", "127.0.0.1:0")
    yield process
    assert process.stop() == 0


def _header(method: str, **fields: int) -> bytes:
    return native_pb2.CallHeader(
        method=f"/shoal.v1.JobService/{method}", **fields
    ).SerializeToString()


def _batch(seq: int) -> bytes:
    job = jobs_pb2.EnqueueRequest(namespace="flood", task="t")
    batch = jobs_pb2.EnqueueBatch(seq=seq, jobs=[job])
    return jobs_pb2.EnqueueStreamRequest(batches=[batch]).SerializeToString()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


class _Reader:
    """The frames the server sends on one connection."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader, self.decoder = reader, FrameDecoder(1 << 24)


async def _until_status(peer: _Reader, call: int, timeout: float) -> list[Frame]:
    reader, decoder, got = peer.reader, peer.decoder, []
    async with asyncio.timeout(timeout):
        while not any(f.kind == Kind.STATUS and f.call == call for f in got):
            data = await reader.read(65536)
            assert data, "the server hung up"
            got += decoder.feed(data)
    return got


async def test_a_stalled_enqueue_stream_holds_up_no_other_call_of_its_connection(
    server: ServerProcess,
) -> None:
    """An `EnqueueStream` opened with a window of 1 that the client never widens: the server
    sends one result message, then its stream waits, its 256 batches in flight stay in flight,
    and its handler stops taking messages. The client goes on sending batches, then a unary
    `Enqueue` on the same connection: once the stream's handler has taken nothing for
    STALLED_AFTER seconds, that call ends RESOURCE_EXHAUSTED (with its shoal error code), and
    the unary call is answered.
    """
    host, _, port = server.ready["native"].rpartition(":")
    stream, writer = await asyncio.open_connection(host, int(port))
    reader = _Reader(stream)
    flood = 1 << 14  # four times the messages the server lets one call hold
    writer.write(PREFACE + encode(Kind.CALL, 1, _header("EnqueueStream", window=1)))
    for start in range(1, flood, 4096):
        writer.write(
            b"".join(encode(Kind.MESSAGE, 1, _batch(seq)) for seq in range(start, start + 4096))
        )
    unary = jobs_pb2.EnqueueRequest(namespace="flood", task="after").SerializeToString()
    writer.write(encode(Kind.CALL, 3, _header("Enqueue")) + encode(Kind.MESSAGE, 3, unary))
    try:
        got = await _until_status(reader, 3, timeout=15)
        answered = [f for f in got if f.call == 3 and f.kind == Kind.MESSAGE]
        assert jobs_pb2.EnqueueResponse.FromString(answered[0].body).job.task == "after"
        if not any(f.kind == Kind.STATUS and f.call == 1 for f in got):
            got += await _until_status(reader, 1, timeout=5)
        [ended] = [f for f in got if f.call == 1 and f.kind == Kind.STATUS]
        status = native_pb2.CallStatus.FromString(ended.body)
        assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        trailing = {entry.key: entry.value for entry in status.metadata}
        assert trailing == {"shoal-error-code": b"resource_exhausted"}
    finally:
        await _close(writer)


# --- the bounds themselves, against an in-process server with small ones --------------------


async def _deaf(requests: AsyncIterator[bytes], context: Any) -> bytes:
    await asyncio.sleep(30)  # never takes a message
    return b""


async def _counting(requests: AsyncIterator[bytes], context: Any) -> bytes:
    return str(len([request async for request in requests])).encode()


async def _echo(request: bytes, context: Any) -> bytes:
    return request


def _identity(data: bytes) -> bytes:
    return data


@pytest.fixture
async def small(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[NativeServer, int]]:
    """A server whose calls may hold 50 messages or 20 KB each, 50 KB together; a call over its
    bound ends when its handler takes nothing for 0.2 s.
    """
    monkeypatch.setattr(_connection, "STALLED_AFTER", 0.2)
    monkeypatch.setattr(_connection, "CALL_HELD_MESSAGES", 50)
    monkeypatch.setattr(_connection, "CALL_HELD_BYTES", 20_000)
    monkeypatch.setattr(_connection, "CONNECTION_HELD_BYTES", 50_000)
    native = NativeServer([], max_body=1000)
    stream = grpc.stream_unary_rpc_method_handler
    native.add_registered_method_handlers(
        "t.S",
        {
            "Deaf": stream(_deaf, request_deserializer=_identity, response_serializer=_identity),
            "Count": stream(
                _counting, request_deserializer=_identity, response_serializer=_identity
            ),
            "Echo": grpc.unary_unary_rpc_method_handler(
                _echo, request_deserializer=_identity, response_serializer=_identity
            ),
        },
    )
    port = await native.start("127.0.0.1", 0)
    yield native, port
    await native.stop(0.1)


def _call(call: int, method: str) -> bytes:
    return encode(
        Kind.CALL, call, native_pb2.CallHeader(method=f"/t.S/{method}").SerializeToString()
    )


def _flood(call: int, count: int, size: int = 1) -> bytes:
    return b"".join(encode(Kind.MESSAGE, call, b"m" * size) for _ in range(count))


def _status(got: list[Frame], call: int) -> native_pb2.CallStatus:
    [ended] = [f for f in got if f.call == call and f.kind == Kind.STATUS]
    return native_pb2.CallStatus.FromString(ended.body)


async def _echoed(reader: _Reader, writer: asyncio.StreamWriter, call: int) -> list[Frame]:
    """Send an Echo on `call` and read until it is answered (and what came before it)."""
    writer.write(_call(call, "Echo") + encode(Kind.MESSAGE, call, b"still"))
    got = await _until_status(reader, call, timeout=5)
    assert (Kind.MESSAGE, b"still") in [(f.kind, f.body) for f in got if f.call == call]
    return got


async def test_a_call_over_its_message_bound_ends_alone(small: tuple[NativeServer, int]) -> None:
    native, port = small
    stream, writer = await asyncio.open_connection("127.0.0.1", port)
    reader = _Reader(stream)
    writer.write(PREFACE + _call(1, "Deaf") + _flood(1, 51))
    status = _status(await _until_status(reader, 1, timeout=5), 1)
    await _echoed(reader, writer, 3)
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert "51 messages" in status.details and "took none for 0.2 s" in status.details
    assert [(e.key, e.value) for e in status.metadata] == [
        ("shoal-error-code", b"resource_exhausted")
    ]
    [connection] = native._connections
    assert connection._held == 0 and native.calls == 0
    await _close(writer)


async def test_a_call_over_its_byte_bound_ends_alone(small: tuple[NativeServer, int]) -> None:
    _, port = small
    stream, writer = await asyncio.open_connection("127.0.0.1", port)
    reader = _Reader(stream)
    writer.write(PREFACE + _call(1, "Deaf") + _flood(1, 30, size=900))  # 30 x 964 > 20,000
    got = await _until_status(reader, 1, timeout=5)
    await _echoed(reader, writer, 3)
    assert _status(got, 1).code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    await _close(writer)


async def test_past_the_connections_bound_the_call_holding_most_ends(
    small: tuple[NativeServer, int],
) -> None:
    native, port = small
    stream, writer = await asyncio.open_connection("127.0.0.1", port)
    reader = _Reader(stream)
    # each call within its own 20 KB; 18 + 15 + 15 + 19 messages of 964 B pass 50 KB together
    calls = {1: 18, 5: 15, 7: 15, 9: 19}
    writer.write(PREFACE + b"".join(_call(c, "Deaf") + _flood(c, n, 900) for c, n in calls.items()))
    got = await _echoed(reader, writer, 3)
    assert [f.call for f in got if f.kind == Kind.STATUS] == [1, 3]  # 1 held the most then
    assert "the most of the calls" in _status(got, 1).details
    [connection] = native._connections
    assert connection._held == (15 + 15 + 19) * 964 and native.calls == 3
    await _close(writer)


async def test_a_call_whose_handler_reads_takes_any_number_of_messages(
    small: tuple[NativeServer, int],
) -> None:
    _, port = small
    stream, writer = await asyncio.open_connection("127.0.0.1", port)
    reader = _Reader(stream)
    writer.write(PREFACE + _call(1, "Count"))
    for _ in range(40):  # 2,000 messages, 50 at a time: the handler keeps up
        writer.write(_flood(1, 50))
        await writer.drain()
        await asyncio.sleep(0.001)
    writer.write(encode(Kind.HALF_CLOSE, 1))
    got = await _until_status(reader, 1, timeout=5)
    assert [f.body for f in got if f.kind == Kind.MESSAGE] == [b"2000"]
    assert _status(got, 1).code == 0
    await _close(writer)


async def _slow_counting(requests: AsyncIterator[bytes], context: Any) -> bytes:
    count = 0
    async for _ in requests:
        count += 1
        await asyncio.sleep(0.002)  # slower than its client: its messages pile up
    return str(count).encode()


async def test_a_call_over_its_bound_whose_handler_takes_slowly_is_held_back_not_ended(
    small: tuple[NativeServer, int],
) -> None:
    """What the SDK's worker stream does when a task reports progress in a tight loop: the
    client is held back (TCP) while the call is over its bound, and nothing is lost.
    """
    native, port = small
    native.add_registered_method_handlers(
        "t.S",
        {
            "Slow": grpc.stream_unary_rpc_method_handler(
                _slow_counting, request_deserializer=_identity, response_serializer=_identity
            )
        },
    )
    stream, writer = await asyncio.open_connection("127.0.0.1", port)
    reader = _Reader(stream)
    writer.write(PREFACE + _call(1, "Slow") + _flood(1, 300) + encode(Kind.HALF_CLOSE, 1))
    got = await _until_status(reader, 1, timeout=10)
    assert [f.body for f in got if f.kind == Kind.MESSAGE] == [b"300"]
    [connection] = native._connections
    assert connection._reading and connection._over == 0
    await _close(writer)
