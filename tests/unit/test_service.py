from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shoal.core.clock import ManualClock
from shoal.core.errors import Conflict, InvalidArgument, LeaseLost, NotFound
from shoal.core.ids import new_worker_session, worker_id_of
from shoal.core.maintenance import Maintenance
from shoal.core.model import (
    JobError,
    JobQuery,
    JobState,
    LeaseRef,
    WorkerInfo,
    WorkerState,
)
from shoal.core.ports import Resumed
from shoal.core.retry import RetryPolicy
from shoal.core.service import (
    ClaimInput,
    QueuePolicy,
    QueueService,
    ResumeInput,
    ServiceSettings,
)
from shoal.core.validation import EnqueueRequest
from shoal.stores.memory import MemoryStore

S = JobState


def lease(job) -> LeaseRef:  # type: ignore[no-untyped-def]
    return LeaseRef(job.id, job.lease_token)


async def test_enqueue_applies_queue_policy_and_delay(
    memory_service: QueueService, manual_clock: ManualClock
) -> None:
    service = QueueService(
        MemoryStore(),
        ServiceSettings(queue_policies={"mail": QueuePolicy(5, RetryPolicy.fixed(2), 30.0)}),
        clock=manual_clock,
    )
    now = manual_clock.now()
    delayed = (await service.enqueue(EnqueueRequest("send", queue="mail", delay=10))).job
    assert delayed.state is S.SCHEDULED and delayed.run_at == now + 10
    assert (delayed.max_attempts, delayed.timeout) == (5, 30.0)
    assert RetryPolicy.parse(delayed.backoff) == RetryPolicy.fixed(2)
    plain = (await service.enqueue(EnqueueRequest("x", max_attempts=1))).job
    assert plain.state is S.QUEUED and plain.max_attempts == 1


async def test_a_bad_request_in_a_batch_is_named_by_its_place(
    memory_service: QueueService,
) -> None:
    batch = [EnqueueRequest("t"), EnqueueRequest("t", queue="bad queue"), EnqueueRequest("t")]
    with pytest.raises(InvalidArgument) as raised:
        await memory_service.enqueue_many(batch)
    assert raised.value.field == "jobs.1.queue"  # was "queue": which of the three?
    assert raised.value.message.startswith("jobs.1.queue: must not contain white space")
    with pytest.raises(InvalidArgument) as alone:
        await memory_service.enqueue(EnqueueRequest("t", queue="bad queue"))
    assert alone.value.field == "queue"


async def test_a_bad_request_in_a_batch_stores_nothing(memory_service: QueueService) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await memory_service.enqueue_many([EnqueueRequest("ok"), EnqueueRequest("ok", delay=-1)])
    assert raised.value.field == "jobs.1.delay"
    assert (await memory_service.stats("default")).total == 0


async def test_claim_waits_for_an_enqueue(memory_service: QueueService) -> None:
    claim = asyncio.create_task(memory_service.claim(ClaimInput("w1", ("default",), wait=5)))
    await asyncio.sleep(0.01)
    assert not claim.done()
    enqueued = await memory_service.enqueue(EnqueueRequest("t"))
    [job] = await asyncio.wait_for(claim, 1)
    assert job.id == enqueued.job.id and job.state is S.RUNNING


async def test_a_claim_with_lookahead_wakes_for_a_job_due_within_it(
    memory_service: QueueService,
) -> None:
    ahead = ClaimInput("w1", ("default",), wait=5, lookahead=0.5)
    claim = asyncio.create_task(memory_service.claim(ahead))
    await asyncio.sleep(0.01)
    far = await memory_service.enqueue(EnqueueRequest("t", delay=5))
    await asyncio.sleep(0.01)
    assert not claim.done()  # due in 5 s: beyond every lookahead
    soon = await memory_service.enqueue(EnqueueRequest("t", delay=0.05))
    [job] = await asyncio.wait_for(claim, 1)
    assert job.id == soon.job.id and job.run_at == soon.job.run_at and job.worker_id == "w1"
    assert (await memory_service.get("default", far.job.id)).state is S.SCHEDULED
    other = await memory_service.enqueue(EnqueueRequest("t", delay=0.05))
    assert await memory_service.claim(ClaimInput("w2", ("default",))) == []  # only due jobs
    [job] = await memory_service.claim(ClaimInput("w2", ("default",), lookahead=0.1))
    assert job.id == other.job.id


