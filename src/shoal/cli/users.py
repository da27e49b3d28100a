"""`shoal users add|rm|ls|passwd|hash`: the users of a store.

These commands open the store itself (`--store`, or `SHOAL_STORE_URL`): whoever can open it is
its administrator, and each change is audited as `cli:<login>`. A SQLite file is held by its
server, so stop the server first, or use PostgreSQL, or the HTTP/gRPC admin API of a running
server. Passwords are read from a prompt that echoes nothing, standard input
(`--password-stdin`) or an environment variable (`--password-env`), never from an argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from shoal.cli._access import (
    GrantOption,
    JsonOption,
    StoreOption,
    grants_text,
    parse_grant_options,
    read_password,
    run,
)
from shoal.cli._access import local_actor as _actor
from shoal.core.auth import hash_password
from shoal.core.identity import User

if TYPE_CHECKING:
    from shoal.cli._access import Identities

__all__ = ["register"]

users_app = typer.Typer(
    help="Manage users (passwords and roles per namespace).", no_args_is_help=True
)

_STDIN = typer.Option(False, "--password-stdin", help="Read the password from standard input.")
_ENV = typer.Option(
    None, "--password-env", help="Read the password from this environment variable."
)


def register(app: typer.Typer) -> None:
    """Add the `users` command group to `app`."""
    app.add_typer(users_app, name="users")


@users_app.command("hash")
def hash_command(password_stdin: bool = _STDIN, password_env: str | None = _ENV) -> None:
    """Print the scrypt hash of a password, for `password_hash` in a [[users]] entry."""
    typer.echo(hash_password(read_password(password_stdin, password_env)))


@users_app.command("add")
def add(
    name: str,
    store: StoreOption,
    grant: GrantOption,
    password_stdin: bool = _STDIN,
    password_env: str | None = _ENV,
) -> None:
    """Create a user with a password and grants."""
    grants = parse_grant_options(grant)
    password = read_password(password_stdin, password_env)

    async def action(access: Identities) -> User:
        return await access.add_user(_actor(), name, password, grants)

    user = run(store, action)
    typer.echo(f"added {user.name} ({grants_text(dict(user.grants))})")


@users_app.command("passwd")
def passwd(
    name: str, store: StoreOption, password_stdin: bool = _STDIN, password_env: str | None = _ENV
) -> None:
    """Set a user's password."""
    password = read_password(password_stdin, password_env)

    async def action(access: Identities) -> None:
        await access.set_password(_actor(), name, password)

    run(store, action)
    typer.echo(f"password of {name} changed")


@users_app.command("rm")
def remove(name: str, store: StoreOption) -> None:
    """Delete a user and revoke its tokens."""

    async def action(access: Identities) -> None:
        await access.remove_user(_actor(), name)

    run(store, action)
    typer.echo(f"removed {name}")


@users_app.command("ls")
def list_users(store: StoreOption, json: JsonOption = False) -> None:
    """List users and their grants (never their password hashes)."""

    async def action(access: Identities) -> list[User]:
        return await access.list_users(_actor())

    users = run(store, action)
    if json:
        from shoal.cli._client import emit_json

        emit_json(
            [
                {
                    "name": user.name,
                    "grants": {
                        ns: sorted(r.value for r in roles) for ns, roles in user.grants.items()
                    },
                    "created_at": user.created_at,
                }
                for user in users
            ]
        )
        return
    for user in users:
        typer.echo(f"{user.name}\t{grants_text(dict(user.grants))}")
