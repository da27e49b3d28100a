"""Queues, workers, pull-worker routes and namespaces of the HTTP API."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from shoal.core.model import WorkerInfo
from shoal.core.service import ClaimInput, QueueService
from shoal.core.validation import EnqueueRequest
from shoal.protocols.http import HttpSettings, create_app
from shoal.protocols.http._counts import QueueCounts
from shoal.stores.memory import MemoryStore


@pytest.fixture
def service() -> QueueService:
    return QueueService(MemoryStore())


@pytest.fixture
async def client(service: QueueService) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            yield client


def error_of(response: httpx.Response) -> tuple[int, str, str | None]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["field"]


async def put(client: httpx.AsyncClient, queue: str = "default", task: str = "t") -> str:
    response = await client.post("/api/v1/jobs", json={"task": task, "queue": queue})
    assert response.status_code == 201
    return str(response.json()["job"]["id"])


async def fetch(client: httpx.AsyncClient, **body: object) -> list[dict]:  # type: ignore[type-arg]
    response = await client.post(
        "/api/v1/pull/fetch", json={"worker_id": "w1", "queues": ["default"], **body}
    )
    assert response.status_code == 200, response.text
    return response.json()["jobs"]  # type: ignore[no-any-return]


async def test_queues_list_stats_pause_resume(client: httpx.AsyncClient) -> None:
    await put(client, "mail", "send")
    await put(client, "mail", "bounce")
    await put(client, "web", "crawl")
    queues = (await client.get("/api/v1/queues")).json()["queues"]
    assert [(q["name"], q["total"], q["counts"]["queued"]) for q in queues] == [
        ("mail", 2, 2),
        ("web", 1, 1),
    ]
    stats = (await client.get("/api/v1/queues/mail/stats")).json()
    assert stats["total"] == 2 and set(stats["by_task"]) == {"send", "bounce"}
    assert stats["by_task"]["send"]["queued"] == 1
    assert (await client.get("/api/v1/stats")).json()["by_state"]["queued"] == 3
    paused = await client.post("/api/v1/queues/mail/pause")
    assert paused.json() == {"queue": "mail", "paused": True}
    assert await fetch(client, queues=["mail"]) == []
    listed = {q["name"]: q["paused"] for q in (await client.get("/api/v1/queues")).json()["queues"]}
    assert listed == {"mail": True, "web": False}
    assert (await client.post("/api/v1/queues/mail/resume")).json()["paused"] is False
    assert len(await fetch(client, queues=["mail"])) == 1


async def test_purge_and_delete_a_queue(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await put(client, "q")
    assert len(await fetch(client, queues=["q"])) == 1
    assert (await client.post("/api/v1/queues/q/purge")).json() == {"deleted": 2}
    assert error_of(await client.delete("/api/v1/queues/q"))[:2] == (409, "conflict")
    await put(client, "other")
    assert (await client.delete("/api/v1/queues/other")).json() == {"deleted": 1}


async def test_bad_queue_names_are_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/queues/a%20b/pause")
    assert error_of(response) == (422, "invalid_argument", "queue")
    response = await client.get("/api/v1/queues", params={"namespace": "x y"})
    assert error_of(response) == (422, "invalid_argument", "namespace")
    for verb in ("pause", "resume", "purge"):
        response = await client.post(f"/api/v1/queues/q/{verb}", params={"namespace": "x\ty"})
        assert error_of(response) == (422, "invalid_argument", "namespace")
    response = await client.delete("/api/v1/queues/q", params={"namespace": "x\ty"})
    assert error_of(response) == (422, "invalid_argument", "namespace")


async def test_workers_register_list_drain_kick(
    client: httpx.AsyncClient, service: QueueService
) -> None:
    created = await client.post(
        "/api/v1/workers", json={"id": "w1", "queues": ["default"], "concurrency": 4, "host": "h"}
    )
    assert created.status_code == 201 and created.json()["language"] == "http"
    await service.register_worker(
        WorkerInfo("py-1", "other", ("default",), connected_at=0.0, last_heartbeat=0.0)
    )
    job_id = await put(client)
    await fetch(client)
    workers = (await client.get("/api/v1/workers")).json()["workers"]
    assert [(w["id"], w["running"], w["concurrency"]) for w in workers] == [("w1", 1, 4)]
    everyone = (await client.get("/api/v1/workers", params={"all": "true"})).json()["workers"]
    assert {w["id"] for w in everyone} == {"w1", "py-1"}
    assert everyone[0]["heartbeat_age"] >= 0
    drained = await client.post("/api/v1/workers/w1/drain")
    assert drained.json()["state"] == "draining"
    kicked = await client.post("/api/v1/workers/w1/kick")
    assert kicked.json() == {"released": [job_id]}
    assert (await client.get(f"/api/v1/jobs/{job_id}")).json()["state"] == "queued"
    assert (await client.get("/api/v1/workers")).json()["workers"] == []
    for method, path in [("POST", "/api/v1/workers/w1/kick"), ("POST", "/api/v1/workers/w1/drain"),
                         ("DELETE", "/api/v1/workers/w1")]:  # fmt: skip
        assert error_of(await client.request(method, path))[:2] == (404, "not_found")
    assert error_of(await client.post("/api/v1/workers", json={"id": "w", "queues": []}))[2] == (
        "queues"
    )


async def test_a_drained_pull_worker_is_told_and_gets_no_more_jobs(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/v1/workers", json={"id": "w1", "queues": ["default"]})
    job_id = await put(client)
    [job] = await fetch(client)
    await put(client)
    await client.post("/api/v1/workers/w1/drain")
    answer = await client.post(
        "/api/v1/pull/fetch", json={"worker_id": "w1", "queues": ["default"], "wait": 5}
    )
    assert answer.json() == {"jobs": [], "drain": True}
    lease = {"job_id": job_id, "lease_token": job["lease_token"]}
    beat = await client.post("/api/v1/pull/heartbeat", json={"worker_id": "w1", "leases": [lease]})
    assert beat.json()["drain"] is True and beat.json()["renewed"] == [job_id]
    assert len(await fetch(client, worker_id="w2")) == 1  # others still work


async def test_a_pull_worker_leaves(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/workers", json={"id": "w1", "queues": ["default"]})
    job_id = await put(client)
    await fetch(client)
    assert (await client.delete("/api/v1/workers/w1")).json() == {"released": [job_id]}


async def test_a_pull_worker_cannot_take_another_namespaces_worker_id(
    client: httpx.AsyncClient, service: QueueService
) -> None:
    await service.register_worker(WorkerInfo("theirs", "other", ("default",), 0.0, 0.0))
    await service.enqueue(EnqueueRequest("t", namespace="other"))
    [job] = await service.claim(ClaimInput("theirs", ("default",), namespace="other"))
    taken = await client.post("/api/v1/workers", json={"id": "theirs", "queues": ["default"]})
    assert error_of(taken)[:2] == (409, "conflict")
    assert error_of(await client.delete("/api/v1/workers/theirs"))[:2] == (404, "not_found")
    [still] = await service.list_workers("other")
    assert still.id == "theirs" and still.running == 1
    stored = await service.get("other", job.id)
    assert stored.state.value == "running" and stored.worker_id == "theirs"


async def test_fetch_heartbeat_complete(client: httpx.AsyncClient) -> None:
    job_id = await put(client)
    [job] = await fetch(client, limit=5)
    assert job["id"] == job_id and job["state"] == "running" and job["lease_token"]
    token = job["lease_token"]
    beat = await client.post(
        "/api/v1/pull/heartbeat",
        json={"worker_id": "w1", "leases": [{"job_id": job_id, "lease_token": token},
                                            {"job_id": job_id, "lease_token": "stale"}]},
    )  # fmt: skip
    assert beat.json()["renewed"] == [job_id]
    progress = {"lease_token": token, "progress": 0.5}
    assert (await client.post(f"/api/v1/jobs/{job_id}/progress", json=progress)).status_code == 204
    stale = await client.post(f"/api/v1/jobs/{job_id}/complete", json={"lease_token": "stale"})
    assert error_of(stale)[:2] == (409, "lease_lost")
    done = await client.post(
        f"/api/v1/jobs/{job_id}/complete", json={"lease_token": token, "result": [1, 2]}
    )
    assert done.json()["state"] == "succeeded" and done.json()["result"] == [1, 2]
    again = await client.post(f"/api/v1/jobs/{job_id}/complete", json={"lease_token": token})
    assert error_of(again)[:2] == (409, "lease_lost")


async def test_complete_with_bytes(client: httpx.AsyncClient) -> None:
    await put(client)
    [job] = await fetch(client)
    data = base64.b64encode(b"\x01\x02").decode()
    done = await client.post(
        f"/api/v1/jobs/{job['id']}/complete",
        json={"lease_token": job["lease_token"], "result_base64": data},
    )
    assert done.json()["result_base64"] == data


async def test_fail_retries_then_fails(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/jobs", json={"task": "t", "max_attempts": 2})
    [job] = await fetch(client)
    error = {"type": "ValueError", "message": "boom", "traceback": "Traceback ..."}
    body = {"lease_token": job["lease_token"], "error": error, "retry_delay": 0}
    retrying = (await client.post(f"/api/v1/jobs/{job['id']}/fail", json=body)).json()
    assert retrying["state"] == "scheduled" and retrying["error"]["message"] == "boom"
    [again] = await fetch(client)
    body = {"lease_token": again["lease_token"], "error": error | {"retryable": False}}
    failed = (await client.post(f"/api/v1/jobs/{job['id']}/fail", json=body)).json()
    assert failed["state"] == "failed" and failed["error"]["traceback"] == "Traceback ..."
    missing = await client.post(f"/api/v1/jobs/{job['id']}/fail", json={"lease_token": "x"})
    assert error_of(missing) == (422, "invalid_argument", "error")


async def test_release_gives_a_job_back(client: httpx.AsyncClient) -> None:
    await put(client)
    [job] = await fetch(client)
    released = await client.post(
        f"/api/v1/jobs/{job['id']}/release", json={"lease_token": job["lease_token"]}
    )
    assert [j["state"] for j in released.json()["jobs"]] == ["queued"]
    assert released.json()["jobs"][0]["attempt"] == 0


async def test_fetch_long_polls_for_a_job(client: httpx.AsyncClient) -> None:
    waiting = asyncio.create_task(fetch(client, wait=10))
    await asyncio.sleep(0.02)
    assert not waiting.done()
    job_id = await put(client)
    [job] = await asyncio.wait_for(waiting, 5)
    assert job["id"] == job_id
    assert await fetch(client, wait=0.05) == []


async def test_an_empty_task_list_fetches_any_task(client: httpx.AsyncClient) -> None:
    # `tasks: []` is what a worker registered without tasks holds (RegisterIn's default), and
    # gRPC's Fetch reads an empty list as "any task"; HTTP read it as "no task" and gave nothing.
    mail = await put(client, task="mail")
    [job] = await fetch(client, tasks=[])
    assert job["id"] == mail
    web = await put(client, task="web")
    assert await fetch(client, tasks=["mail"]) == []
    [job] = await fetch(client, tasks=["web"])
    assert job["id"] == web


@pytest.mark.parametrize(
    ("body", "field"),
    [({"queues": []}, "queues"), ({"worker_id": ""}, "worker_id"), ({"limit": 0}, "limit"),
     ({"wait": -1}, "wait"), ({"queues": ["a b"]}, "queues")],
)  # fmt: skip
async def test_bad_fetches_name_their_field(
    client: httpx.AsyncClient,
    body: dict,
    field: str,  # type: ignore[type-arg]
) -> None:
    response = await client.post(
        "/api/v1/pull/fetch", json={"worker_id": "w1", "queues": ["default"], **body}
    )
    status, code, named = error_of(response)
    assert (status, code) == (422, "invalid_argument") and named.split(".")[0] == field  # type: ignore[union-attr]


async def test_namespaces_are_listed(client: httpx.AsyncClient, service: QueueService) -> None:
    await client.post("/api/v1/jobs", params={"namespace": "tenant-a"}, json={"task": "t"})
    await service.register_worker(
        WorkerInfo("w", "tenant-b", ("q",), connected_at=0.0, last_heartbeat=0.0)
    )
    names = (await client.get("/api/v1/namespaces")).json()["namespaces"]
    assert names == ["default", "tenant-a", "tenant-b"]
    jobs = await client.get("/api/v1/jobs", params={"namespace": "tenant-a"})
    assert len(jobs.json()["jobs"]) == 1
    assert await service.claim(ClaimInput("x", ("default",), namespace="tenant-a"))


async def test_queue_counts_are_shared_briefly_and_dropped_by_queue_actions(
    service: QueueService,
) -> None:
    app = create_app(service, settings=HttpSettings(counts_ttl=3600))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            await put(client, "a")
            names = await asyncio.gather(*[client.get("/api/v1/queues") for _ in range(5)])
            assert {len(r.json()["queues"]) for r in names} == {1}
            await put(client, "b")
            stale = (await client.get("/api/v1/queues")).json()["queues"]
            assert [q["name"] for q in stale] == ["a"]  # within the TTL: the shared count
            await client.post("/api/v1/queues/a/pause")
            fresh = (await client.get("/api/v1/queues")).json()["queues"]
            assert [(q["name"], q["paused"]) for q in fresh] == [("a", True), ("b", False)]
            overview = (await client.get("/api/v1/overview")).json()
            assert overview["total"] == 2


async def test_counts_of_namespaces_without_queues_are_not_kept(service: QueueService) -> None:
    counts = QueueCounts(service, ttl=3600)
    for number in range(10):  # any caller may name a namespace (?namespace=)
        assert await counts.get(f"nobody{number}") == []
    await service.enqueue(EnqueueRequest("t", namespace="some"))
    assert len(await counts.get("some")) == 1
    assert list(counts._entries) == ["some"]