async def test_the_service_caps_the_lookahead_a_claim_asks_for(
    memory_service: QueueService,
) -> None:
    cap = memory_service.settings.lookahead
    job = (await memory_service.enqueue(EnqueueRequest("t", delay=cap + 0.5))).job
    assert await memory_service.claim(ClaimInput("w", ("default",), lookahead=cap + 1)) == []
    assert job.state is S.SCHEDULED


async def test_claim_validates_its_input(memory_service: QueueService) -> None:
    for request, field in [
        (ClaimInput("w", ()), "queues"),
        (ClaimInput("w", ("bad queue",)), "queues"),
        (ClaimInput("", ("q",)), "worker_id"),
        (ClaimInput("w", ("q",), limit=0), "limit"),
        (ClaimInput("w", ("q",), lookahead=-0.1), "lookahead"),
        (ClaimInput("w", ("q",), lookahead=float("nan")), "lookahead"),
        (ClaimInput("w", ("q",), lookahead=float("inf")), "lookahead"),
        # an infinite or NaN lease was never reaped: the job stayed running for ever
        (ClaimInput("w", ("q",), lease_ttl=float("nan")), "lease_ttl"),
        (ClaimInput("w", ("q",), lease_ttl=float("inf")), "lease_ttl"),
        (ClaimInput("w", ("q",), lease_ttl=-1.0), "lease_ttl"),
        (ClaimInput("w", ("q",), lease_ttl=86_401.0), "lease_ttl"),
    ]:
        with pytest.raises(InvalidArgument) as raised:
            await memory_service.claim(request)
        assert raised.value.field == field


async def test_cancel_running_reaches_heartbeat_and_events(memory_service: QueueService) -> None:
    await memory_service.enqueue(EnqueueRequest("t"))
    [job] = await memory_service.claim(ClaimInput("w1", ("default",)))
    events = memory_service.events.subscribe()
    cancelled = await memory_service.cancel("default", job.id)
    assert cancelled.cancel_requested
    event = await events.next(0)
    assert event is not None and (event.kind, event.job_id) == ("job.cancel_requested", job.id)
    beat = await memory_service.heartbeat([lease(job)])
    assert beat.cancel_requested == (job.id,)
    ended = await memory_service.fail(lease(job), JobError("Cancelled", "stopped"))
    assert ended.state is S.CANCELLED


async def test_wait_for_returns_when_the_job_finishes(memory_service: QueueService) -> None:
    job = (await memory_service.enqueue(EnqueueRequest("t"))).job
    waiter = asyncio.create_task(memory_service.wait_for("default", job.id, 5))
    [claimed] = await memory_service.claim(ClaimInput("w1", ("default",)))
    await asyncio.sleep(0)
    await memory_service.complete(lease(claimed), b"42")
    finished = await asyncio.wait_for(waiter, 1)
    assert finished.state is S.SUCCEEDED and finished.result == b"42"
    with pytest.raises(NotFound):
        await memory_service.wait_for("default", "missing", 0)


async def test_fail_then_retry_then_succeed(memory_service: QueueService, manual_clock) -> None:  # type: ignore[no-untyped-def]
    request = EnqueueRequest("t", max_attempts=2, backoff=RetryPolicy.fixed(3))
    await memory_service.enqueue(request)
    [job] = await memory_service.claim(ClaimInput("w", ("default",)))
    retrying = await memory_service.fail(lease(job), JobError("E", "m"))
    assert retrying.state is S.SCHEDULED
    assert await memory_service.claim(ClaimInput("w", ("default",))) == []
    manual_clock.advance(3)
    [again] = await memory_service.claim(ClaimInput("w", ("default",)))
    assert again.attempt == 2
    with pytest.raises(LeaseLost):
        await memory_service.complete(lease(job))
    assert (await memory_service.complete(lease(again))).state is S.SUCCEEDED
    with pytest.raises(InvalidArgument):
        await memory_service.fail(lease(again), JobError("E", ""), retry_delay=-1)


