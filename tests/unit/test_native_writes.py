"""Frames written in one loop turn leave in one write (shoal.protocols.grpc.native.writes)."""

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


async def test_one_turn_makes_one_write_and_the_next_turn_another() -> None:
    transport = _Transport()
    out = Coalescer(transport)  # type: ignore[arg-type]
    out.write(b"a")
    out.write(b"bc")
    assert transport.writes == []  # held until the turn's callbacks ran
    await asyncio.sleep(0)
    assert transport.writes == [b"abc"]
    out.write(b"d")
    await asyncio.sleep(0)
    assert transport.writes == [b"abc", b"d"]


async def test_flush_writes_now_and_a_detached_one_drops() -> None:
    transport: Any = _Transport()
    out = Coalescer(transport)
    out.write(b"x")
    out.flush()
    assert transport.writes == [b"x"]
    out.write(b"y")
    out.detach()
    await asyncio.sleep(0)
    assert transport.writes == [b"x"]
    closing: Any = _Transport()
    closing.closing = True
    late = Coalescer(closing)
    late.write(b"z")
    await asyncio.sleep(0)
    assert closing.writes == []
