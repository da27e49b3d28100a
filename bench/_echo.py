"""A loopback echo server on uvloop, for `bench.reference`'s round-trip floor.

python -m bench._echo [SECONDS]  # prints the port it listens on, echoes until killed or
                                 # SECONDS (600) pass, so that it never outlives a dead parent
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import cast

import uvloop


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, only alike
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._transport.write(data)


async def _serve(seconds: float) -> None:
    server = await asyncio.get_running_loop().create_server(_Echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.serve_forever(), seconds)


if __name__ == "__main__":
    uvloop.run(_serve(float(sys.argv[1]) if len(sys.argv) > 1 else 600.0))
