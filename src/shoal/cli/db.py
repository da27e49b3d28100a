"""`shoal db migrate`: bring a store's schema up to date, as a step of its own.

A server applies missing migrations when it opens its store; deployments that migrate before they
roll out new servers (several replicas on one PostgreSQL) run this first.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from shoal.cli._common import EXIT_CONFIG, EXIT_STORE, fail
from shoal.config import parse_store_url
from shoal.core.errors import ConfigError, ShoalError

__all__ = ["register"]

db_app = typer.Typer(help="Manage the store's schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `db` command group to `app`."""
    app.add_typer(db_app, name="db")


async def _migrate(url: str) -> list[str]:
    scheme = parse_store_url(url).scheme
    if scheme in ("postgresql", "postgres"):
        from shoal.stores.postgres import migrate

        return await migrate(url)
    if scheme == "sqlite":
        from shoal.stores.sqlite import SqliteStore

        return SqliteStore.from_url(url).migrate()
    raise ConfigError(f"store.url {url!r}: {scheme}:// keeps no schema to migrate")


@db_app.command("migrate")
def migrate(
    store: Annotated[
        str,
        typer.Option(
            "--store",
            envvar="SHOAL_STORE_URL",
            help="The store: sqlite:///path or postgresql://user@host/db.",
        ),
    ],
) -> None:
    """Apply the migrations the store does not have yet, and list them."""
    try:
        applied = asyncio.run(_migrate(store))
    except ConfigError as error:
        fail(error, EXIT_CONFIG)
    except ShoalError as error:
        fail(error, EXIT_STORE)
    if applied:
        for name in applied:
            typer.echo(f"applied {name}")
    else:
        typer.echo("the schema is up to date")
