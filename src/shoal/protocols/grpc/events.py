"""`shoal.v1.EventService`: the lifecycle event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc.aio

from shoal.core.auth import Action
from shoal.core.errors import PermissionDenied
from shoal.core.events import Event
from shoal.core.service import QueueService
from shoal.protocols.grpc import _codec as codec
from shoal.protocols.grpc._auth import Callers
from shoal.protocols.grpc._status import abort
from shoal.protocols.grpc.gen.shoal.v1 import events_pb2, events_pb2_grpc

__all__ = ["EventServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class EventServicer(events_pb2_grpc.EventServiceServicer):
    """Streams the service's events to a subscriber until it hangs up."""

    def __init__(self, service: QueueService, callers: Callers) -> None:
        self._service = service
        self._callers = callers

    async def Subscribe(
        self, request: events_pb2.SubscribeRequest, context: Context
    ) -> AsyncIterator[events_pb2.Event]:
        """Every event that matches the request's filters, as it happens."""
        kinds = tuple(request.kinds)
        if request.namespace and not self._callers.allows(Action.READ, request.namespace):
            await abort(context, PermissionDenied(f"may not read namespace {request.namespace!r}"))
        principal, authorizer = self._callers.principal(), self._callers.access.authorizer

        def accept(event: Event) -> bool:
            return (
                (not request.namespace or event.namespace in (request.namespace, "*"))
                and (not kinds or event.kind.startswith(kinds))
                and (not request.job_id or event.job_id == request.job_id)
                # each event is shown only to a caller who may read its namespace
                and authorizer.allows(principal, Action.READ, event.namespace)
            )

        subscription = self._service.events.subscribe(accept)
        reported = 0
        try:
            async for event in subscription:
                yield codec.event_to_pb(event, subscription.dropped - reported)
                reported = subscription.dropped
        finally:
            subscription.close()
