from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from shoal.core.ports import BroadcastListener, ReadyListener
from shoal.stores.postgres._base import (
    DRIVER_ERRORS,
    EVENTS_CHANNEL,
    READY_CHANNEL,
    Conn,
    parse_event,
    parse_ready,
)

logger = logging.getLogger(__name__)

#: Seconds between attempts to get the listening connection back.
_RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
#: An idle LISTEN connection is asked to answer this often, and given this long: one that
#: died without a word (a NAT or firewall forgot it) is noticed and replaced, where it
#: would have stayed quiet for ever and no wake-up of another replica would have come.
_PING_EVERY = 30.0
_PING_TIMEOUT = 10.0


class ReadyChannel:
    """LISTENs on a connection of its own and calls the listener for every queue another
    process announced (NOTIFY, sent at commit), and the event listener for every event another
    process broadcast; reconnects when the connection drops.
    """

    def __init__(self, connect: Callable[[], Awaitable[Conn]], origin: str) -> None:
        self._connect = connect
        self._origin = origin
        self._listener: ReadyListener | None = None
        self._event_listener: BroadcastListener | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Event | None = None
        self._conn: Conn | None = None

    def set_listener(self, listener: ReadyListener) -> None:
        self._listener = listener

    def set_event_listener(self, listener: BroadcastListener) -> None:
        self._event_listener = listener

    async def start(self) -> None:
        """Listen now (so a NOTIFY sent after this returns is seen), then keep listening."""
        self._lost = asyncio.Event()  # made here: it belongs to the loop the store runs on
        await self._listen()
        self._task = asyncio.create_task(self._supervise(self._lost), name="shoal-pg-listen")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except (*DRIVER_ERRORS, TimeoutError):
                conn.terminate()

    async def _listen(self) -> None:
        lost = self._lost
        assert lost is not None
        lost.clear()
        conn = await self._connect()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(READY_CHANNEL, self._on_notify)
            await conn.add_listener(EVENTS_CHANNEL, self._on_event)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn

    async def _supervise(self, lost: asyncio.Event) -> None:
        while True:
            await self._until_lost(lost)
            logger.warning(
                "lost the LISTEN connection; reconnecting", extra={"event": "store.listen_lost"}
            )
            attempt = 0
            while True:
                await asyncio.sleep(_RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)])
                attempt += 1
                try:
                    await self._listen()
                    break
                except DRIVER_ERRORS as exc:
                    logger.warning(
                        "LISTEN reconnect failed: %s", exc, extra={"event": "store.listen_retry"}
                    )
            # The NOTIFYs sent while no connection listened are lost for good; the jobs they
            # announced are in the table: every waiting claimer looks again.
            if self._listener is not None:
                self._listener.notify_all()

    async def _until_lost(self, lost: asyncio.Event) -> None:
        """Until the connection is lost: its end seen, or a ping left unanswered."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_PING_EVERY):
                    await lost.wait()
                    return
            conn = self._conn
            try:
                if conn is None:
                    raise ConnectionError("no LISTEN connection")
                async with asyncio.timeout(_PING_TIMEOUT):
                    await conn.fetchval("SELECT 1")
            except (*DRIVER_ERRORS, TimeoutError, ConnectionError):
                if conn is not None:
                    conn.terminate()
                lost.set()
                return

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        parsed = parse_ready(payload)
        if parsed is None or self._listener is None:
            return
        origin, namespace, queue = parsed
        if origin != self._origin:  # our own service already woke its claimers
            self._listener.notify(namespace, queue)

    def _on_event(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        parsed = parse_event(payload)
        if parsed is None or self._event_listener is None:
            return
        origin, event = parsed
        if origin != self._origin:  # this process published its own already
            self._event_listener(event)
