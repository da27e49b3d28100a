"""The operations of the authorization matrix, per surface, and how to read their outcome.

Each operation names the `Action` it needs and the namespace it needs it in; the expectation of
an attempt is computed from core's `Authorizer` (that is, from `ROLE_ACTIONS`), never written by
hand. `Admin` is the root user over HTTP: it prepares what an operation acts on and takes the
snapshots that show a refused attempt changed nothing.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx

from shoal.core.auth import ALL_NAMESPACES, Action
from shoal.protocols.grpc.gen.shoal.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    queues_pb2,
    queues_pb2_grpc,
    schedules_pb2,
    schedules_pb2_grpc,
    workers_pb2,
    workers_pb2_grpc,
)

from ._auth_env import NS, OTHER_NS

OK, UNAUTHENTICATED, DENIED = "ok", "unauthenticated", "denied"
_serial = itertools.count()


def unique(prefix: str) -> str:
    """A fresh name."""
    return f"{prefix}{next(_serial)}"


@dataclass(frozen=True)
class Creds:
    """How an attempt authenticates: a user and password, a token, or nothing."""

    user: str = ""
    password: str = ""
    token: str = ""

    def header(self) -> dict[str, str]:
        if self.token:
            return {"authorization": f"Bearer {self.token}"}
        if self.user:
            basic = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return {"authorization": f"Basic {basic}"}
        return {}


class Admin:
    """The root user over HTTP."""

    def __init__(self, base: str, password: str, channel: grpc.Channel) -> None:
        self.http = httpx.Client(
            base_url=base, timeout=10, headers=Creds("root", password).header()
        )
        self.metadata = tuple(Creds("root", password).header().items())
        self.queues = queues_pb2_grpc.QueueServiceStub(channel)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        params = {"namespace": NS, **kwargs.pop("params", {})}
        reply = self.http.request(method, f"/api/v1{path}", params=params, **kwargs)
        assert reply.is_success, (path, reply.status_code, reply.text)
        return reply.json() if reply.content else None

    def job(self, queue: str = "q") -> str:
        """A queued job's id."""
        return str(self.call("POST", "/jobs", json={"task": "t", "queue": queue})["job"]["id"])

    def worker(self) -> str:
        """A registered pull worker's id."""
        worker_id = unique("w")
        self.call("POST", "/workers", json={"id": worker_id, "queues": ["idle"]})
        return worker_id

    def snapshot(self) -> dict[str, Any]:
        """What a refused attempt must leave as it was."""
        return {
            "stats": self.call("GET", "/stats"),
            # over gRPC: HTTP's queue listing is cached for a second
            "queues": self.queues.ListQueues(
                queues_pb2.ListQueuesRequest(namespace=NS), metadata=self.metadata, timeout=10
            ),
            "jobs": self.call("GET", "/jobs", params={"limit": 200}),
            "workers": sorted(w["id"] for w in self.call("GET", "/workers")["workers"]),
            "schedules": self.call("GET", "/schedules"),
            "users": self.call("GET", "/users"),
            "tokens": self.call("GET", "/tokens"),
            "namespaces": self.call("GET", "/namespaces"),
            "audit": len(self.call("GET", "/audit", params={"limit": 1000})),
        }


@dataclass(frozen=True)
class Op:
    """One operation of one surface: the right it needs and how to try it."""

    name: str
    action: Action
    namespace: str
    #: (target, creds) -> outcome: OK, UNAUTHENTICATED, DENIED (anything else fails the test).
    attempt: Callable[[str, Creds], str]
    #: Makes what the attempt acts on (a job, a worker...), as root; its id is the target.
    prepare: Callable[[Admin], str] = lambda admin: ""


# --- HTTP ------------------------------------------------------------------------------------


def http_outcome(reply: httpx.Response) -> str:
    if reply.status_code == 401:
        return UNAUTHENTICATED
    if reply.status_code == 403:
        return DENIED
    assert reply.is_success, (reply.request.url, reply.status_code, reply.text)
    return OK


