"""`/metrics` for Prometheus, on a private registry (no global state).

Gauges (jobs by state, queue depth, workers) are read from the service at scrape time;
histograms (enqueue-to-start, run time) and counters are fed from the event stream.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from shoal.core.auth import ALL_NAMESPACES, Action
from shoal.core.events import RELAYED, Event
from shoal.core.model import WAITING_STATES

from .state import HttpState, get_state

__all__ = ["Metrics", "router"]

_LATENCY_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip

router = APIRouter(tags=["metrics"])


class _Histogram:
    """One labelled histogram's buckets, sum and count, as plain numbers."""

    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(_LATENCY_BUCKETS, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        bounds = [*(format(b, "g") for b in _LATENCY_BUCKETS), "+Inf"]
        running = 0
        out: list[tuple[str, float]] = []
        for bound, count in zip(bounds, self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class _EventCollector:
    """The counters and histograms fed by the event bus, kept as plain numbers.

    The event path runs for every lifecycle change of every job, so it only adds to a dict;
    the Prometheus families are built when a scrape asks for them.
    """

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], int] = {}
        self.wait: dict[tuple[str, str], _Histogram] = {}
        self.run: dict[tuple[str, str, str], _Histogram] = {}

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "shoal_events", "Lifecycle events seen by this server.", labels=["namespace", "kind"]
        )
        for labels, value in sorted(self.events.items()):
            events.add_metric(list(labels), value)
        yield events
        wait = HistogramMetricFamily(
            "shoal_job_wait_seconds",
            "Seconds from enqueue to the first start of a job.",
            labels=["namespace", "queue"],
        )
        for labels, histogram in sorted(self.wait.items()):
            wait.add_metric(list(labels), histogram.cumulative(), histogram.total)
        yield wait
        run = HistogramMetricFamily(
            "shoal_job_run_seconds",
            "Seconds an attempt ran, by its outcome.",
            labels=["namespace", "queue", "outcome"],
        )
        for run_labels, histogram in sorted(self.run.items()):
            run.add_metric(list(run_labels), histogram.cumulative(), histogram.total)
        yield run


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
        self._fed = _EventCollector()
        r.register(self._fed)

    def count_event(self, event: Event) -> None:
        """Count one lifecycle event (once across replicas: not one another relayed)."""
        if RELAYED in event.data:
            return
        key = (event.namespace, event.kind)
        self._fed.events[key] = self._fed.events.get(key, 0) + 1

    def observe_wait(self, namespace: str, queue: str, seconds: float) -> None:
        """Record an enqueue-to-start delay."""
        histogram = self._fed.wait.get((namespace, queue))
        if histogram is None:
            histogram = self._fed.wait[(namespace, queue)] = _Histogram()
        histogram.observe(seconds)

    def observe_run(self, namespace: str, queue: str, outcome: str, seconds: float) -> None:
        """Record how long an attempt ran."""
        histogram = self._fed.run.get((namespace, queue, outcome))
        if histogram is None:
            histogram = self._fed.run[(namespace, queue, outcome)] = _Histogram()
        histogram.observe(seconds)

    def forget_queue(self, namespace: str, queue: str) -> None:
        """Drop a deleted queue's histograms (a queue action: rare, so a scan is fine)."""
        fed = self._fed
        fed.wait.pop((namespace, queue), None)
        for key in [key for key in fed.run if key[:2] == (namespace, queue)]:
            del fed.run[key]

    def forget_namespace(self, namespace: str) -> None:
        """Drop every counter and histogram of a namespace that is gone."""
        fed = self._fed
        fed.events = {key: n for key, n in fed.events.items() if key[0] != namespace}
        fed.wait = {key: h for key, h in fed.wait.items() if key[0] != namespace}
        fed.run = {key: h for key, h in fed.run.items() if key[0] != namespace}

    async def refresh(self, state: HttpState) -> None:
        """Read the gauges from the service."""
        service = state.service
        self.jobs.clear()
        self.depth.clear()
        self.paused.clear()
        for namespace in await state.known_namespaces():
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
    await state.authenticate(request)
    state.require(Action.READ, ALL_NAMESPACES)  # the metrics show every namespace
    await state.recorder.metrics.refresh(state)
    body = generate_latest(state.recorder.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
