"""Tasks: functions declared on a `TaskRegistry`, enqueued through the app the registry is bound
to. Declaring a task does no I/O, so modules of tasks can be imported anywhere.

`Task[P, R]` keeps the function's parameters (`P`), so `task.enqueue(...)` is type-checked, and
its result type (`R`, awaited for async functions), so `handle.result()` is typed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, overload

from shoal.core.errors import Conflict, InvalidArgument, ShoalError
from shoal.core.model import DEFAULT_QUEUE
from shoal.core.retry import RetryPolicy
from shoal.sdk._execution import Pool
from shoal.sdk._serde import Signature

if TYPE_CHECKING:
    from shoal.sdk._app import App
    from shoal.sdk._handle import JobHandle

__all__ = ["Task", "TaskCall", "TaskOptions", "TaskRegistry", "TaskVariant"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task's jobs are enqueued; `None` takes the queue's policy on the server."""

    queue: str = DEFAULT_QUEUE
    priority: int = 0
    #: Attempts after the first; `max_attempts = retries + 1`.
    retries: int | None = None
    backoff: RetryPolicy | None = None
    #: Seconds an attempt may run.
    timeout: float | None = None
    delay: float | None = None
    #: POSIX time before which the job may not run.
    run_at: float | None = None
    idempotency_key: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskCall(Generic[R_co]):
    """One call of a task, ready to enqueue (alone or in a batch with `App.aenqueue_many`)."""

    task: Task[Any, R_co]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: TaskOptions


def _seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _timestamp(value: float | datetime | None) -> float | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgument("run_at", "use a timezone-aware datetime")
        return value.timestamp()
    return value


def _check_retries(retries: int | None) -> int | None:
    if retries is not None and retries < 0:
        raise InvalidArgument("retries", "must not be negative")
    return retries


def _retry_policy(backoff: RetryPolicy | float | None) -> RetryPolicy | None:
    """A `backoff` option as a policy: seconds mean a fixed delay."""
    return RetryPolicy.fixed(backoff) if isinstance(backoff, int | float) else backoff


class TaskVariant(Generic[P, R]):
    """A task with some enqueue options changed (`task.options(...)`)."""

    def __init__(self, task: Task[P, R], options: TaskOptions) -> None:
        self._task = task
        self._options = options

    def call(self, *args: P.args, **kwargs: P.kwargs) -> TaskCall[R]:
        """This call as a value, to enqueue later or in a batch."""
        return TaskCall(self._task, args, kwargs, self._options)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """Enqueue one job (blocking; from async code use `aenqueue`)."""
        call = self.call(*args, **kwargs)
        return self._task.app.run_sync(lambda: self._task.app.aenqueue_one(call))

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """Enqueue one job."""
        return await self._task.app.aenqueue_one(self.call(*args, **kwargs))

    def enqueue_many(self, calls: Iterable[TaskCall[R] | tuple[Any, ...]]) -> list[JobHandle[R]]:
        """Enqueue many jobs in one transaction: `TaskCall`s, or tuples of positional
        arguments; all are stored or none.
        """
        batch = self._batch(calls)
        return self._task.app.run_sync(lambda: self._task.app.aenqueue_many(batch))

    async def aenqueue_many(
        self, calls: Iterable[TaskCall[R] | tuple[Any, ...]]
    ) -> list[JobHandle[R]]:
        """Async form of `enqueue_many`."""
        return await self._task.app.aenqueue_many(self._batch(calls))

    def _batch(self, calls: Iterable[TaskCall[R] | tuple[Any, ...]]) -> list[TaskCall[R]]:
        return [
            item if isinstance(item, TaskCall) else TaskCall(self._task, item, {}, self._options)
            for item in calls
        ]

    def options(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | timedelta | None = None,
        run_at: float | datetime | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        tags: Iterable[str] | None = None,
        retries: int | None = None,
        backoff: RetryPolicy | float | None = None,
    ) -> TaskVariant[P, R]:
        """The same task with these options for the jobs it enqueues (`retries` and `backoff`
        as for `@task`).
        """
        changes: dict[str, Any] = {
            "queue": queue,
            "priority": priority,
            "retries": _check_retries(retries),
            "backoff": _retry_policy(backoff),
            "delay": _seconds(delay),
            "run_at": _timestamp(run_at),
            "idempotency_key": idempotency_key,
            "timeout": timeout,
            "tags": tuple(tags) if tags is not None else None,
        }
        given = {key: value for key, value in changes.items() if value is not None}
        return TaskVariant(self._task, replace(self._options, **given))


