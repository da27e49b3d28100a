from __future__ import annotations

import logging
from collections import OrderedDict, deque
from dataclasses import dataclass

from shoal.core.errors import InvalidArgument
from shoal.core.events import Event
from shoal.core.validation import check_name

from .metrics import Metrics

logger = logging.getLogger(__name__)

# Bounds, so a server that sees millions of jobs keeps a fixed amount of memory for them.
_MAX_TRACKED = 200_000
_MAX_LOGGED_JOBS = 20_000
_MAX_EVENTS_PER_JOB = 40
_Entry = tuple[str, float, str, str | None, str | None, str | None, str | None, int | None]
_FINISHED = {"job.succeeded", "job.failed", "job.cancelled", "job.retrying", "job.requeued"}


@dataclass(slots=True)
class Bucket:
    """What happened in one namespace during one time slot."""

    start: float
    enqueued: int = 0
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    wait_sum: float = 0.0
    wait_count: int = 0
    run_sum: float = 0.0
    run_count: int = 0


class Recorder:
    """Turns the event stream into metrics, per-namespace time series and a recent-event log
    per job. It only sees what happened since this server started: the store keeps the jobs,
    not their events.
    """

    def __init__(self, metrics: Metrics, bucket_seconds: float, buckets: int) -> None:
        self.metrics = metrics
        self.bucket_seconds = bucket_seconds
        self._buckets = buckets
        self._enqueued_at: OrderedDict[str, float] = OrderedDict()
        self._started_at: OrderedDict[str, float] = OrderedDict()
        self._series: dict[str, deque[Bucket]] = {}
        self._log: OrderedDict[str, tuple[_Entry, ...]] = OrderedDict()
        self.namespaces: set[str] = set()
        #: Namespaces that lost a queue or were deleted (through any surface) since they were
        #: last looked at: forgotten if they hold no queue anymore (`HttpState.known_namespaces`,
        #: which can ask the store).
        self.emptied: set[str] = set()
        #: (namespace, worker id) of the workers asked to drain; pull workers learn it from
        #: their fetch and heartbeat. A pull worker chooses its id: the same id in another
        #: namespace is another worker.
        self.draining: set[tuple[str, str]] = set()

    def observe(self, event: Event) -> bool:
        """Record an event as the bus publishes it; always False (nothing is buffered).

        Used as a subscription's filter: the bus calls it synchronously for every event, so
        the recorder never falls behind nor drops an event, and needs no task of its own.
        """
        try:
            self.record(event)
        except Exception:  # a bookkeeping bug must never fail the operation that published
            logger.exception("cannot record event", extra={"event": "http.recorder_error"})
        return False

    def record(self, event: Event) -> None:
        """Account for one event."""
        if event.kind == "namespace.deleted":
            # Neither counted nor listed: it would keep the name it is about to forget.
            self._namespace_emptied(event.namespace)
            return
        if event.namespace not in self.namespaces and _is_name(event.namespace):
            self.namespaces.add(event.namespace)
        self.metrics.count_event(event)
        if event.job_id is None:
            if event.kind == "queue.deleted":
                self._queue_deleted(event)
            else:
                self._worker_event(event)
            return
        self._log_event(event)
        bucket = self._bucket(event.namespace, event.at)
        kind, job_id = event.kind, event.job_id
        if kind == "job.enqueued":
            bucket.enqueued += 1
            _bounded_put(self._enqueued_at, job_id, event.at)
        elif kind == "job.claimed":
            bucket.started += 1
            _bounded_put(self._started_at, job_id, event.at)
            enqueued = self._enqueued_at.pop(job_id, None)
            if enqueued is not None:
                wait = max(event.at - enqueued, 0.0)
                bucket.wait_sum += wait
                bucket.wait_count += 1
                self.metrics.observe_wait(event.namespace, event.queue or "", wait)
        elif kind in _FINISHED:
            if kind == "job.succeeded":
                bucket.succeeded += 1
            elif kind == "job.failed":
                bucket.failed += 1
            started = self._started_at.pop(job_id, None)
            if started is not None:
                run = max(event.at - started, 0.0)
                bucket.run_sum += run
                bucket.run_count += 1
                outcome = kind.removeprefix("job.")
                self.metrics.observe_run(event.namespace, event.queue or "", outcome, run)
        elif kind == "job.deleted":
            self._enqueued_at.pop(job_id, None)

    def _queue_deleted(self, event: Event) -> None:
        # Queue and namespace names are the callers' own: what is kept by name must go with
        # the name, or every queue ever made stays in memory and in each scrape.
        self.metrics.forget_queue(event.namespace, event.queue or "")
        self._namespace_emptied(event.namespace)

    def _namespace_emptied(self, namespace: str) -> None:
        """A namespace lost a queue, or was deleted: it may hold no queue anymore."""
        if namespace in self.namespaces:
            self.emptied.add(namespace)

    def forget_namespace(self, namespace: str) -> None:
        """Drop all that is kept about a namespace that holds no queue anymore."""
        self.namespaces.discard(namespace)
        self.emptied.discard(namespace)
        self._series.pop(namespace, None)
        self.metrics.forget_namespace(namespace)

    def _worker_event(self, event: Event) -> None:
        if event.worker_id is None:
            return
        key = (event.namespace, event.worker_id)
        if event.kind == "worker.drain":
            self.draining.add(key)
        elif event.kind in ("worker.joined", "worker.left"):
            self.draining.discard(key)
            if event.namespace == "*":  # gone from every namespace
                self.draining -= {pair for pair in self.draining if pair[1] == event.worker_id}

    def _log_event(self, event: Event) -> None:
        # Kept as tuples of plain values: the garbage collector stops tracking those, where
        # tens of thousands of retained lists and events would slow every collection.
        assert event.job_id is not None
        entry = (event.kind, event.at, event.namespace, event.queue, event.task, event.state,
                 event.worker_id, event.attempt)  # fmt: skip
        log = self._log
        events = log.get(event.job_id)
        if events is None:
            log[event.job_id] = (entry,)
            if len(log) > _MAX_LOGGED_JOBS:
                log.popitem(last=False)
        elif len(events) < _MAX_EVENTS_PER_JOB:
            log[event.job_id] = (*events, entry)

    def job_events(self, job_id: str) -> list[Event]:
        """The events of a job seen since this server started (at most 40)."""
        return [
            Event(
                kind,
                namespace,
                at,
                job_id=job_id,
                queue=queue,
                task=task,
                state=state,
                worker_id=worker_id,
                attempt=attempt,
            )
            for kind, at, namespace, queue, task, state, worker_id, attempt in self._log.get(
                job_id, ()
            )
        ]

    def _bucket(self, namespace: str, at: float) -> Bucket:
        start = at - at % self.bucket_seconds
        series = self._series.get(namespace)
        if series is None:
            series = self._series[namespace] = deque(maxlen=self._buckets)
        if series and series[-1].start == start:
            return series[-1]
        if series and series[-1].start > start:
            # A late event (clock skew between callers): count it in the newest slot.
            return series[-1]
        bucket = Bucket(start)
        series.append(bucket)
        return bucket

    def series(self, namespace: str, since: float) -> list[Bucket]:
        """The slots of a namespace that start at or after `since`, oldest first."""
        return [b for b in self._series.get(namespace, ()) if b.start >= since]


def _is_name(namespace: str) -> bool:
    # Worker events of every namespace carry "*"; only real names are listed.
    try:
        check_name("namespace", namespace)
    except InvalidArgument:
        return False
    return namespace != "*"


def _bounded_put(table: OrderedDict[str, float], key: str, value: float) -> None:
    table[key] = value
    if len(table) > _MAX_TRACKED:
        table.popitem(last=False)
