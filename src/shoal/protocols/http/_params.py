from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from shoal.core.errors import InvalidArgument
from shoal.core.ids import server_assigned
from shoal.core.model import DEFAULT_NAMESPACE

from .state import HttpState, get_state

Namespace = Annotated[
    str,
    Query(
        min_length=1,
        max_length=200,
        description="The namespace (tenant) to act in.",
    ),
]
DEFAULT_NS = DEFAULT_NAMESPACE


State = Annotated[HttpState, Depends(get_state)]


async def authorize(request: Request, state: State) -> None:
    await state.authenticate(request)


def chosen_worker_id(field: str, worker_id: str) -> str:
    """A worker id a pull worker chose, refused in the form the server gives its streams and
    TCP connections: taking one would let the pull worker's leave end a live worker's leases.
    """
    if server_assigned(worker_id):
        raise InvalidArgument(field, "ids like w-<32 hex> and tcp-<32 hex> are the server's")
    return worker_id
