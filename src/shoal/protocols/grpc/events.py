"""`shoal.v1.EventService`: the lifecycle event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc.aio

from shoal.core.events import Event
from shoal.core.service import QueueService
from shoal.protocols.grpc import _codec as codec
from shoal.protocols.grpc.gen.shoal.v1 import events_pb2, events_pb2_grpc

__all__ = ["EventServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class EventServicer(events_pb2_grpc.EventServiceServicer):
    """Streams the service's events to a subscriber until it hangs up."""

    def __init__(self, service: QueueService) -> None:
        self._service = service

    async def Subscribe(
        self, request: events_pb2.SubscribeRequest, context: Context
    ) -> AsyncIterator[events_pb2.Event]:
        """Every event that matches the request's filters, as it happens."""
        kinds = tuple(request.kinds)

        def accept(event: Event) -> bool:
            return (
                (not request.namespace or event.namespace in (request.namespace, "*"))
                and (not kinds or event.kind.startswith(kinds))
                and (not request.job_id or event.job_id == request.job_id)
            )

        subscription = self._service.events.subscribe(accept)
        reported = 0
        try:
            async for event in subscription:
                yield codec.event_to_pb(event, subscription.dropped - reported)
                reported = subscription.dropped
        finally:
            subscription.close()