class Task(TaskVariant[P, R]):
    """A function that runs as jobs on workers; declared with `@app.task` or
    `@registry.task`.
    """

    def __init__(
        self,
        fn: Callable[P, Any],
        name: str,
        options: TaskOptions,
        registry: TaskRegistry,
        pool: Pool | None = None,
    ) -> None:
        super().__init__(self, options)
        #: Where workers run it; None runs it in the worker's own pool.
        self.pool = pool
        #: The function itself; call it directly to run the task in this process.
        self.fn = fn
        #: The name jobs carry; workers in any language look the task up by it.
        self.name = name
        self.registry = registry
        self.signature = Signature(fn)
        self.is_async = inspect.iscoroutinefunction(fn)

    @property
    def app(self) -> App:
        """The app the task's registry is bound to."""
        return self.registry.app

    @property
    def defaults(self) -> TaskOptions:
        """The options given at declaration."""
        return self._options

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self._options.queue}>"


class TaskDecorator(Protocol):
    """What `registry.task(name=...)` returns: a decorator making a `Task`."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


@dataclass
class TaskRegistry:
    """A set of tasks by name (a blueprint); an `App` has one and can include others."""

    _tasks: dict[str, Task[Any, Any]] = field(default_factory=dict)
    _app: App | None = None

    @overload
    def task(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...
    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        retries: int | None = None,
        backoff: RetryPolicy | float | None = None,
        timeout: float | None = None,
        priority: int = 0,
        pool: Pool | None = None,
    ) -> TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        retries: int | None = None,
        backoff: RetryPolicy | float | None = None,
        timeout: float | None = None,
        priority: int = 0,
        pool: Pool | None = None,
    ) -> Any:
        """Declare a task: `@registry.task` or `@registry.task(name=..., queue=..., ...)`.

        Args:
            fn: The function, when used without parentheses.
            name: The task's name; `module.qualname` of the function by default.
            queue: The queue its jobs go to.
            retries: Attempts after the first failure (the queue's policy when None).
            backoff: Delay before each retry: a `RetryPolicy`, or seconds for a fixed delay.
            timeout: Seconds an attempt may run before the worker stops it.
            priority: Higher runs first.
            pool: Where workers run it, whatever their own pool: `process` for CPU-bound
                work, `thread` for blocking calls, `asyncio` for the loop's executor.
        """
        options = TaskOptions(
            queue=queue,
            priority=priority,
            retries=_check_retries(retries),
            backoff=_retry_policy(backoff),
            timeout=timeout,
        )

        def decorate(function: Callable[..., Any]) -> Task[Any, Any]:
            task_name = name or f"{function.__module__}.{function.__qualname__}"
            return self.add(Task(function, task_name, options, self, pool))

        return decorate(fn) if fn is not None else decorate

    def add(self, task: Task[P, R]) -> Task[P, R]:
        """Register a task; `Conflict` if another task already has its name."""
        existing = self._tasks.get(task.name)
        if existing is not None and existing is not task:
            raise Conflict(f"a task named {task.name!r} is already registered")
        self._tasks[task.name] = task
        return task

    def get(self, name: str) -> Task[Any, Any] | None:
        """The task with this name, or None."""
        return self._tasks.get(name)

    def __iter__(self) -> Iterator[Task[Any, Any]]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def queues(self) -> tuple[str, ...]:
        """The queues of the registered tasks, sorted."""
        return tuple(sorted({task.defaults.queue for task in self._tasks.values()}))

    @property
    def app(self) -> App:
        """The app this registry enqueues through; `ShoalError` if it was never included."""
        if self._app is None:
            raise ShoalError("this task registry belongs to no App; pass it to App.include()")
        return self._app

    def bind(self, app: App) -> None:
        """Make `app` the one this registry's tasks enqueue through."""
        self._app = app
