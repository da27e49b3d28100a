"""`shoal tokens create|ls|revoke`: API tokens of a store (see `shoal users` about `--store`).

A new token is printed once, on standard output alone (for `$(shoal tokens create ...)`); the
store keeps only its hash, so it cannot be shown again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shoal.cli._access import (
    GrantOption,
    JsonOption,
    StoreOption,
    grants_text,
    local_actor,
    parse_duration,
    parse_grant_options,
    run,
)
from shoal.core.identity import ApiToken

if TYPE_CHECKING:
    from shoal.cli._access import Identities

__all__ = ["register"]

tokens_app = typer.Typer(
    help="Manage API tokens (shown once, stored hashed).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the `tokens` command group to `app`."""
    app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def create(
    store: StoreOption,
    grant: GrantOption,
    owner: Annotated[str, typer.Option("--owner", help="Who the token is for.")],
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime: 30d, 12h, 90m (none: never).")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
) -> None:
    """Create a token and print it (this is the only time it is shown)."""
    grants = parse_grant_options(grant)
    lifetime = parse_duration(expires)

    async def action(access: Identities) -> tuple[ApiToken, str]:
        return await access.create_token(local_actor(), owner, grants, lifetime, description)

    token, plaintext = run(store, action)
    typer.echo(f"token {token.id} for {token.owner} ({grants_text(dict(token.grants))})", err=True)
    typer.echo(plaintext)


def _status(token: ApiToken) -> str:
    if token.revoked_at is not None:
        return "revoked"
    return "expires " + (f"{token.expires_at:.0f}" if token.expires_at is not None else "never")


@tokens_app.command("ls")
def list_tokens(
    store: StoreOption,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's.")] = None,
    json: JsonOption = False,
) -> None:
    """List token records (never the tokens)."""

    async def action(access: Identities) -> list[ApiToken]:
        return await access.list_tokens(local_actor(), owner)

    tokens = run(store, action)
    if json:
        from shoal.cli._client import emit_json

        emit_json(
            [
                {
                    "id": t.id,
                    "owner": t.owner,
                    "grants": {
                        ns: sorted(r.value for r in roles) for ns, roles in t.grants.items()
                    },
                    "created_at": t.created_at,
                    "expires_at": t.expires_at,
                    "revoked_at": t.revoked_at,
                    "description": t.description,
                }
                for t in tokens
            ]
        )
        return
    for t in tokens:
        typer.echo(
            f"{t.id}\t{t.owner}\t{grants_text(dict(t.grants))}\t{_status(t)}\t{t.description}"
        )


@tokens_app.command("revoke")
def revoke(token_id: str, store: StoreOption) -> None:
    """Revoke a token at once."""

    async def action(access: Identities) -> ApiToken:
        return await access.revoke_token(local_actor(), token_id)

    run(store, action)
    typer.echo(f"revoked {token_id}")
