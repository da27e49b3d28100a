from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

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
