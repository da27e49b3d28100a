from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from shoal.config import LoadedConfig, load_config
from shoal.core.errors import ConfigError, ShoalError

#: Exit codes of `shoal server`.
EXIT_CONFIG = 2
EXIT_LISTEN = 3
EXIT_STORE = 4
EXIT_INTERRUPTED = 130


def fail(error: ShoalError | str, code: int) -> NoReturn:
    """One line on standard error, then exit with `code`."""
    text = error.message if isinstance(error, ShoalError) else error
    typer.echo(f"shoal: error: {text}", err=True)
    raise typer.Exit(code)


def parse_sets(items: list[str]) -> dict[str, object]:
    """`--set KEY=VALUE` options as dotted overrides."""
    overrides: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--set {item!r}: expected KEY=VALUE, e.g. service.lease_ttl=5s", EXIT_CONFIG)
        overrides[key.strip()] = value
    return overrides


def load(config: Path | None, overrides: dict[str, object]) -> LoadedConfig:
    """Load the configuration, or exit with a one-line error."""
    try:
        return load_config(config, overrides=overrides)
    except ConfigError as error:
        fail(error, EXIT_CONFIG)
