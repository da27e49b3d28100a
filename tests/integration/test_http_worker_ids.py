"""Worker ids over HTTP, where a pull worker chooses its own: the same id in two namespaces
names two workers, a heartbeat refreshes a record only where its caller works, the ids the
server gives live streams and TCP connections are not a pull worker's to take or to leave,
and a heartbeat never cuts a lease fetched for longer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from typing import cast

import httpx
import pytest

from shoal.core.access import AccessService
from shoal.core.auth import Role, hash_password
from shoal.core.clock import ManualClock
from shoal.core.identity import IdentityStore, NamespaceInfo
from shoal.core.ids import new_connection_worker_id
from shoal.core.model import JobState, WorkerInfo
from shoal.core.service import ClaimInput, QueueService
from shoal.core.validation import EnqueueRequest
from shoal.protocols.http import create_app
from shoal.protocols.http._auth import basic_header
from shoal.stores.memory import MemoryStore

_PASSWORD = "a-long-enough-password"
_USERS = {
    "worker1": {"ns1": Role.WORKER},
    "viewer1": {"ns1": Role.VIEWER},
    "admin1": {"ns1": Role.ADMIN},
    "worker2": {"ns2": Role.WORKER},
}


@cache
def _hashed() -> str:
    return hash_password(_PASSWORD)


@dataclass
class Setup:
    service: QueueService
    clock: ManualClock
    client: httpx.AsyncClient

    async def call(
        self, user: str, method: str, path: str, namespace: str, json: object = None
    ) -> httpx.Response:
        return await self.client.request(
            method,
            f"/api/v1{path}",
            params={"namespace": namespace},
            json=json,
            headers=dict(basic_header(user, _PASSWORD)),
        )

    async def fetch(self, user: str, namespace: str, worker_id: str, **body: object) -> dict:  # type: ignore[type-arg]
        answer = await self.call(
            user,
            "POST",
            "/pull/fetch",
            namespace,
            {"worker_id": worker_id, "queues": ["q"], **body},
        )
        assert answer.status_code == 200, answer.text
        [job] = answer.json()["jobs"]
        return job  # type: ignore[no-any-return]


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    clock = ManualClock()
    store = MemoryStore()
    service = QueueService(store, clock=clock)
    access = AccessService(cast(IdentityStore, store), enabled=True, clock=clock)
    for namespace in ("ns1", "ns2"):
        await store.create_namespace(NamespaceInfo(namespace, 0.0))
        for _ in range(2):
            await service.enqueue(EnqueueRequest("t", namespace=namespace, queue="q"))
    for name, grants in _USERS.items():
        roles = {ns: frozenset({role}) for ns, role in grants.items()}
        await access.declare_user(name, _hashed(), roles)
    app = create_app(service, access=access)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            yield Setup(service, clock, client)


async def test_a_leave_ends_the_leases_of_its_own_namespace_only(setup: Setup) -> None:
    registered = await setup.call(
        "worker2", "POST", "/workers", "ns2", {"id": "w1", "queues": ["q"]}
    )
    assert registered.status_code == 201
    theirs = await setup.fetch("worker2", "ns2", "w1")
    # ns1's worker took the same id without registering (registering is optional)
    mine = await setup.fetch("worker1", "ns1", "w1")

    left = await setup.call("worker2", "DELETE", "/workers/w1", "ns2")
    assert left.json() == {"released": [theirs["id"]]}  # it released ns1's job too

    assert (await setup.service.get("ns1", mine["id"])).state is JobState.RUNNING
    done = await setup.call(
        "worker1",
        "POST",
        f"/jobs/{mine['id']}/complete",
        "ns1",
        {"lease_token": mine["lease_token"]},
    )
    assert done.status_code == 200 and done.json()["state"] == "succeeded"


async def test_a_heartbeat_refreshes_a_worker_only_where_its_caller_works(setup: Setup) -> None:
    await setup.service.register_worker(WorkerInfo("w-ns2", "ns2", ("q",), 0.0, 0.0))
    setup.clock.advance(100)
    beat = {"worker_id": "w-ns2", "leases": []}
    # a viewer of ns1 kept ns2's worker alive: no right was checked without leases
    ignored = await setup.call("viewer1", "POST", "/pull/heartbeat", "ns2", beat)
    assert ignored.status_code == 200
    elsewhere = await setup.call("worker1", "POST", "/pull/heartbeat", "ns1", beat)
    assert elsewhere.status_code == 200  # w-ns2 is not a worker of ns1: nothing to refresh
    [record] = await setup.service.list_workers("ns2")
    assert record.last_heartbeat == 0.0
    assert (await setup.call("worker2", "POST", "/pull/heartbeat", "ns2", beat)).status_code == 200
    [record] = await setup.service.list_workers("ns2")
    assert record.last_heartbeat == setup.clock.now()


async def test_a_live_workers_id_is_not_a_pull_workers_to_take_or_to_leave(
    setup: Setup,
) -> None:
    live = new_connection_worker_id()  # a TCP connection's, listed to anyone who may read
    await setup.service.register_worker(WorkerInfo(live, "ns1", ("q",), 0.0, 0.0))
    [job] = await setup.service.claim(ClaimInput(live, ("q",), "ns1"))

    # a worker-role user's "leave" of it released its jobs: a kick without manage_workers
    refused = await setup.call("worker1", "DELETE", f"/workers/{live}", "ns1")
    assert refused.status_code == 403
    assert (await setup.service.get("ns1", job.id)).state is JobState.RUNNING
    for path, body in [
        ("/workers", {"id": live, "queues": ["q"]}),
        ("/pull/fetch", {"worker_id": live, "queues": ["q"]}),
    ]:
        taken = await setup.call("worker1", "POST", path, "ns1", body)
        assert taken.status_code == 422, taken.text
    kicked = await setup.call("admin1", "DELETE", f"/workers/{live}", "ns1")
    assert kicked.json() == {"released": [job.id]}


async def test_a_heartbeat_never_cuts_a_lease_fetched_for_longer(setup: Setup) -> None:
    job = await setup.fetch("worker1", "ns1", "w1", lease_ttl=300)
    fetched_at = setup.clock.now()
    lease = {"job_id": job["id"], "lease_token": job["lease_token"]}
    setup.clock.advance(10)
    beat = await setup.call("worker1", "POST", "/pull/heartbeat", "ns1", {"leases": [lease]})
    assert beat.json()["renewed"] == [job["id"]]
    stored = await setup.service.get("ns1", job["id"])
    assert stored.lease_expires_at == fetched_at + 300  # cut to 15 s from now before
    longer = {"leases": [lease], "lease_ttl": 600}
    await setup.call("worker1", "POST", "/pull/heartbeat", "ns1", longer)
    stored = await setup.service.get("ns1", job["id"])
    assert stored.lease_expires_at == setup.clock.now() + 600


async def test_a_drain_is_for_the_worker_of_its_namespace_only(setup: Setup) -> None:
    for user, namespace in (("worker1", "ns1"), ("worker2", "ns2")):
        body = {"id": "w1", "queues": ["q"]}
        if namespace == "ns2":
            # records are keyed by id alone: ns2 may not register ns1's w1, but may fetch as w1
            taken = await setup.call(user, "POST", "/workers", namespace, body)
            assert taken.status_code == 409
        else:
            assert (await setup.call(user, "POST", "/workers", namespace, body)).status_code == 201
    assert (await setup.call("admin1", "POST", "/workers/w1/drain", "ns1")).status_code == 200
    told = await setup.call(
        "worker1", "POST", "/pull/fetch", "ns1", {"worker_id": "w1", "queues": ["q"]}
    )
    assert told.json() == {"jobs": [], "drain": True}
    # ns2's w1 was told to drain too
    job = await setup.fetch("worker2", "ns2", "w1")
    assert job["namespace"] == "ns2"
