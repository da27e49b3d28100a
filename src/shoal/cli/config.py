"""`shoal config show`: the effective configuration and where each value came from."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from shoal.cli._common import load, parse_sets

__all__ = ["register"]

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `config` command group to `app`."""
    app.add_typer(config_app, name="config")


@config_app.command("show")
def show(
    config: Annotated[
        Path | None, typer.Option("--config", help="A shoal.toml file.", dir_okay=False)
    ] = None,
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="SECTION.KEY=VALUE (repeatable).")
    ] = None,
) -> None:
    """Print every setting as SECTION.KEY = VALUE  (source)."""
    loaded = load(config, parse_sets(settings or []))
    tree = asdict(loaded.config)
    for section, values in tree.items():
        for key, value in values.items():
            if section == "queues":
                for name, item in value.items():
                    dotted = f"queues.{key}.{name}"
                    typer.echo(f"{dotted} = {item!r}  ({loaded.sources.get(dotted, 'default')})")
                continue
            dotted = f"{section}.{key}"
            typer.echo(f"{dotted} = {value!r}  ({loaded.sources.get(dotted, 'default')})")