def http_ops(base: str) -> list[Op]:
    def call(creds: Creds, method: str, path: str, **kwargs: Any) -> str:
        params = {"namespace": NS, **kwargs.pop("params", {})}
        with httpx.Client(base_url=base, timeout=10) as client:
            reply = client.request(
                method, f"/api/v1{path}", params=params, headers=creds.header(), **kwargs
            )
        return http_outcome(reply)

    def go(method: str, path: str, body: Any = None) -> Callable[[str, Creds], str]:
        # `{t}` in the path is the prepared target
        return lambda t, c: call(c, method, path.format(t=t), json=body)

    fetch = {"worker_id": "w", "queues": ["e"]}
    schedule = {"task": "t", "every_ms": 3_600_000}
    return [
        Op("get job", Action.READ, NS, go("GET", "/jobs/{t}"), Admin.job),
        Op("list jobs", Action.READ, NS, go("GET", "/jobs")),
        Op("enqueue", Action.ENQUEUE, NS, go("POST", "/jobs", {"task": "t"})),
        Op("cancel", Action.STEER_JOB, NS, go("POST", "/jobs/{t}/cancel"), Admin.job),
        Op("delete job", Action.DELETE_JOB, NS, go("DELETE", "/jobs/{t}"), Admin.job),
        Op("fetch", Action.WORK, NS, go("POST", "/pull/fetch", fetch)),
        Op("pause", Action.MANAGE_QUEUES, NS, go("POST", "/queues/q/pause")),
        Op("purge", Action.MANAGE_QUEUES, NS, go("POST", "/queues/p/purge")),
        Op("kick", Action.MANAGE_WORKERS, NS, go("POST", "/workers/{t}/kick"), Admin.worker),
        Op("create schedule", Action.MANAGE_SCHEDULES, NS, go("POST", "/schedules", schedule)),
        Op(
            "create namespace",
            Action.MANAGE_NAMESPACES,
            ALL_NAMESPACES,
            lambda t, c: call(c, "POST", "/namespaces", json={"name": unique("n")}),
        ),
        Op("list users", Action.MANAGE_USERS, ALL_NAMESPACES, go("GET", "/users")),
        Op("audit", Action.READ_AUDIT, NS, go("GET", "/audit")),
    ]


# --- gRPC ------------------------------------------------------------------------------------


