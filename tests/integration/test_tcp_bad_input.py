"""Bad input over real sockets: each gets its documented `Err:` reply, the server keeps
serving (the same connection where the framing allows, new ones always), and nothing changes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from shoal.core.model import Job, JobQuery, JobState
from shoal.core.ports import Enqueued
from shoal.protocols.tcp.server import TcpSettings
from shoal.stores.memory import MemoryStore
from tests.integration._tcp import Client, Harness, running


async def _nothing_changed(harness: Harness) -> None:
    for group in ("group1", "group2", "default"):
        assert (await harness.service.stats(group)).total == 0
        assert await harness.service.list_queues(group) == []
    assert await harness.scheduler.list() == []
    probe = await harness.login("superuser", "superuser", "group1")
    assert await probe.call("LIST_QUEUES") == "null"
    assert await probe.call("PING") == "PONG"


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("FOO", "Err: unknown-command"),
        ("PUBLISHX q t p", "Err: unknown-command"),
        ("", "Err: unknown-command"),
        ("PUBLISH q t", "Err: wrong-numbers-arguments"),
        ("PUBLISH q t p extra", "Err: wrong-numbers-arguments"),
        ("PUBLISH q t p ", "Err: wrong-numbers-arguments"),  # a trailing space: an empty 4th
        ("SUBSCRIBE", "Err: wrong-numbers-arguments"),
        ("LIST_QUEUES now", "Err: wrong-numbers-arguments"),
        ("UPDATE_JOB 1", "Err: wrong-numbers-arguments"),
        ("PUBLISH q t 'unclosed payload", "Err: unbalanced-quote"),
        ("PUBLISH q t 'a' 'b", "Err: unbalanced-quote"),
        ("UPDATE_JOB nope done", "Err: unknown-job"),
        ("DELETE_JOB nope", "Err: unknown-job"),
        ("CANCEL_JOB nope", "Err: unknown-job"),
        ("RETRY_JOB nope", "Err: unknown-job"),
        ("LIST_JOBS nope", "Err: unknown-queue"),
        ("UNSUBSCRIBE nope", "Err: unknown-queue"),
        ("DELETE_QUEUE nope", "Err: unknown-queue"),
        ("PURGE_JOBS nope", "Err: unknown-queue"),
        ("STATS nope", "Err: unknown-queue"),
        ("DELETE_RECURRENT_JOB 99", "Err: unknown-recurrent-job"),
        ("DELETE_RECURRENT_JOB x", "Err: unknown-recurrent-job"),
        ("DELETE_RECURRENT_JOB ²", "Err: unknown-recurrent-job"),
        ("RECURRENT_JOB q t '* *'", "Err: invalid-cron;expected exactly 5 fields, found 2: [* *]"),
        ("RECURRENT_JOB q t '@sometimes'", "Err: invalid-cron;unrecognized descriptor: @sometimes"),
        (
            "PUBLISH 'a queue' t p",
            "Err: invalid-argument;queue: must not contain white space or control characters",
        ),
        ("SUBSCRIBE ''", "Err: invalid-argument;queue: must be a non-empty string"),
        ("USE_GROUP group2", "Err: forbidden-group"),
        ("USE_GROUP nogroup", "Err: unknown-group"),
        ("USE_GROUP *", "Err: unknown-group"),
        ("HELP publish", "Err: unknown-command"),
        ("DISPATCH", "Err: dispatch-disabled"),
    ],
)
async def test_bad_commands_get_their_error_and_change_nothing(line: str, reply: str) -> None:
    async with running() as harness:
        client = await harness.login(group="group1")
        assert await client.call(line) == reply
        assert await client.call("PING") == "PONG"
        await _nothing_changed(harness)


async def test_checks_run_in_jobatators_order() -> None:
    async with running() as harness:
        client = await harness.connect()
        assert await client.call("PUBLISH q t") == "Err: not-logged"
        assert await client.call("AUTH user1") == "Err: wrong-numbers-arguments"
        assert await client.call("AUTH user1 pass1") == "Welcome!"
        assert await client.call("PUBLISH q t") == "Err: group-non-selected"
        assert await client.call("HEARTBEAT") == "Err: group-non-selected"
        await _nothing_changed(harness)


async def test_binary_garbage_is_answered_and_the_server_carries_on() -> None:
    async with running() as harness:
        client = await harness.login(group="group1")
        await client.send(b"\xff\xfe\x00\x01garbage\n")
        assert await client.line() == "Err: invalid-utf8"
        await client.send(b"PUBLISH q t \xc3\x28\n")
        assert await client.line() == "Err: invalid-utf8"
        rng = random.Random(9)
        for _ in range(20):
            chunk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            chunk = chunk.replace(b"\n", b"").replace(b"*", b"")  # one line, not an array
            await client.send(chunk + b"\n")
            answer = await client.line()
            assert answer.startswith("Err: "), answer
        assert await client.call("PING") == "PONG"
        await _nothing_changed(harness)


async def _closed_after(client: Client, data: bytes, reply: str) -> None:
    await client.send(data)
    assert await client.line() == reply
    assert await client.closed()


async def test_huge_lines_and_broken_arrays_close_the_connection() -> None:
    async with running() as harness:
        client = await harness.login(group="group1")
        huge = b"PUBLISH q t " + b"x" * (1024 * 1024)  # over the 1 MiB limit, no newline yet
        await _closed_after(client, huge, "Err: line-too-long")
        client = await harness.login(group="group1")
        await _closed_after(
            client, b"PUBLISH q t " + b"y" * (1024 * 1024) + b"\n", "Err: line-too-long"
        )
        client = await harness.login(group="group1")
        await _closed_after(client, b"*2\r\n$4\r\nPING\r\nnot a header\r\n", "Err: protocol-error")
        client = await harness.login(group="group1")
        await _closed_after(client, b"*1\r\n$2\r\nPING\r\n", "Err: protocol-error")
        await _nothing_changed(harness)


async def test_a_line_at_the_limit_is_accepted() -> None:
    settings = TcpSettings(max_line=4096, test_mode=True)
    async with running(settings) as harness:
        client = await harness.login(group="group1")
        payload = "p" * (4096 - len("PUBLISH q t "))
        assert (await client.call(f"PUBLISH q t {payload}")).startswith("OK#")
        await _closed_after(client, f"PUBLISH q t {payload}x\n".encode(), "Err: line-too-long")
        (job,) = (await harness.service.list_jobs(JobQuery("group1"))).jobs
        assert job.payload == payload.encode() and job.state is JobState.QUEUED


class _BrokenStore(MemoryStore):
    """A store whose enqueues fail the way a driver bug would (not with a `ShoalError`)."""

    async def enqueue(
        self, jobs: Sequence[Job], now: float, dedupe_window: float = 0.0
    ) -> list[Enqueued]:
        raise RuntimeError("driver bug")


async def test_an_unexpected_failure_of_pipelined_publishes_answers_each_of_them() -> None:
    async with running(store=_BrokenStore()) as harness:
        client = await harness.login("superuser", "superuser", "group1")
        # one PUBLISH alone went through `execute`, which answered; two pipelined ones went in
        # one enqueue_many, whose failure ended the connection with no reply at all
        await client.send("PUBLISH q t a\nPUBLISH q t b\nPING\n")
        assert [await client.line() for _ in range(3)] == [
            "Err: internal",
            "Err: internal",
            "PONG",
        ]


async def test_a_client_that_does_not_read_cannot_make_the_server_hold_its_replies() -> None:
    async with running() as harness:
        producer = await harness.login("superuser", "superuser", "group1")
        await producer.send("".join(f"PUBLISH q t {'x' * 1000}\n" for _ in range(200)))
        for _ in range(200):
            assert (await producer.line()).startswith("OK#")
        reader = await harness.login("superuser", "superuser", "group1")
        # 3.6 KB of input, one read: ~70 MB of replies were buffered for a client reading none
        await reader.send(b"LIST_JOBS q\n" * 300)
        await asyncio.sleep(1.0)
        port = reader.writer.get_extra_info("sockname")[1]
        connections = harness.server._connections.values()
        [writer] = [w for w in connections if w.get_extra_info("peername")[1] == port]
        assert writer.transport.get_write_buffer_size() < 4 * 1024 * 1024
        reader.writer.transport.abort()  # the server's drain ends with the connection
