"""The `shoal` command. Each command lives in its own module with a `register(app)`."""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="shoal",
    help="shoal: a job server and Python task framework.",
    no_args_is_help=True,
    add_completion=False,
)

#: Command modules; add yours here.
_COMMANDS = (
    "shoal.cli.server",
    "shoal.cli.config",
    "shoal.cli.db",
    "shoal.cli.users",
    "shoal.cli.tokens",
    "shoal.cli.namespaces",
    "shoal.cli.worker",
    "shoal.cli.enqueue",
    "shoal.cli.jobs",
    "shoal.cli.queues",
    "shoal.cli.workers",
    "shoal.cli.schedules",
    "shoal.cli.demo",
)

for _module in _COMMANDS:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Run the `shoal` command line."""
    app()
