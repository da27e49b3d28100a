"""The child side of the process pool: find each task function by its import path, run it,
send the outcome back over a pipe. Runs in a fresh interpreter (forkserver or spawn), which
serves one call after another until it is stopped or terminated.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any

from shoal.core.errors import InvalidArgument, ShoalError
from shoal.core.model import JobError
from shoal.sdk._context import Flag, JobContext, set_current
from shoal.sdk._errors import NonRetryable, Retry

__all__ = ["error_of", "import_path", "in_task_process", "serve_calls", "text_of"]

#: Set in a task process of the process pool (see `in_task_process`).
_serving = False


def in_task_process() -> bool:
    """Whether this is a task process of the process pool: an app started here in local mode
    would get a store of its own, not the one of the app whose worker runs the task.
    """
    return _serving


def error_of(exc: BaseException) -> tuple[JobError, float | None]:
    """The job error a task's exception is recorded as, and the retry delay it asks for."""
    if isinstance(exc, Retry):
        return JobError("Retry", _storable(exc.message), "", retryable=True), exc.delay
    retryable = not isinstance(exc, NonRetryable | InvalidArgument)
    message = exc.message if isinstance(exc, ShoalError) else text_of(exc)
    error = JobError(
        type(exc).__name__, _storable(message), _storable(_traceback_of(exc)), retryable=retryable
    )
    return error, None


def _storable(text: str) -> str:
    r"""`text` with NUL and lone surrogates escaped (`\x00`, `\udcff`): the service refuses
    both in an error's texts (PostgreSQL cannot keep NUL, and a lone surrogate has no UTF-8
    form), and the failure would be reported without its message.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode(errors="backslashreplace").decode()
    return text


def text_of(exc: BaseException) -> str:
    """`str(exc)`, or a stand-in when that raises: a task's exception is user code, and an
    error that cannot be described must still be reported.
    """
    try:
        return str(exc)
    except Exception:
        return f"<str() of the {type(exc).__name__} raised>"


def _traceback_of(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:  # traceback survives a failing str(), not every broken exception
        return f"<the traceback of the {type(exc).__name__} could not be formatted>"


def import_path(fn: Any) -> tuple[str, str]:
    """Where a child process finds `fn`; `InvalidArgument` for a function defined inside
    another (a child cannot import it).
    """
    module, qualname = fn.__module__, fn.__qualname__
    if "<locals>" in qualname:
        raise InvalidArgument(
            "task", f"{qualname} is defined inside a function; a process pool cannot import it"
        )
    return module, qualname


def _resolve(module: str, qualname: str) -> Any:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return getattr(target, "fn", target)  # a Task wraps the function


def serve_calls(conn: Connection, flag: Flag) -> None:
    """A task process's loop: run the calls the parent sends, one at a time, until it sends
    `("stop",)` or goes away. Each call is `("run", where, args, kwargs, (id, task, attempt))`
    and is answered with `("ok", value)` or `("error", JobError, delay)`, progress reports
    arriving before as `("progress", value)`.
    """
    global _serving
    _serving = True
    # Ctrl-C reaches the whole process group: the parent decides when its calls stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] != "run":
            return
        _, where, args, kwargs, job = message
        _run_one(conn, where, args, kwargs, job, flag)


def _run_one(
    conn: Connection,
    where: tuple[str, str],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    job: tuple[str, str, int],
    flag: Flag,
) -> None:
    job_id, task, attempt = job

    def progress(value: float) -> None:
        conn.send(("progress", value))

    set_current(JobContext(job_id, task, attempt, flag, lambda: None, progress))
    try:
        fn = _resolve(*where)
        value = fn(*args, **kwargs)
        if inspect.iscoroutine(value):
            value = asyncio.run(value)
        try:
            conn.send(("ok", value))
        except Exception as exc:  # the value could not be pickled
            conn.send(("error", *error_of(NonRetryable(f"cannot send the result: {exc}"))))
    except BaseException as exc:  # everything the task raises is its outcome
        conn.send(("error", *error_of(exc)))
    finally:
        set_current(None)
