from __future__ import annotations

import asyncio
import getpass
import math
import os
import re
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar, cast

import typer

from shoal.cli._common import EXIT_CONFIG, EXIT_STORE, fail
from shoal.config import StoreConfig
from shoal.core.access import AccessService
from shoal.core.auth import ALL_NAMESPACES, Principal, Role, parse_grants
from shoal.core.errors import ConfigError, ShoalError, StorageError
from shoal.core.identity import IdentityStore
from shoal.core.service import QueueService

if TYPE_CHECKING:
    from ._remote import RemoteAccess

    #: What the commands act through: the store itself, or a running server's AdminService.
    Identities = AccessService | RemoteAccess

T = TypeVar("T")

#: Exit code of a refused or failed identity command.
EXIT_ERROR = 1

StoreOption = Annotated[
    str,
    typer.Option(
        "--store",
        "--url",
        envvar=["SHOAL_STORE_URL", "SHOAL_URL"],
        help="The store (sqlite:///path with its server stopped, postgresql://...), or a "
        "running server (grpc://host:port, grpcs://... with $SHOAL_TOKEN, $SHOAL_CA, "
        "$SHOAL_CERT and $SHOAL_KEY).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
GrantOption = Annotated[
    list[str],
    typer.Option(
        "--grant",
        "-g",
        help="NAMESPACE=ROLE[,ROLE] (repeatable; * for every namespace; roles: admin, "
        "producer, worker, viewer).",
    ),
]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def local_actor() -> Principal:
    """Who acts from this command line: whoever can open the store is its administrator."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Principal(f"cli:{who}", "local", {ALL_NAMESPACES: frozenset({Role.ADMIN})})


def run(store_url: str, action: Callable[[Identities], Awaitable[T]]) -> T:
    """Open the store (or a channel to the server), run `action` with an `AccessService` over
    it (or a `RemoteAccess`), and close it.
    """
    from shoal.server import open_store  # the stores are imported only when a command runs

    # gRPC is imported only when a command talks to a server (`shoal server` must set its
    # logging variables before gRPC loads).
    from ._remote import RemoteAccess, is_remote, open_channel

    async def main() -> T:
        if is_remote(store_url):
            async with open_channel(store_url) as channel:
                return await action(RemoteAccess(channel))
        store = await open_store(StoreConfig(url=store_url))
        # a namespace deleted here is announced to the servers sharing a PostgreSQL store,
        # as one of them would (see `QueueService.publish_everywhere`)
        service = QueueService(store)
        try:
            identity = cast(IdentityStore, store)  # one object holds both halves
            access = AccessService(identity, enabled=True, announce=service.publish_everywhere)
            return await action(access)
        finally:
            await service.finish_broadcasts()
            await store.close()

    try:
        return asyncio.run(main())
    except ConfigError as error:
        fail(error, EXIT_CONFIG)
    except StorageError as error:
        fail(error, EXIT_STORE)
    except ShoalError as error:
        fail(error, EXIT_ERROR)


def parse_grant_options(items: list[str]) -> dict[str, frozenset[Role]]:
    """`--grant NS=ROLE[,ROLE]` options as grants; a one-line error when malformed."""
    spec: dict[str, object] = {}
    for item in items:
        namespace, sep, roles = item.partition("=")
        if not sep or not namespace or not roles:
            fail(f"--grant {item!r}: expected NAMESPACE=ROLE[,ROLE]", EXIT_CONFIG)
        spec[namespace.strip()] = [role.strip() for role in roles.split(",") if role.strip()]
    if not spec:
        fail("give at least one --grant NAMESPACE=ROLE", EXIT_CONFIG)
    try:
        return parse_grants(spec)
    except ShoalError as error:
        fail(error, EXIT_CONFIG)


def parse_duration(text: str | None) -> float | None:
    """`30d`, `12h`, `90m`, `3600` (seconds) into seconds."""
    if text is None:
        return None
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        fail(f"--expires {text!r}: expected a positive duration such as 30d, 12h, 90m", 2)
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds):  # digits enough to overflow a float
        fail(f"--expires {text!r}: too large for a duration", 2)
    return seconds


def read_password(from_stdin: bool, env: str | None = None, confirm: bool = True) -> str:
    """A password from an environment variable, standard input's first line, or a prompt that
    echoes nothing (never from an argument: arguments show in `ps` and shell history).
    """
    if env:
        value = os.environ.get(env, "")
        if not value:
            fail(f"${env} is not set", EXIT_CONFIG)
        return value
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Again: ") != value:
            fail("the passwords differ", EXIT_CONFIG)
    if not value:
        fail("the password is empty", EXIT_CONFIG)
    return value


def grants_text(grants: dict[str, frozenset[Role]]) -> str:
    """Grants as `ns=role,role ns2=role`."""
    return " ".join(
        f"{ns}={','.join(sorted(role.value for role in roles))}" for ns, roles in grants.items()
    )


def grants_json(grants: dict[str, frozenset[Role]]) -> dict[str, list[str]]:
    """Grants as JSON: namespace -> sorted role names."""
    return {ns: sorted(role.value for role in roles) for ns, roles in grants.items()}
