"""go-work compatibility: a go-work worker (played by this test: a WorkerService server that
joins and heartbeats) gets tasks pushed by shoal, completes them, and is stopped on cancel.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from shoal.protocols.grpc.gen.cluster.v1 import leader_pb2, leader_pb2_grpc
from shoal.protocols.grpc.gen.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from shoal.protocols.grpc.gen.worker.v1 import worker_pb2, worker_pb2_grpc
from tests.integration import _grpc_server as harness
from tests.integration._grpc_server import ServerProcess, error_code

server = harness.server
S = scheduler_pb2


class FakeWorker(worker_pb2_grpc.WorkerServiceServicer):
    """go-work's worker side: records StartWork/StopWork; refuses work while `busy`."""

    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[str, str, str]] = queue.Queue()
        self.busy = False

    def StartWork(self, request, context):  # type: ignore[no-untyped-def]
        if self.busy:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "Already working")
        self.calls.put(("start", request.id, request.payload))
        return worker_pb2.StartWorkResponse(success=True)

    def StopWork(self, request, context):  # type: ignore[no-untyped-def]
        self.calls.put(("stop", request.id, ""))
        return worker_pb2.StopWorkResponse(success=True)


@pytest.fixture
def go_worker() -> Iterator[tuple[FakeWorker, str]]:
    fake = FakeWorker()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(4))
    worker_pb2_grpc.add_WorkerServiceServicer_to_server(fake, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    yield fake, f"127.0.0.1:{port}"
    grpc_server.stop(None)


def _tasks(scheduler: scheduler_pb2_grpc.SchedulerServiceStub) -> dict[str, S.Task]:
    return {task.id: task for task in scheduler.GetTasks(S.GetTasksRequest()).tasks}


def test_tasks_are_pushed_completed_and_cancelled(
    server: ServerProcess, go_worker: tuple[FakeWorker, str]
) -> None:
    fake, address = go_worker
    with server.channel() as channel:
        leader = leader_pb2_grpc.LeaderServiceStub(channel)
        scheduler = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        leader.Join(leader_pb2.JoinRequest(id="w1", address=address))
        (member,) = leader.Members(leader_pb2.MembersRequest()).members
        assert (member.id, member.address, member.status) == ("w1", address, "unknown, unknown")
        scheduler.ScheduleTask(S.ScheduleTaskRequest(task=S.Task(id="t1", payload="p1")))
        assert _tasks(scheduler)["t1"].status == S.TASK_STATUS_PENDING  # no idle member yet

        idle = leader_pb2.HEARTBEAT_STATUS_IDLE
        leader.Heartbeat(leader_pb2.HeartbeatRequest(id="w1", status=idle))
        assert fake.calls.get(timeout=5) == ("start", "t1", "p1")
        assert _tasks(scheduler)["t1"].status == S.TASK_STATUS_RUNNING
        assert leader.Members(leader_pb2.MembersRequest()).members[0].status == "alive, idle"
        scheduler.TaskComplete(S.TaskCompleteRequest(id="t1"))
        assert _tasks(scheduler)["t1"].status == S.TASK_STATUS_COMPLETED

        high = S.TASK_PRIORITY_HIGH
        scheduler.ScheduleTask(S.ScheduleTaskRequest(task=S.Task(id="t2", payload="p2")))
        assert fake.calls.get(timeout=5)[:2] == ("start", "t2")
        scheduler.CancelTask(S.CancelTaskRequest(id="t2"))
        assert fake.calls.get(timeout=5) == ("stop", "t2", "")
        assert _tasks(scheduler)["t2"].status == S.TASK_STATUS_CANCELLED
        with pytest.raises(grpc.RpcError) as late:  # the seed turned this into COMPLETED
            scheduler.TaskComplete(S.TaskCompleteRequest(id="t2"))
        assert late.value.code() is grpc.StatusCode.ABORTED
        assert error_code(late.value) == "lease_lost"

        task = S.Task(id="t3", payload="p3", priority=high)
        scheduler.ScheduleTask(S.ScheduleTaskRequest(task=task))
        assert fake.calls.get(timeout=5)[:2] == ("start", "t3")
        scheduler.TaskComplete(S.TaskCompleteRequest(id="t3", error="disk full"))
        t3 = _tasks(scheduler)["t3"]
        assert (t3.status, t3.priority) == (S.TASK_STATUS_ERROR, high)

        leader.Leave(leader_pb2.LeaveRequest(id="w1"))
        assert list(leader.Members(leader_pb2.MembersRequest()).members) == []


def test_a_busy_member_is_skipped(server: ServerProcess, go_worker: tuple[FakeWorker, str]) -> None:
    fake, address = go_worker
    fake.busy = True
    with server.channel() as channel:
        leader = leader_pb2_grpc.LeaderServiceStub(channel)
        scheduler = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        leader.Join(leader_pb2.JoinRequest(id="w1", address=address))
        leader.Heartbeat(
            leader_pb2.HeartbeatRequest(id="w1", status=leader_pb2.HEARTBEAT_STATUS_IDLE)
        )
        scheduler.ScheduleTask(S.ScheduleTaskRequest(task=S.Task(id="t", payload="p")))
        fake.busy = False
        # the refused push gave the task back; the member's next idle heartbeat gets it
        leader.Heartbeat(
            leader_pb2.HeartbeatRequest(id="w1", status=leader_pb2.HEARTBEAT_STATUS_IDLE)
        )
        assert fake.calls.get(timeout=5) == ("start", "t", "p")


@pytest.mark.parametrize(
    ("call", "status", "message"),
    [
        (
            lambda lead, sched: lead.Heartbeat(leader_pb2.HeartbeatRequest(id="w")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "UNSPECIFIED is an invalid status",
        ),
        (
            lambda lead, sched: lead.Heartbeat(leader_pb2.HeartbeatRequest(id="nobody", status=1)),
            grpc.StatusCode.NOT_FOUND,
            "member not found",
        ),
        (
            lambda lead, sched: lead.Leave(leader_pb2.LeaveRequest(id="nobody")),
            grpc.StatusCode.NOT_FOUND,
            "member not found",
        ),
        (
            lambda lead, sched: lead.Join(leader_pb2.JoinRequest(id="w")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "address required",
        ),
        (  # a live TCP connection's id: this member's leave would end its leases
            lambda lead, sched: lead.Join(
                leader_pb2.JoinRequest(id="tcp-" + "0" * 32, address="127.0.0.1:1")
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "are the server's",
        ),
        (
            lambda lead, sched: sched.ScheduleTask(S.ScheduleTaskRequest()),
            grpc.StatusCode.INVALID_ARGUMENT,
            "task required",
        ),
        (
            lambda lead, sched: sched.ScheduleTask(S.ScheduleTaskRequest(task=S.Task(payload="x"))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "task id required",
        ),
        (
            lambda lead, sched: sched.ScheduleTask(S.ScheduleTaskRequest(task=S.Task(id="x"))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "task payload required",
        ),
        (
            lambda lead, sched: sched.CancelTask(S.CancelTaskRequest(id="nope")),
            grpc.StatusCode.NOT_FOUND,
            "task not found",
        ),
        (
            lambda lead, sched: sched.TaskComplete(S.TaskCompleteRequest(id="nope")),
            grpc.StatusCode.NOT_FOUND,
            "task not found",
        ),
    ],
)
def test_go_work_errors(server: ServerProcess, call, status, message) -> None:  # type: ignore[no-untyped-def]
    with server.channel() as channel:
        leader = leader_pb2_grpc.LeaderServiceStub(channel)
        scheduler = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        leader.Join(leader_pb2.JoinRequest(id="w", address="127.0.0.1:1"))
        with pytest.raises(grpc.RpcError) as raised:
            call(leader, scheduler)
        assert raised.value.code() is status
        assert message in raised.value.details()