async def test_workers_join_drain_and_are_kicked(
    memory_service: QueueService, manual_clock: ManualClock
) -> None:
    now = manual_clock.now()
    worker = WorkerInfo("w1", "default", ("default",), now, now)
    await memory_service.register_worker(worker)
    await memory_service.enqueue(EnqueueRequest("t"))
    [job] = await memory_service.claim(ClaimInput("w1", ("default",)))
    manual_clock.advance(1)
    await memory_service.heartbeat([lease(job)], worker_id="w1")
    [listed] = await memory_service.list_workers("default")
    assert listed.running == 1 and listed.last_heartbeat == now + 1
    drained = await memory_service.drain_worker("default", "w1")
    assert drained.state is WorkerState.DRAINING
    [requeued] = await memory_service.kick_worker("default", "w1")
    assert requeued.id == job.id and requeued.state is S.QUEUED
    assert await memory_service.list_workers() == []
    with pytest.raises(NotFound):
        await memory_service.kick_worker("default", "w1")
    with pytest.raises(InvalidArgument):
        await memory_service.register_worker(
            WorkerInfo("w2", "default", (), now, now, concurrency=0)
        )


async def test_a_resumed_worker_keeps_its_jobs_and_the_rest_go_back_at_once(
    memory_service: QueueService, manual_clock: ManualClock
) -> None:
    now = manual_clock.now()
    (old, secret), (other, other_secret) = new_worker_session(), new_worker_session()
    await memory_service.register_worker(WorkerInfo(old, "default", ("default",), now, now))
    await memory_service.register_worker(WorkerInfo(other, "x", ("default",), now, now))
    await memory_service.enqueue_many([EnqueueRequest("t"), EnqueueRequest("t")])
    running, prefetched = await memory_service.claim(ClaimInput(old, ("default",), limit=2))
    await memory_service.register_worker(WorkerInfo("new", "default", ("default",), now, now))
    # a worker's id (shown to anyone who may list workers) is no proof: nothing moves
    assert await memory_service.resume_worker(ResumeInput("new", old)) == Resumed((), ())
    events = memory_service.events.subscribe(kinds=("job.requeued", "worker.left"))
    resumed = await memory_service.resume_worker(ResumeInput("new", secret, (lease(running),)))
    assert [job.id for job in resumed.kept] == [running.id]
    [back] = resumed.released
    assert back.id == prefetched.id and back.state is S.QUEUED and back.attempt == 0
    workers = {worker.id: worker.running for worker in await memory_service.list_workers()}
    assert workers == {"new": 1, other: 0}  # the lost stream's record is gone
    [again] = await memory_service.claim(ClaimInput("new", ("default",), wait=0))
    assert again.id == prefetched.id
    seen = [await events.next(0) for _ in range(3)]
    assert [event.kind for event in seen if event is not None] == ["job.requeued", "worker.left"]
    events.close()
    with pytest.raises(InvalidArgument):
        await memory_service.resume_worker(ResumeInput("new", ""))
    _, new_secret = new_worker_session()
    with pytest.raises(InvalidArgument):  # a stream cannot name itself as the one it lost
        await memory_service.resume_worker(ResumeInput(worker_id_of(new_secret), new_secret))
    with pytest.raises(InvalidArgument):
        held = (LeaseRef("j", "t"),) * (memory_service.settings.limits.max_batch + 1)
        await memory_service.resume_worker(ResumeInput("new", other_secret, held))
    # another namespace's stream is untouched, even named by its secret
    await memory_service.resume_worker(ResumeInput("new", other_secret))
    assert {worker.id for worker in await memory_service.list_workers()} == {"new", other}
    page = await memory_service.list_jobs(JobQuery(state=S.RUNNING))
    assert {job.worker_id for job in page.jobs} == {"new"}


