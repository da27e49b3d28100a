"""The memory store's jobs and the indexes over them, and how claims and promotions walk them.

Queued jobs sit in a heap per queue and task ordered like a claim (priority, run_at, id), so
that a claim filtered by task reads no other task's jobs, and scheduled ones in a heap by
run_at; entries are checked when popped, so a cancelled or deleted job simply falls out. A
heap a claim empties goes, and deletions count the entries they leave behind, so that the
heaps of a queue nobody consumes do not keep every deleted job's entry (`_forget`). Each
idempotency key lists the stored jobs that have it.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

from shoal.core import transitions
from shoal.core.ids import new_token
from shoal.core.model import ACTIVE_STATES, Job, JobState
from shoal.core.ports import ClaimRequest

QueueKey = tuple[str, str]
#: A queued job's place in its heap (`_rank`).
Rank = tuple[int, float, str]


class JobHeaps:
    """The jobs of a `MemoryStore`, indexed: a job enters by `_put` (again at each move that
    may make it wait), leaves by `_forget`; `_take_due`, `_take_ahead` and `_promote` walk the
    heaps. Not a store by itself: `MemoryStore` builds on it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._jobs: dict[str, Job] = {}
        #: (namespace, idempotency key) -> the ids of the stored jobs with it, oldest first
        #: (a dict as an ordered set: `_forget` removes one in O(1)).
        self._by_key: dict[tuple[str, str], dict[str, None]] = {}
        #: Queue -> task -> heap of ranks (`_rank`).
        self._ready: dict[QueueKey, dict[str, list[Rank]]] = defaultdict(dict)
        self._delayed: list[tuple[float, str]] = []
        #: Entries deleted jobs may have left in a ready heap (`_forget`), and in `_delayed`.
        self._stale: dict[tuple[QueueKey, str], int] = {}
        self._delayed_stale = 0
        #: Queues whose jobs claims skip.
        self._paused: set[QueueKey] = set()

    def _index(self, job: Job) -> None:
        # A queued job waits in its queue's heap, in claim order; a scheduled one in the delayed
        # heap, by run_at, until `_promote` moves it over: a claim pops no job that waits for
        # later (delayed jobs or retries in their backoff, of a higher priority).
        if job.state is JobState.QUEUED:
            heapq.heappush(
                self._ready[(job.namespace, job.queue)].setdefault(job.task, []), _rank(job)
            )
        elif job.state is JobState.SCHEDULED:
            heapq.heappush(self._delayed, (job.run_at, job.id))

    def _put(self, job: Job) -> Job:
        self._jobs[job.id] = job
        self._index(job)
        return job

    def _forget(self, job: Job) -> None:
        """Delete a job, and its entry of its idempotency key's jobs."""
        del self._jobs[job.id]
        if job.idempotency_key is not None:
            key = (job.namespace, job.idempotency_key)
            keyed = self._by_key[key]
            del keyed[job.id]
            if not keyed:
                del self._by_key[key]
        if job.state in (JobState.SCHEDULED, JobState.CANCELLED):  # cancelled: maybe delayed
            self._delayed_stale += 1  # over-counting only compacts sooner
            if 2 * self._delayed_stale >= len(self._delayed):
                self._compact_delayed()
        if job.state in (JobState.QUEUED, JobState.CANCELLED):  # cancelled: maybe unclaimed
            self._count_stale((job.namespace, job.queue), job.task)

    def _count_stale(self, queue: QueueKey, task: str) -> None:
        """One more entry of `queue`'s `task` heap may be stale. Once they may be half of it,
        rebuild the heap: each rebuild costs what the deletions since the last one did.
        """
        heap = self._ready.get(queue, {}).get(task)
        if heap is None:
            return
        stale = self._stale.get((queue, task), 0) + 1
        if 2 * stale < len(heap):
            self._stale[(queue, task)] = stale
            return
        self._stale.pop((queue, task), None)
        heap[:] = [entry for entry in heap if self._is_ready(entry)]
        heapq.heapify(heap)
        if not heap:
            self._drop_empty(queue[0], (queue[1],))

    def _is_ready(self, entry: Rank) -> bool:
        job = self._jobs.get(entry[2])
        return job is not None and job.state is JobState.QUEUED and _rank(job) == entry

    def _compact_delayed(self) -> None:
        self._delayed_stale = 0
        self._delayed = [
            (run_at, job_id)
            for run_at, job_id in self._delayed
            if (job := self._jobs.get(job_id)) is not None
            and job.state is JobState.SCHEDULED
            and job.run_at == run_at
        ]
        heapq.heapify(self._delayed)

    def _drop_empty(self, namespace: str, queues: Iterable[str]) -> None:
        """Drop the empty heaps of these queues, and a queue's entry once it has none."""
        for queue in queues:
            tasks = self._ready.get((namespace, queue))
            if tasks is None:
                continue
            for task in [task for task, heap in tasks.items() if not heap]:
                del tasks[task]
                self._stale.pop(((namespace, queue), task), None)
            if not tasks:
                del self._ready[(namespace, queue)]

    def _drop_queue(self, namespace: str, queue: str) -> None:
        """Drop every heap of a queue with no queued job left: all their entries are stale."""
        for task in self._ready.pop((namespace, queue), {}):
            self._stale.pop(((namespace, queue), task), None)

    def _keep_key(self, key: tuple[str, str], job_id: str) -> None:
        """List a new job among those of its (namespace, idempotency key)."""
        self._by_key.setdefault(key, {})[job_id] = None

    def _key_holder(self, key: tuple[str, str], since: float) -> Job | None:
        """The job that holds this key: the newest not terminal, else the newest created at
        `since` or later. Every stored job with the key is a candidate, as in the SQL stores'
        index: an older one holds the key when the newer are deleted, or finished while it
        was retried (an active job holds it over a finished one in the window).
        """
        windowed = None
        for job_id in reversed(self._by_key.get(key, {})):
            job = self._jobs[job_id]
            if job.state in ACTIVE_STATES:
                return job
            if windowed is None and job.created_at >= since:
                windowed = job
        return windowed

    def _take_due(self, request: ClaimRequest) -> list[Job]:
        """Lease the request's due queued jobs, in claim order (see `Store.claim`)."""
        heaps = [
            heap
            for queue in dict.fromkeys(request.queues)
            if (request.namespace, queue) not in self._paused
            for task, heap in self._ready.get((request.namespace, queue), {}).items()
            if heap and (request.tasks is None or task in request.tasks)
        ]
        claimed: list[Job] = []
        skipped: list[tuple[list[Rank], Rank]] = []
        while len(claimed) < request.limit:
            heap = min((h for h in heaps if h), key=lambda h: h[0], default=None)
            if heap is None:
                break
            entry = heapq.heappop(heap)
            job = self._jobs.get(entry[2])
            if job is None or job.state is not JobState.QUEUED or _rank(job) != entry:
                continue  # stale entry: the job moved on or was re-indexed
            if job.run_at > request.now:
                skipped.append((heap, entry))
                continue
            leased = transitions.claim(
                job, request.worker_id, new_token(), request.now, request.lease_ttl
            )
            self._jobs[job.id] = leased
            claimed.append(leased)
        for heap, entry in skipped:
            heapq.heappush(heap, entry)
        if not all(heaps):
            self._drop_empty(request.namespace, request.queues)
        return claimed

    def _take_ahead(self, request: ClaimRequest, room: int) -> list[Job]:
        """Scheduled jobs due within the lookahead, earliest first (see `Store.claim`)."""
        queues = {
            queue for queue in request.queues if (request.namespace, queue) not in self._paused
        }
        horizon = request.now + request.lookahead
        skipped: list[tuple[float, str]] = []
        claimed: list[Job] = []
        while self._delayed and self._delayed[0][0] <= horizon and len(claimed) < room:
            entry = heapq.heappop(self._delayed)
            job = self._jobs.get(entry[1])
            if (
                job is None
                or job.state is not JobState.SCHEDULED
                or job.run_at != entry[0]
                or job.namespace != request.namespace
                or job.queue not in queues
                or (request.tasks is not None and job.task not in request.tasks)
            ):
                skipped.append(entry)  # another claimer's, or stale (dropped when promoted)
                continue
            leased = transitions.claim(
                job, request.worker_id, new_token(), request.now, request.lease_ttl
            )
            self._jobs[job.id] = leased  # a job given back later is indexed again (`_put`)
            claimed.append(leased)
        for entry in skipped:
            heapq.heappush(self._delayed, entry)
        return claimed

    def _promote(self, now: float) -> list[Job]:
        promoted: list[Job] = []
        while self._delayed and self._delayed[0][0] <= now:
            run_at, job_id = heapq.heappop(self._delayed)
            job = self._jobs.get(job_id)
            if job is not None and job.state is JobState.SCHEDULED and job.run_at == run_at:
                promoted.append(self._put(replace(job, state=JobState.QUEUED)))
        return promoted

    def _next_due(self) -> float | None:
        """The `run_at` of the next scheduled job; the stale entries before it are dropped."""
        while self._delayed:
            run_at, job_id = self._delayed[0]
            job = self._jobs.get(job_id)
            if job is not None and job.state is JobState.SCHEDULED and job.run_at == run_at:
                return run_at
            heapq.heappop(self._delayed)
        return None


def _rank(job: Job) -> Rank:
    return (-job.priority, job.run_at, job.id)