def grpc_ops(channel: grpc.Channel) -> list[Op]:
    jobs = jobs_pb2_grpc.JobServiceStub(channel)
    queues = queues_pb2_grpc.QueueServiceStub(channel)
    workers = workers_pb2_grpc.WorkerServiceStub(channel)
    schedules = schedules_pb2_grpc.ScheduleServiceStub(channel)
    admin = admin_pb2_grpc.AdminServiceStub(channel)

    def call(creds: Creds, method: Any, request: Any) -> str:
        try:
            method(request, metadata=tuple(creds.header().items()), timeout=10)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.UNAUTHENTICATED:
                return UNAUTHENTICATED
            if error.code() is grpc.StatusCode.PERMISSION_DENIED:
                return DENIED
            raise
        return OK

    ns = NS

    def by_id(method: Any, request: Any) -> Callable[[str, Creds], str]:
        return lambda t, c: call(c, method, request(namespace=ns, id=t))

    def fixed(method: Any, request: Any) -> Callable[[str, Creds], str]:
        return lambda t, c: call(c, method, request)

    def kick(t: str, c: Creds) -> str:
        return call(c, workers.KickWorker, workers_pb2.KickWorkerRequest(namespace=ns, worker_id=t))

    def new_namespace(t: str, c: Creds) -> str:
        request = admin_pb2.CreateNamespaceRequest(name=unique("g"))
        return call(c, admin.CreateNamespace, request)

    enqueue = jobs_pb2.EnqueueRequest(namespace=ns, queue="q", task="t", payload=b"1")

    def enqueue_stream(t: str, c: Creds) -> str:
        # credentials are checked when the stream opens, the right per batch
        batch = jobs_pb2.EnqueueBatch(seq=1, jobs=[enqueue])
        request = jobs_pb2.EnqueueStreamRequest(batches=[batch])
        metadata = tuple(c.header().items())
        try:
            replies = list(jobs.EnqueueStream(iter([request]), metadata=metadata, timeout=10))
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.UNAUTHENTICATED:
                return UNAUTHENTICATED
            raise
        result = replies[0].results[0]
        if result.error.code == "permission_denied":
            return DENIED
        assert result.jobs and not result.HasField("error"), result
        return OK

    fetch = workers_pb2.FetchRequest(namespace=ns, queues=["e"], worker_id="w")
    schedule = schedules_pb2.ScheduleSpec(namespace=ns, task="t", every_ms=3_600_000)
    return [
        Op("GetJob", Action.READ, ns, by_id(jobs.GetJob, jobs_pb2.GetJobRequest), Admin.job),
        Op(
            "ListJobs",
            Action.READ,
            ns,
            fixed(jobs.ListJobs, jobs_pb2.ListJobsRequest(namespace=ns)),
        ),
        Op("Enqueue", Action.ENQUEUE, ns, fixed(jobs.Enqueue, enqueue)),
        Op("EnqueueStream", Action.ENQUEUE, ns, enqueue_stream),
        Op(
            "Cancel",
            Action.STEER_JOB,
            ns,
            by_id(jobs.CancelJob, jobs_pb2.CancelJobRequest),
            Admin.job,
        ),
        Op(
            "Delete",
            Action.DELETE_JOB,
            ns,
            by_id(jobs.DeleteJob, jobs_pb2.DeleteJobRequest),
            Admin.job,
        ),
        Op("Fetch", Action.WORK, ns, fixed(workers.Fetch, fetch)),
        Op(
            "Pause",
            Action.MANAGE_QUEUES,
            ns,
            fixed(queues.PauseQueue, queues_pb2.PauseQueueRequest(namespace=ns, queue="q")),
        ),
        Op(
            "Purge",
            Action.MANAGE_QUEUES,
            ns,
            fixed(queues.PurgeQueue, queues_pb2.PurgeQueueRequest(namespace=ns, queue="p")),
        ),
        Op("KickWorker", Action.MANAGE_WORKERS, ns, kick, Admin.worker),
        Op(
            "CreateSchedule", Action.MANAGE_SCHEDULES, ns, fixed(schedules.CreateSchedule, schedule)
        ),
        Op("CreateNamespace", Action.MANAGE_NAMESPACES, ALL_NAMESPACES, new_namespace),
        Op(
            "ListUsers",
            Action.MANAGE_USERS,
            ALL_NAMESPACES,
            fixed(admin.ListUsers, admin_pb2.ListUsersRequest()),
        ),
        Op(
            "ListAudit",
            Action.READ_AUDIT,
            ns,
            fixed(admin.ListAudit, admin_pb2.ListAuditRequest(namespace=ns)),
        ),
    ]


# --- TCP -------------------------------------------------------------------------------------


async def _tcp_session(address: str, creds: Creds, command: str) -> str:
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def call(line: str) -> str:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 10)).decode().rstrip("\n")

    try:
        if creds.user or creds.token:
            # A token is sent as the password (any user name), as Jobatator clients can.
            if (
                await call(f"AUTH {creds.user or 'bot'} {creds.token or creds.password}")
                != "Welcome!"
            ):
                return UNAUTHENTICATED
        reply = await call(f"USE_GROUP {NS}")
        if reply == "Err: not-logged":
            return UNAUTHENTICATED
        if reply == "Err: forbidden-group":
            return DENIED
        assert reply == "OK", reply
        reply = await call(command)
        if reply == "Err: forbidden":
            return DENIED
        assert not reply.startswith("Err:"), (command, reply)
        return OK
    finally:
        writer.close()


