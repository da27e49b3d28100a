"""A turn's first frame leaves at once, its others in one write (native.writes)."""

from __future__ import annotations

import asyncio
from typing import Any

from shoal.protocols.grpc.native.writes import Coalescer


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing


async def test_the_first_frame_leaves_at_once_and_the_turns_others_together() -> None:
    transport = _Transport()
    out = Coalescer(transport)  # type: ignore[arg-type]
    out.write(b"a")
    assert transport.writes == [b"a"]  # a lone frame is not held
    out.write(b"b")
    out.write(b"cd")
    assert transport.writes == [b"a"]  # held until the turn's callbacks ran
    await asyncio.sleep(0)
    assert transport.writes == [b"a", b"bcd"]
    out.write(b"e")
    await asyncio.sleep(0)
    assert transport.writes == [b"a", b"bcd", b"e"]


async def test_flush_writes_now_and_a_detached_one_drops() -> None:
    transport: Any = _Transport()
    out = Coalescer(transport)
    out.write(b"x")
    out.write(b"y")
    out.flush()
    assert transport.writes == [b"x", b"y"]
    out.write(b"z")  # a new turn's first frame
    out.write(b"w")
    out.detach()
    await asyncio.sleep(0)
    assert transport.writes == [b"x", b"y", b"z"]
    closing: Any = _Transport()
    closing.closing = True
    late = Coalescer(closing)
    late.write(b"z")
    await asyncio.sleep(0)
    assert closing.writes == []
