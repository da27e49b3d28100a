"""Server-sent events of lifecycle changes, and a job's recent event timeline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from shoal.core.auth import Action
from shoal.core.events import Event, Subscription

from ._params import DEFAULT_NS, Namespace, State
from .errors import ERROR_RESPONSES
from .state import HttpState

__all__ = ["EventOut", "EventsOut", "event_out", "router"]

router = APIRouter(tags=["events"], responses=ERROR_RESPONSES)


class EventOut(BaseModel):
    """One lifecycle event (`kind` is dotted: `job.enqueued`, `job.succeeded`, ...)."""

    kind: str
    namespace: str
    at: float
    job_id: str | None = None
    queue: str | None = None
    task: str | None = None
    state: str | None = None
    worker_id: str | None = None
    attempt: int | None = None
    data: dict[str, str] = {}


class EventsOut(BaseModel):
    """A job's events seen by this server since it started, oldest first."""

    events: list[EventOut]


def event_out(event: Event) -> EventOut:
    """The API shape of an event."""
    return EventOut(
        kind=event.kind,
        namespace=event.namespace,
        at=event.at,
        job_id=event.job_id,
        queue=event.queue,
        task=event.task,
        state=event.state,
        worker_id=event.worker_id,
        attempt=event.attempt,
        data=dict(event.data),
    )


def _filter(
    namespace: str, job_id: str | None, kinds: tuple[str, ...], readable: Callable[[str], bool]
) -> Callable[[Event], bool]:
    def accept(event: Event) -> bool:
        if namespace != "*" and event.namespace not in (namespace, "*"):
            return False
        if not readable(event.namespace):  # only what the caller may read
            return False
        if job_id is not None and event.job_id != job_id:
            return False
        return not kinds or event.kind.startswith(kinds)

    return accept


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    summary="Stream lifecycle events (SSE)",
)
async def stream_events(
    state: State,
    namespace: Annotated[
        str, Query(min_length=1, max_length=200, description="A namespace, or * for all.")
    ] = DEFAULT_NS,
    job_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    kind: Annotated[
        list[str] | None, Query(description="Only kinds starting with one of these: job., queue.")
    ] = None,
    batch: Annotated[
        float | None,
        Query(ge=0.1, le=60, description="Send one `batch` summary per this many seconds."),
    ] = None,
) -> StreamingResponse:
    """A `text/event-stream`: one `data:` line of JSON (an `EventOut`) per event, and a comment
    line every few seconds while idle. Events happen live; none are replayed.

    With `batch`, a screen that only needs to know that something changed gets at most one
    message per `batch` seconds instead of every event (thousands a second on a busy server):
    `{"kind": "batch", "count": 12, "kinds": {"job.succeeded": 10, ...}}`.
    """
    if namespace != "*":
        state.require(Action.READ, namespace)
    accept = _filter(namespace, job_id, tuple(kind or ()), state.readable())
    subscription = state.service.events.subscribe(accept, capacity=1000)
    state.streams.add(subscription)
    return StreamingResponse(
        _sse(state, subscription, batch),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(
    state: HttpState, subscription: Subscription, batch: float | None
) -> AsyncIterator[str]:
    keepalive = state.settings.sse_keepalive
    loop = asyncio.get_running_loop()
    try:
        yield "retry: 2000\n: connected\n\n"
        number = 0
        while True:
            started = loop.time()
            event = await subscription.next(keepalive)
            if event is None:
                # None before the keep-alive time means the subscription was closed.
                if loop.time() - started < keepalive * 0.9:
                    return
                yield ": keep-alive\n\n"
                continue
            number += 1
            if batch is None:
                data = json.dumps(event_out(event).model_dump(), separators=(",", ":"))
            else:
                data = json.dumps(await _gather(subscription, event, batch))
            yield f"id: {number}\ndata: {data}\n\n"
    finally:
        subscription.close()
        state.streams.discard(subscription)


async def _gather(subscription: Subscription, first: Event, seconds: float) -> dict[str, Any]:
    # Let the events of the next `seconds` pile up, then sum them up in one message.
    dropped = subscription.dropped
    await asyncio.sleep(seconds)
    kinds = {first.kind: 1}
    while (event := await subscription.next(0)) is not None:
        kinds[event.kind] = kinds.get(event.kind, 0) + 1
    count = sum(kinds.values()) + subscription.dropped - dropped
    return {"kind": "batch", "count": count, "kinds": kinds}


@router.get("/jobs/{job_id}/events", response_model=EventsOut, summary="A job's recent events")
async def job_events(
    job_id: Annotated[str, Path(min_length=1, max_length=200)],
    state: State,
    namespace: Namespace = DEFAULT_NS,
) -> EventsOut:
    """The job's events this server has seen since it started (404 for an unknown job)."""
    await state.guard().get(namespace, job_id)
    events = state.recorder.job_events(job_id)
    return EventsOut(events=[event_out(event) for event in events])
