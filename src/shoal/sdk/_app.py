"""`App`: tasks, a transport, and (in local mode) an in-process worker, with one API.

The API is async and runs on one event loop, the app's *home*: the loop that started it, or a
private loop thread when the blocking API is used first. Blocking methods are thin wrappers
that run the async ones there (STYLE: one async implementation). Nothing connects before the
first use, `await app.start()`, `async with app:` or `with app:`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar, Unpack, overload
from urllib.parse import urlsplit

from shoal.core.errors import ConfigError, Conflict, ShoalError
from shoal.core.events import Event
from shoal.core.model import DEFAULT_NAMESPACE
from shoal.core.schedules import ScheduleInput
from shoal.core.validation import EnqueueRequest
from shoal.sdk._handle import JobHandle
from shoal.sdk._local import LOCAL_SCHEMES, LocalTransport
from shoal.sdk._loop import LoopThread
from shoal.sdk._process import in_task_process
from shoal.sdk._schedules import PeriodicDecorator, ScheduleOptions, Schedules, periodic
from shoal.sdk._serde import JsonSerializer, PickleSerializer, Serializer
from shoal.sdk._tasks import Task, TaskCall, TaskRegistry
from shoal.sdk._transport import REMOTE_SCHEMES, Transport
from shoal.sdk._worker import Worker, WorkerConfig

__all__ = ["App"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: The URL used when neither the constructor nor `SHOAL_URL` gives one.
DEFAULT_URL = "memory://"


def transport_for_url(url: str) -> Transport:
    """A new transport for `url`: local schemes hold the service, others reach a server."""
    scheme = urlsplit(url).scheme
    if scheme in LOCAL_SCHEMES:
        return LocalTransport(url)
    if scheme in REMOTE_SCHEMES:
        from shoal.sdk._grpc import GrpcTransport

        return GrpcTransport(url)
    raise ConfigError(
        f"unsupported URL {url!r}; use memory://, sqlite:///file.db, shoal://host:port "
        "(the native framing), grpc://host:port, or shoals:// / grpcs:// for TLS"
    )


class App:
    """A shoal application: declare tasks with `@app.task`, enqueue them, run workers.

    Args:
        url: `memory://` or `sqlite:///file.db` run the service in this process (local mode);
            `shoal://host:port` (the native framing, the fastest) or `grpc://host:port`
            reach a server (distributed mode); the `SHOAL_URL`
            environment variable, else `memory://`, when None.
        namespace: The namespace of every job this app enqueues.
        serializer: How arguments and results become bytes (JSON by default).
        worker: In local mode, the in-process worker to run while the app is open; None runs
            none (run `Worker`s yourself).
        transport: A transport object to use instead of the one `url` names.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
        worker: WorkerConfig | None = WorkerConfig(),  # noqa: B008 - frozen, shared safely
        transport: Transport | None = None,
    ) -> None:
        self.url = url or os.environ.get("SHOAL_URL") or DEFAULT_URL
        self.namespace = namespace
        self.serializer: Serializer = serializer or JsonSerializer()
        self.registry = TaskRegistry()
        self.registry.bind(self)
        self.task = self.registry.task
        self._included: list[TaskRegistry] = []
        self._worker_config = worker
        self._given_transport = transport
        self._transport: Transport | None = None
        self._home: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Future[None] | None = None
        self._thread: LoopThread | None = None
        self._start_lock = threading.Lock()
        self._worker: Worker | None = None
        self._watchers: set[asyncio.Task[Any]] = set()
        #: Define and steer schedules (`app.schedules.add(...)`, `.pause(...)`, ...).
        self.schedules = Schedules(self)
        self._declared: dict[str, ScheduleInput] = {}

    # --- tasks ------------------------------------------------------------------------------

    def include(self, registry: TaskRegistry) -> None:
        """Add a registry's tasks (a blueprint); they enqueue through this app from now on."""
        for task in registry:
            other = self.find_task(task.name)
            if other is not None and other is not task:
                raise Conflict(f"a task named {task.name!r} is already registered")
        registry.bind(self)
        if registry not in self._included:
            self._included.append(registry)

    def periodic(
        self, *, name: str | None = None, **options: Unpack[ScheduleOptions]
    ) -> PeriodicDecorator:
        """Declare a task that runs on a schedule, put each time the app starts:
        `@app.periodic(every="250ms")`, `@app.periodic(cron="*/5 * * * * *")`.

        Args:
            name: The task's name (`module.qualname` by default); also the schedule's id
                unless `id` is given.
            **options: The schedule (see `ScheduleOptions`): one of `every`, `cron`, `at`,
                and `timezone`, `queue`, `args`, `kwargs`, `overlap`, `catch_up`, ...

        Raises:
            InvalidArgument: a bad option, named, when the decorator runs.
        """
        return periodic(self, name, options)

    def declare_schedule(self, data: ScheduleInput) -> None:
        """Put this schedule each time the app starts; `Conflict` if its id is declared."""
        if data.id in self._declared:
            raise Conflict(f"a schedule with id {data.id!r} is already declared")
        self._declared[data.id or ""] = data

    def find_task(self, name: str) -> Task[Any, Any] | None:
        """The task with this name, or None."""
        for registry in (self.registry, *self._included):
            task = registry.get(name)
            if task is not None:
                return task
        return None

    def task_names(self) -> tuple[str, ...]:
        """The names of every task of the app: the jobs its workers take."""
        return tuple(sorted({task.name for r in (self.registry, *self._included) for task in r}))

    def queues(self) -> tuple[str, ...]:
        """The queues of every task of the app."""
        names = {q for registry in (self.registry, *self._included) for q in registry.queues()}
        return tuple(sorted(names or {"default"}))

    def serializer_for(self, content_type: str) -> Serializer:
        """The serializer that reads payloads of this content type."""
        for serializer in (self.serializer, JsonSerializer(), PickleSerializer()):
            if serializer.content_type == content_type:
                return serializer
        raise ConfigError(f"no serializer for content type {content_type!r}")

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The open transport; `ShoalError` before `start()`."""
        if self._transport is None:
            raise ShoalError("the app is not started")
        return self._transport

    def holds(self, transport: Transport) -> bool:
        """Whether `transport` is still the app's (it has not closed, nor started anew)."""
        return self._transport is transport

    @property
    def home(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the app runs on, once started."""
        return self._home

    @property
    def is_local(self) -> bool:
        """Whether the service runs in this process."""
        return isinstance(self._given_transport or self._transport, LocalTransport) or (
            self._given_transport is None and urlsplit(self.url).scheme in LOCAL_SCHEMES
        )

    async def start(self) -> None:
        """Connect on the running loop and, in local mode, start the worker. Idempotent:
        concurrent first uses share one start.
        """
        loop = asyncio.get_running_loop()
        self._forget_a_closed_home()
        if self._home is loop and self._transport is not None:
            return  # started, or far enough for its own in-process worker to connect
        if self._home is not None and self._home is not loop:
            raise Conflict("the app is already started on another event loop")
        if self._opening is None:
            self._home = loop
            self._opening = asyncio.ensure_future(self._open())
        opening = self._opening
        try:
            await asyncio.shield(opening)
        except BaseException:
            if opening.done() and self._opening is opening:  # it failed: allow another try
                self._home, self._opening = None, None
            raise

    async def _open(self) -> None:
        if self.is_local and in_task_process():
            raise ShoalError(
                "this task runs in a process of the process pool, and the app is in local mode"
                f" ({self.url}): a store opened here would not be the app's. Enqueue from a"
                " task in the thread or asyncio pool, or run a server (shoal://, grpc://)"
            )
        transport = self._given_transport or transport_for_url(self.url)
        await transport.open()
        try:
            for data in self._declared.values():  # @app.periodic: created or updated
                await transport.schedules().put(data)
        except BaseException:
            await transport.close()
            raise
        self._transport = transport
        if self.is_local and self._worker_config is not None:
            self._worker = Worker.from_config(self, self._worker_config)
            await self._worker.start()
        logger.debug("app started", extra={"event": "app.started", "url": self.url})

    def _forget_a_closed_home(self) -> None:
        """The loop the app ran on has closed without `close()` (the end of an `asyncio.run`,
        a test's loop): what ran there is gone with it, and the app starts again on the next
        use, instead of failing every use (and `shutdown()`) with "Event loop is closed".
        """
        home = self._home
        if home is None or not home.is_closed():
            return
        logger.warning(
            "the app's event loop closed before app.close(); the app starts again on next use"
            " (a memory:// app with a new, empty store)",
            extra={"event": "app.loop_closed"},
        )
        if isinstance(self._transport, LocalTransport):
            self._transport.abandon()
        self._transport, self._home, self._opening, self._worker = None, None, None, None
        self._watchers.clear()

    async def close(self) -> None:
        """Stop the in-process worker, then disconnect."""
        self._forget_a_closed_home()
        if self._home is None:
            return
        if asyncio.get_running_loop() is not self._home:
            await self.on_home(self.close)
            return
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None
        for watcher in list(self._watchers):
            watcher.cancel()
        if self._transport is not None:
            await self._transport.close()
        self._transport, self._home, self._opening = None, None, None

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        await self.close()

    def __enter__(self) -> App:
        self._home_loop()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Blocking `close()`, and stop the private loop thread if the app started one."""
        self._forget_a_closed_home()
        if self._home is not None:
            self.run_sync(self.close)
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    # --- running on the home loop -----------------------------------------------------------

    def _home_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            self._forget_a_closed_home()
            if self._home is None:
                if self._thread is None:
                    self._thread = LoopThread()
                    self._thread.start()
                assert self._thread.loop is not None
                asyncio.run_coroutine_threadsafe(self.start(), self._thread.loop).result()
            assert self._home is not None
            return self._home

    def run_sync(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run `factory()` on the home loop and wait for it (starting the app if needed)."""
        home = self._home_loop()
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is home:
                raise ShoalError(
                    "a blocking shoal call inside the app's event loop would deadlock; "
                    "await the async form (aenqueue, aresult, ...)"
                )
        return asyncio.run_coroutine_threadsafe(self._started(factory), home).result()

    async def on_home(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Await `factory()` on the home loop, from any loop (starting the app if needed)."""
        loop = asyncio.get_running_loop()
        self._forget_a_closed_home()
        if self._home is None or self._home is loop:
            await self.start()  # returns at once once started; waits while it starts
            return await factory()
        hop = asyncio.run_coroutine_threadsafe(self._started(factory), self._home)
        return await asyncio.wrap_future(hop)

    async def _started(self, factory: Callable[[], Awaitable[T]]) -> T:
        await self.start()
        return await factory()

    def watch(self, coro: Awaitable[None]) -> None:
        """Run a background coroutine on the home loop until it ends or the app closes."""
        task = asyncio.ensure_future(coro)
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    # --- producing --------------------------------------------------------------------------

    def _request(self, call: TaskCall[Any]) -> EnqueueRequest:
        options = call.options
        return EnqueueRequest(
            task=call.task.name,
            payload=call.task.signature.encode(call.args, call.kwargs, self.serializer),
            namespace=self.namespace,
            queue=options.queue,
            content_type=self.serializer.content_type,
            priority=options.priority,
            delay=options.delay,
            run_at=options.run_at,
            max_attempts=None if options.retries is None else options.retries + 1,
            backoff=options.backoff,
            timeout=options.timeout,
            idempotency_key=options.idempotency_key,
            tags=options.tags,
        )

    async def aenqueue_one(self, call: TaskCall[T]) -> JobHandle[T]:
        """Enqueue one call."""
        return (await self.aenqueue_many([call]))[0]

    async def aenqueue_many(self, calls: Sequence[TaskCall[T]]) -> list[JobHandle[T]]:
        """Enqueue calls (of any tasks) in one transaction: all are stored or none."""
        requests = [self._request(call) for call in calls]
        results = await self.on_home(lambda: self.transport.enqueue(requests))
        return [
            JobHandle(self, item.job.id, call.task, job=item.job, created=item.created)
            for call, item in zip(calls, results, strict=True)
        ]

    @overload
    def handle(self, job_id: str) -> JobHandle[Any]: ...

    @overload
    def handle(self, job_id: str, task: Task[Any, T]) -> JobHandle[T]: ...

    def handle(self, job_id: str, task: Task[Any, T] | None = None) -> JobHandle[Any]:
        """A handle on an existing job (call `refresh()` to load it); its result is typed as
        `task` returns, or `Any` without a task.
        """
        return JobHandle(self, job_id, task)

    # --- observing --------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Lifecycle events of this app's namespace as they happen (dingo's Listen)."""
        if self._home is not None and self._home is not asyncio.get_running_loop():
            raise ShoalError("iterate app.events() on the loop the app was started on")
        await self.start()
        async for event in self.transport.events(self.namespace):
            yield event
