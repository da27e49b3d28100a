"""A worker session's credits travel in batches: a message per quarter of the slots, not per
job, unless the server holds none (then at once, so that no free slot waits for a credit).
"""

from __future__ import annotations

from shoal.core.model import WorkerInfo
from shoal.protocols.grpc.gen.shoal.v1 import model_pb2, workers_pb2
from shoal.sdk._grpc_session import GrpcSession


class _Call:
    """The stream as the session writes it: the credits sent."""

    def __init__(self) -> None:
        self.credits: list[int] = []

    async def write(self, message: workers_pb2.WorkerMessage) -> None:
        assert message.WhichOneof("kind") == "credit"
        self.credits.append(message.credit.credits)


def _session(concurrency: int) -> tuple[GrpcSession, _Call]:
    call = _Call()
    worker = WorkerInfo("w", "default", ("q",), 0.0, 0.0, concurrency=concurrency)
    return GrpcSession(call, worker, lambda job_id: None), call


def _assign(session: GrpcSession, count: int) -> None:
    message = workers_pb2.ServerMessage()
    for i in range(count):
        item = message.assignments.assignments.add(token=f"t{i}")
        job = model_pb2.Job(id=f"j{i}", namespace="default", queue="q", task="t")
        job.state = model_pb2.JOB_STATE_RUNNING
        item.job.CopyFrom(job)
    session._dispatch(message)


async def test_credits_are_granted_in_batches_while_the_server_holds_some() -> None:
    session, call = _session(concurrency=8)
    assert await session.claim(["q"], 8, 0.0) == [] and call.credits == [8]
    # Jobs come one at a time and finish at once (every claim has 8 free slots). A claim
    # counts the job it is about to take as still held: grants of 0, then 1 (which waits,
    # the server still holding 6 credits), then 2, a quarter of the slots, sent together.
    for sent in ([8], [8], [8, 2]):
        _assign(session, 1)
        assert len(await session.claim(["q"], 8, 0.0)) == 1
        assert call.credits == sent


async def test_credits_are_granted_at_once_when_the_server_holds_none() -> None:
    session, call = _session(concurrency=8)
    await session.claim(["q"], 8, 0.0)
    _assign(session, 8)  # every credit used
    assert len(await session.claim(["q"], 8, 0.0)) == 8
    assert await session.claim(["q"], 1, 0.0) == []  # one slot freed: granted now
    assert call.credits == [8, 1]
