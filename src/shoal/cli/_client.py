from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from shoal.core.errors import ShoalError
from shoal.core.model import DEFAULT_NAMESPACE, JobState

if TYPE_CHECKING:
    from shoal.sdk._admin import Admin

T = TypeVar("T")
#: The server a client command reaches without --url or SHOAL_URL (`Admin`'s default too).
DEFAULT_ADMIN_URL = "grpc://127.0.0.1:50051"

#: Exit code of a client command whose call failed (the line on stderr names the error code).
EXIT_ERROR = 1

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help=f"grpc://HOST:PORT, or sqlite:///FILE locally [env SHOAL_URL; {DEFAULT_ADMIN_URL}]",
        show_default=False,
    ),
]
NamespaceOption = Annotated[str, typer.Option("--namespace", "-n", help="The namespace to act in.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (for scripts).")
]


def resolve_url(url: str | None) -> str:
    """The URL given, else `SHOAL_URL`, else the local default server."""
    return url or os.environ.get("SHOAL_URL") or DEFAULT_ADMIN_URL


def error_exit(error: ShoalError | str, code: int = EXIT_ERROR) -> NoReturn:
    """One line on standard error, `shoal: error: CODE: message`, then exit."""
    if isinstance(error, ShoalError):
        text = f"{error.code}: {error.message}"
    else:
        text = f"usage: {error}"
    typer.echo(f"shoal: error: {text}", err=True)
    raise typer.Exit(code)


def call(url: str | None, namespace: str, action: Callable[[Admin], Awaitable[T]]) -> T:
    """Open an `Admin` on `url`, run `action` with it and close it; errors exit in one line."""
    from shoal.sdk._admin import Admin  # the SDK and gRPC load only when a command runs

    async def main() -> T:
        async with Admin(resolve_url(url), namespace=namespace or DEFAULT_NAMESPACE) as admin:
            return await action(admin)

    try:
        return asyncio.run(main())
    except ShoalError as error:
        error_exit(error)


def emit_json(document: Any) -> None:
    """Write one JSON document on standard output."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def console() -> Console:
    """A console on standard output (plain and wide when it is not a terminal)."""
    out = Console(highlight=False)
    if not out.is_terminal:
        out.width = max(out.width, 160)  # a pipe or a file: one row per line
    return out


def parse_state(value: str | None) -> JobState | None:
    """A `--state` option's value, or a one-line usage error."""
    if value is None:
        return None
    try:
        return JobState(value.lower())
    except ValueError:
        choices = ", ".join(state.value for state in JobState)
        error_exit(f"--state {value!r}: expected one of {choices}", 2)


def parse_json(option: str, text: str | None, kind: type) -> Any:
    """A JSON option (a list for --args, an object for --kwargs), or a usage error."""
    if text is None:
        return kind()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        error_exit(f"{option}: not JSON: {exc}", 2)
    if kind is list and not isinstance(value, list):
        value = [value]  # `--args 5` means one argument
    if not isinstance(value, kind):
        error_exit(f"{option}: expected a JSON {kind.__name__}", 2)
    return value


@contextmanager
def progress_bar(label: str, total: float | None, quiet: bool) -> Iterator[Progress]:
    """A progress bar on standard error (hidden with `--json` or off a terminal)."""
    errors = Console(stderr=True)
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=errors,
        transient=True,
        disable=quiet or not errors.is_terminal,
    )
    with bar:
        bar.add_task(label, total=total)
        yield bar


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(option: str, text: str | None) -> float | None:
    """`250ms`, `5s`, `2m`, `1h`, `1d` or plain seconds, as seconds; a usage error otherwise."""
    if text is None:
        return None
    value = text.strip().lower()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if value.endswith(unit) and value[: -len(unit)].strip():
            number, scale = value[: -len(unit)].strip(), _UNITS[unit]
            break
    else:
        number, scale = value, 1.0
    try:
        seconds = float(number) * scale
    except ValueError:
        error_exit(f"{option} {text!r}: expected a duration such as 250ms, 5s, 2m or 1h", 2)
    # float() takes nan and inf, and turns a number too large into inf: a wait for NaN
    # seconds never ends, and a schedule's interval in ms cannot be made of one
    if not math.isfinite(seconds):
        error_exit(f"{option} {text!r}: must be a finite duration", 2)
    if seconds < 0:
        error_exit(f"{option} {text!r}: must not be negative", 2)
    return seconds
