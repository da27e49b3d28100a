"""`/metrics` for Prometheus, on a private registry (no global state).

Gauges (jobs by state, queue depth, workers) are read from the service at scrape time;
histograms (enqueue-to-start, run time) and counters are fed from the event stream.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from shoal.core.events import Event
from shoal.core.model import WAITING_STATES

from .state import HttpState, get_state

__all__ = ["Metrics", "router"]

_LATENCY_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip

router = APIRouter(tags=["metrics"])


class Metrics:
    """shoal's Prometheus metrics, registered on their own `CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Gauge(
            "shoal_jobs", "Jobs by state.", ["namespace", "queue", "state"], registry=r
        )
        self.depth = Gauge(
            "shoal_queue_depth",
            "Jobs waiting (queued or scheduled) in a queue.",
            ["namespace", "queue"],
            registry=r,
        )
        self.paused = Gauge(
            "shoal_queue_paused", "1 when the queue is paused.", ["namespace", "queue"], registry=r
        )
        self.workers = Gauge(
            "shoal_workers", "Connected workers by state.", ["namespace", "state"], registry=r
        )
        self.events = Counter(
            "shoal_events", "Lifecycle events seen by this server.", ["namespace", "kind"],
            registry=r,
        )  # fmt: skip
        self.wait = Histogram(
            "shoal_job_wait_seconds",
            "Seconds from enqueue to the first start of a job.",
            ["namespace", "queue"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.run = Histogram(
            "shoal_job_run_seconds",
            "Seconds an attempt ran, by its outcome.",
            ["namespace", "queue", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def count_event(self, event: Event) -> None:
        """Count one lifecycle event."""
        self.events.labels(event.namespace, event.kind).inc()

    def observe_wait(self, namespace: str, queue: str, seconds: float) -> None:
        """Record an enqueue-to-start delay."""
        self.wait.labels(namespace, queue).observe(seconds)

    def observe_run(self, namespace: str, queue: str, outcome: str, seconds: float) -> None:
        """Record how long an attempt ran."""
        self.run.labels(namespace, queue, outcome).observe(seconds)

    async def refresh(self, state: HttpState) -> None:
        """Read the gauges from the service."""
        service = state.service
        self.jobs.clear()
        self.depth.clear()
        self.paused.clear()
        for namespace in state.known_namespaces():
            for queue in await state.counts.get(namespace):
                for job_state, count in queue.counts.items():
                    self.jobs.labels(namespace, queue.name, job_state.value).set(count)
                depth = sum(queue.counts.get(s, 0) for s in WAITING_STATES)
                self.depth.labels(namespace, queue.name).set(depth)
                self.paused.labels(namespace, queue.name).set(1 if queue.paused else 0)
        self.workers.clear()
        counts: dict[tuple[str, str], int] = {}
        for worker in await service.list_workers(None):
            key = (worker.namespace, worker.state.value)
            counts[key] = counts.get(key, 0) + 1
        for (namespace, worker_state), count in counts.items():
            self.workers.labels(namespace, worker_state).set(count)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics",
)
async def metrics(request: Request, state: Annotated[HttpState, Depends(get_state)]) -> Response:
    """Metrics in the Prometheus text format."""
    state.check_token(request)
    await state.recorder.metrics.refresh(state)
    body = generate_latest(state.recorder.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