async def test_queue_controls(memory_service: QueueService) -> None:
    await memory_service.enqueue_many([EnqueueRequest("t", queue="q") for _ in range(3)])
    await memory_service.pause_queue("default", "q")
    assert await memory_service.claim(ClaimInput("w", ("q",))) == []
    await memory_service.resume_queue("default", "q")
    [job] = await memory_service.claim(ClaimInput("w", ("q",)))
    assert await memory_service.purge_queue("default", "q") == 2
    with pytest.raises(Conflict):
        await memory_service.delete_queue("default", "q")
    await memory_service.complete(lease(job))
    assert await memory_service.delete_queue("default", "q") == 1
    with pytest.raises(InvalidArgument):
        await memory_service.list_jobs(JobQuery(limit=5000))


async def test_maintenance_promotes_due_jobs_and_reaps_leases() -> None:
    service = QueueService(MemoryStore(), ServiceSettings(lease_ttl=0.05))
    maintenance = Maintenance(service, reap_interval=0.01)
    runner = asyncio.create_task(maintenance.run())
    try:
        delayed = (await service.enqueue(EnqueueRequest("t", delay=0.05))).job
        [claimed] = await service.claim(ClaimInput("w", ("default",), wait=2))
        assert claimed.id == delayed.id
        [again] = await service.claim(ClaimInput("w2", ("default",), wait=2))
        assert again.id == delayed.id and again.attempt == 2
    finally:
        maintenance.stop()
        await asyncio.wait_for(runner, 2)


async def test_a_job_that_starts_waiting_wakes_the_promoter_without_events() -> None:
    """A delayed enqueue and a retry with backoff wake the promoter at once (the service calls
    its `on_scheduled` listeners), though it would otherwise sleep 30 s and nobody listens to
    events.
    """
    service = QueueService(MemoryStore())
    maintenance = Maintenance(service, max_idle=30.0)
    runner = asyncio.create_task(maintenance.run())
    try:
        await asyncio.sleep(0.05)  # the promoter is asleep, with nothing due
        assert not service.events.wants("job.enqueued")
        delayed = (await service.enqueue(EnqueueRequest("t", delay=0.05))).job
        async with asyncio.timeout(1):
            [claimed] = await service.claim(ClaimInput("w", ("default",), wait=1))
        assert claimed.id == delayed.id
        error = JobError("E", "boom")
        retried = await service.fail(lease(claimed), error, retry_delay=0.05)
        assert retried.state is JobState.SCHEDULED
        async with asyncio.timeout(1):
            [again] = await service.claim(ClaimInput("w", ("default",), wait=1))
        assert again.id == delayed.id and again.attempt == 2
    finally:
        maintenance.stop()
        await asyncio.wait_for(runner, 2)


@pytest.mark.parametrize("delay", [-1.0, float("nan"), float("inf"), 2e9])
async def test_a_retry_delay_out_of_bounds_is_refused_and_changes_nothing(
    memory_service: QueueService, delay: float
) -> None:
    # a NaN or infinite delay left the job scheduled with a run_at that never falls due
    await memory_service.enqueue(EnqueueRequest("t", max_attempts=2))
    [job] = await memory_service.claim(ClaimInput("w", ("default",)))
    with pytest.raises(InvalidArgument) as raised:
        await memory_service.fail(lease(job), JobError("E", "m"), retry_delay=delay)
    assert raised.value.field == "retry_delay"
    assert (await memory_service.get(job.namespace, job.id)).state is S.RUNNING


async def test_text_without_a_utf8_form_is_refused_before_the_store(
    memory_service: QueueService,
) -> None:
    # a lone surrogate (JSON can carry one) reached the SQLite store as a raw UnicodeEncodeError
    lone = "\ud800"
    for request, field in [
        (EnqueueRequest("t", idempotency_key=f"k{lone}"), "idempotency_key"),
        (EnqueueRequest("t", content_type=f"text/{lone}"), "content_type"),
        (EnqueueRequest("t", content_type=""), "content_type"),
    ]:
        with pytest.raises(InvalidArgument) as raised:
            await memory_service.enqueue(request)
        assert raised.value.field == field
    await memory_service.enqueue(EnqueueRequest("t"))
    [job] = await memory_service.claim(ClaimInput("w", ("default",)))
    with pytest.raises(InvalidArgument) as refused:
        await memory_service.fail(lease(job), JobError("E", f"bad {lone}"))
    assert refused.value.field == "error.message"
    assert (await memory_service.get(job.namespace, job.id)).state is S.RUNNING