def tcp_ops(address: str) -> list[Op]:
    def call(creds: Creds, command: str) -> str:
        return asyncio.run(_tcp_session(address, creds, command))

    def line(template: str) -> Callable[[str, Creds], str]:
        return lambda t, c: call(c, template.format(t=t))

    return [
        Op("LIST_JOBS", Action.READ, NS, line("LIST_JOBS q")),
        Op("STATS", Action.READ, NS, line("STATS q")),
        Op("PUBLISH", Action.ENQUEUE, NS, line("PUBLISH q t {{}}")),
        Op("CANCEL_JOB", Action.STEER_JOB, NS, line("CANCEL_JOB {t}"), Admin.job),
        Op("DELETE_JOB", Action.DELETE_JOB, NS, line("DELETE_JOB {t}"), Admin.job),
        Op("SUBSCRIBE", Action.WORK, NS, line("SUBSCRIBE e")),
        Op("PURGE_JOBS", Action.MANAGE_QUEUES, NS, line("PURGE_JOBS {t}"), _purgeable),
        Op("PURGE_WORKERS", Action.MANAGE_WORKERS, NS, line("PURGE_WORKERS q")),
        Op("RECURRENT_JOB", Action.MANAGE_SCHEDULES, NS, line("RECURRENT_JOB q t '0 0 1 1 *'")),
    ]


def _purgeable(admin: Admin) -> str:
    admin.job("p")  # PURGE_JOBS names a queue that exists
    return "p"


# --- the dashboard ---------------------------------------------------------------------------


def dashboard_ops(base: str) -> list[Op]:
    """Pages (read), and the dashboard's own calls: the session cookie and its CSRF token."""

    def signed_in(client: httpx.Client, creds: Creds) -> bool:
        if not (creds.user or creds.token):
            return True  # no cookie at all
        body = (
            {"token": creds.token}
            if creds.token
            else {"name": creds.user, "password": creds.password}
        )
        reply = client.post("/login", json=body)
        assert reply.is_success or reply.status_code == 401, reply.text
        return reply.is_success

    def page(creds: Creds, path: str) -> str:
        with httpx.Client(base_url=base, timeout=10) as client:
            if not signed_in(client, creds):
                return UNAUTHENTICATED
            reply = client.get(path, params={"namespace": NS})
        return UNAUTHENTICATED if reply.status_code == 303 else http_outcome(reply)

    def action(creds: Creds, method: str, path: str, **kwargs: Any) -> str:
        with httpx.Client(base_url=base, timeout=10) as client:
            if not signed_in(client, creds):
                return UNAUTHENTICATED
            # the CSRF token is on every page the caller may see (of its own namespace)
            for namespace in (NS, OTHER_NS):
                shell = client.get("/", params={"namespace": namespace})
                if shell.status_code != 403:
                    break
            if shell.status_code == 303:
                return UNAUTHENTICATED
            assert shell.status_code == 200, shell.text
            csrf = shell.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            url, params = f"/api/v1{path}", {"namespace": NS}
            # without the page's CSRF token the cookie does nothing
            bare = client.request(method, url, params=params, **kwargs)
            assert bare.status_code == 403, bare.text
            reply = client.request(
                method, url, params=params, headers={"x-csrf-token": csrf}, **kwargs
            )
        return http_outcome(reply)

    def act(method: str, path: str, body: Any = None) -> Callable[[str, Creds], str]:
        return lambda t, c: action(c, method, path.format(t=t), json=body)

    return [
        Op("overview page", Action.READ, NS, lambda t, c: page(c, "/")),
        Op("jobs page", Action.READ, NS, lambda t, c: page(c, "/jobs")),
        Op("enqueue (cookie)", Action.ENQUEUE, NS, act("POST", "/jobs", {"task": "t"})),
        Op("cancel (cookie)", Action.STEER_JOB, NS, act("POST", "/jobs/{t}/cancel"), Admin.job),
        Op("pause (cookie)", Action.MANAGE_QUEUES, NS, act("POST", "/queues/q/pause")),
    ]
