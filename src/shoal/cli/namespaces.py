"""`shoal namespaces create|ls|rm`: the namespaces (tenants) of a store (see `shoal users`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import typer

from shoal.cli._access import StoreOption, local_actor, run
from shoal.core.access import AccessService
from shoal.core.identity import NamespaceInfo
from shoal.core.ports import Store

if TYPE_CHECKING:
    from shoal.cli._access import Identities

__all__ = ["register"]

namespaces_app = typer.Typer(help="Manage namespaces (tenants).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `namespaces` command group to `app`."""
    app.add_typer(namespaces_app, name="namespaces")


@namespaces_app.command("create")
def create(
    name: str,
    store: StoreOption,
    description: Annotated[str, typer.Option("--description")] = "",
) -> None:
    """Create a namespace."""

    async def action(access: Identities) -> NamespaceInfo:
        return await access.create_namespace(local_actor(), name, description)

    run(store, action)
    typer.echo(f"created {name}")


@namespaces_app.command("ls")
def list_namespaces(store: StoreOption) -> None:
    """List namespaces."""

    async def action(access: Identities) -> list[NamespaceInfo]:
        return await access.list_namespaces(local_actor())

    for item in run(store, action):
        typer.echo(f"{item.name}\t{item.description}")


@namespaces_app.command("rm")
def remove(
    name: str,
    store: StoreOption,
    force: Annotated[bool, typer.Option("--force", help="Even while it holds jobs.")] = False,
) -> None:
    """Delete a namespace (refused while it holds jobs, unless --force)."""

    async def action(access: Identities) -> None:
        async def count(namespace: str) -> int:
            # a running server counts its own jobs; a store here holds both halves
            assert isinstance(access, AccessService)
            return (await cast(Store, access.store).stats(namespace)).total

        await access.delete_namespace(local_actor(), name, count, force)

    run(store, action)
    typer.echo(f"deleted {name}")