async def test_nul_characters_are_refused_before_the_store(
    memory_service: QueueService,
) -> None:
    # PostgreSQL's text cannot hold NUL: memory and SQLite stored these, PostgreSQL failed
    # with storage_error, and a failure whose message held one left its job running
    for request, field in [
        (EnqueueRequest("t", idempotency_key="k\x00"), "idempotency_key"),
        (EnqueueRequest("t", content_type="text/\x00"), "content_type"),
        (EnqueueRequest("t", parent_id="p\x00"), "parent_id"),
        (EnqueueRequest("t", schedule_id="s\x00"), "schedule_id"),
    ]:
        with pytest.raises(InvalidArgument) as raised:
            await memory_service.enqueue(request)
        assert raised.value.field == field
    await memory_service.enqueue(EnqueueRequest("t"))
    [job] = await memory_service.claim(ClaimInput("w", ("default",)))
    with pytest.raises(InvalidArgument) as refused:
        await memory_service.fail(lease(job), JobError("E", "m", "trace\x00"))
    assert refused.value.field == "error.traceback"
    assert (await memory_service.get(job.namespace, job.id)).state is S.RUNNING


async def test_a_worker_id_of_another_namespace_is_not_taken_over(
    memory_service: QueueService,
) -> None:
    # records are keyed by id alone: a go-work member's join moved another namespace's record
    await memory_service.register_worker(WorkerInfo("w1", "ns2", ("q",), 0.0, 0.0))
    with pytest.raises(Conflict):
        await memory_service.register_worker(WorkerInfo("w1", "default", ("q",), 0.0, 0.0))
    [kept] = await memory_service.list_workers("ns2")
    assert kept.id == "w1"


async def test_registering_a_worker_reads_no_other_worker_record() -> None:
    # ids of the server's form are new random ones that no worker may choose: checking each
    # against every record made a thousand streams reconnecting at once quadratic; a chosen id
    # is looked up by key (reading every record cost 12 ms a registration at 2,000 records)
    class Counting(MemoryStore):
        listed = 0
        looked_up = 0

        async def list_workers(self, namespace: str | None = None) -> list[WorkerInfo]:
            self.listed += 1
            return await super().list_workers(namespace)

        async def get_worker(self, worker_id: str) -> WorkerInfo | None:
            self.looked_up += 1
            return await super().get_worker(worker_id)

    store = Counting()
    service = QueueService(store)
    for _ in range(3):
        stream_id, _secret = new_worker_session()
        await service.register_worker(WorkerInfo(stream_id, "default", ("q",), 0.0, 0.0))
    assert (store.listed, store.looked_up) == (0, 0)
    await service.register_worker(WorkerInfo("chosen", "default", ("q",), 0.0, 0.0))
    await service.drain_worker("default", "chosen")
    with pytest.raises(NotFound):  # another namespace's record is not found by its id
        await service.kick_worker("other", "chosen")
    assert (store.listed, store.looked_up) == (0, 3)


async def test_a_heartbeat_naming_no_lease_only_refreshes_the_record() -> None:
    # idle workers heartbeat (gRPC streams, TCP connections, SDK workers): one store call each
    class Counting(MemoryStore):
        renewals = 0

        async def heartbeat(self, *args: Any, **kwargs: Any) -> Any:
            self.renewals += 1
            return await super().heartbeat(*args, **kwargs)

    store = Counting()
    service = QueueService(store)
    await service.register_worker(WorkerInfo("w", "default", ("q",), 0.0, 0.0))
    result = await service.heartbeat([], "w", namespace="default")
    assert (result.renewed, result.lost, store.renewals) == ((), (), 0)
    [member] = await service.list_workers("default")
    assert member.last_heartbeat > 0.0
