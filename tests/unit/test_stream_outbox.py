"""The bounds of a worker stream session: its outbox and the outcome batches it stores."""

from __future__ import annotations

import asyncio

from shoal.protocols.grpc._outbox import Outbox, Storing
from shoal.protocols.grpc.gen.shoal.v1 import workers_pb2

Message = workers_pb2.ServerMessage


def _drain(reason: str) -> Message:
    return Message(drain=workers_pb2.Drain(reason=reason))


async def test_the_outbox_is_full_at_its_message_bound_and_has_room_once_one_leaves() -> None:
    outbox = Outbox(max_messages=2, max_bytes=1000)
    outbox.put(_drain("a"))
    assert not outbox.full
    outbox.put(_drain("b"))
    assert outbox.full
    outbox.put(None)  # a producer that does not wait goes past the bound
    waiting = asyncio.create_task(outbox.room())
    await asyncio.sleep(0)
    assert not waiting.done()
    assert (await outbox.get()).drain.reason == "a"
    assert not waiting.done()  # two still wait: still full
    assert (await outbox.get()).drain.reason == "b"
    await asyncio.wait_for(waiting, 1)
    assert await outbox.get() is None
    assert outbox.qsize() == 0


async def test_the_outbox_is_full_at_its_byte_bound() -> None:
    outbox = Outbox(max_messages=100, max_bytes=1000)
    outbox.put(_drain("small"), 10)
    assert not outbox.full
    outbox.put(_drain("large"), 1000)
    assert outbox.full
    await outbox.get()
    assert outbox.full  # the large one still waits
    await outbox.get()
    assert not outbox.full


async def test_a_get_waits_for_a_message_and_a_cancelled_room_wait_leaves_nothing() -> None:
    outbox = Outbox(max_messages=1, max_bytes=1000)
    getting = asyncio.create_task(outbox.get())
    await asyncio.sleep(0)
    outbox.put(_drain("a"))
    assert (await asyncio.wait_for(getting, 1)) is not None
    outbox.put(_drain("b"))
    waiting = asyncio.create_task(outbox.room())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert outbox._room == []


async def _until(gate: asyncio.Event) -> None:
    await gate.wait()


async def test_storing_is_full_at_its_bounds_and_empties_as_its_tasks_end() -> None:
    storing = Storing(max_tasks=2, max_bytes=100)
    gates = [asyncio.Event() for _ in range(3)]
    tasks = [asyncio.create_task(_until(gate)) for gate in gates]
    storing.add(tasks[0], 10)
    assert not storing.full
    storing.add(tasks[1], 10)
    assert storing.full  # two tasks
    one = asyncio.create_task(storing.one_done())
    await asyncio.sleep(0)
    assert not one.done()
    gates[0].set()
    await asyncio.wait_for(one, 1)
    assert len(storing) == 1 and not storing.full
    storing.add(tasks[2], 95)
    assert storing.full  # 105 bytes
    gates[1].set()
    gates[2].set()
    await asyncio.wait_for(storing.all_done(), 1)
    assert len(storing) == 0 and not storing.full
