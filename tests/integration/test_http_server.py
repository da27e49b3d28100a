"""The HTTP surface as a server: SSE over a real uvicorn, /metrics, /healthz, the overview,
the token, the dashboard's pages and the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest

from shoal.core.access import AccessService
from shoal.core.auth import ANONYMOUS, Role
from shoal.core.identity import IdentityStore
from shoal.core.model import JobError, JobQuery, LeaseRef, WorkerInfo
from shoal.core.service import ClaimInput, QueueService
from shoal.core.validation import EnqueueRequest
from shoal.protocols.grpc import GrpcListener
from shoal.protocols.http import HttpSettings, create_app, serve_http
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


async def run_one(
    service: QueueService, *, fail: bool = False, namespace: str = "default", queue: str = "q"
) -> None:
    await service.enqueue(EnqueueRequest("t", namespace=namespace, queue=queue, max_attempts=1))
    [job] = await service.claim(ClaimInput("w", (queue,), namespace=namespace))
    lease = LeaseRef(job.id, job.lease_token or "")
    if fail:
        await service.fail(lease, JobError("E", "boom"))
    else:
        await service.complete(lease, b"1")


async def test_server_sent_events_over_a_real_server(service: QueueService) -> None:
    app = create_app(service, settings=HttpSettings(sse_keepalive=0.2))
    server = await serve_http(app, "127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            async with client.stream("GET", "/api/v1/events", params={"kind": "job."}) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                assert await anext(lines) == "retry: 2000"
                job = (await client.post("/api/v1/jobs", json={"task": "t"})).json()["job"]
                await client.post("/api/v1/queues/default/pause")  # filtered out: not a job.
                other = {"namespace": "other"}
                await client.post("/api/v1/jobs", params=other, json={"task": "t"})
                await client.post(f"/api/v1/jobs/{job['id']}/cancel")
                events = []
                async for line in lines:
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
                    if len(events) == 2:
                        break
        assert [e["kind"] for e in events] == ["job.enqueued", "job.cancelled"]
        assert events[0]["job_id"] == job["id"] and events[0]["namespace"] == "default"
    finally:
        await asyncio.wait_for(server.stop(), 10)


async def test_a_batched_stream_sums_events_up(service: QueueService) -> None:
    server = await serve_http(create_app(service), "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            params = {"batch": 0.1}
            async with client.stream("GET", "/api/v1/events", params=params) as stream:
                lines = stream.aiter_lines()
                await anext(lines)
                jobs = [{"task": "t"}] * 5
                await client.post("/api/v1/jobs/batch", json={"jobs": jobs})
                async for line in lines:
                    if line.startswith("data: "):
                        summary = json.loads(line[6:])
                        break
        assert summary == {"kind": "batch", "count": 5, "kinds": {"job.enqueued": 5}}
    finally:
        await server.stop()


async def test_stopping_the_server_ends_open_streams(service: QueueService) -> None:
    app = create_app(service)
    server = await serve_http(app, "127.0.0.1", 0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        async with client.stream("GET", "/api/v1/events") as stream:
            lines = stream.aiter_lines()
            await anext(lines)
            await asyncio.wait_for(server.stop(), 5)  # does not wait for the stream to end
            rest = [line async for line in lines]
    assert all(not line.startswith("data:") for line in rest)
    assert server.task.done()


async def test_a_fetch_whose_worker_left_gives_its_jobs_back(service: QueueService) -> None:
    server = await serve_http(create_app(service), "127.0.0.1", 0)
    requeued = service.events.subscribe(lambda event: event.kind == "job.requeued")
    try:
        base = f"http://127.0.0.1:{server.port}"
        body = {"worker_id": "w1", "queues": ["default"], "wait": 30}
        async with httpx.AsyncClient(base_url=base, timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/api/v1/pull/fetch", json=body)  # the worker gives up
        # The server shares this loop: let it read the closed connection before the wake-up
        # (a claim woken at once could otherwise run before the loop saw the disconnect).
        await asyncio.sleep(0.1)
        job = (await service.enqueue(EnqueueRequest("t"))).job  # wakes the abandoned fetch
        event = await requeued.next(5)
        assert event is not None and event.job_id == job.id
        back = await service.get("default", job.id)
        assert back.state.value == "queued" and back.attempt == 0
    finally:
        requeued.close()
        await server.stop()


async def test_job_events_are_kept_for_the_timeline(
    client: httpx.AsyncClient, service: QueueService
) -> None:
    await run_one(service)
    [job] = (await client.get("/api/v1/jobs")).json()["jobs"]
    events = (await client.get(f"/api/v1/jobs/{job['id']}/events")).json()["events"]
    assert [e["kind"] for e in events] == ["job.enqueued", "job.claimed", "job.succeeded"]
    assert events[1]["worker_id"] == "w" and events[1]["attempt"] == 1


async def test_metrics(client: httpx.AsyncClient, service: QueueService) -> None:
    await run_one(service)
    await run_one(service, fail=True)
    await client.post("/api/v1/jobs", json={"task": "t", "queue": "q"})
    await client.post("/api/v1/workers", json={"id": "w9", "queues": ["q"]})
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'shoal_jobs{namespace="default",queue="q",state="succeeded"} 1.0' in text
    assert 'shoal_jobs{namespace="default",queue="q",state="failed"} 1.0' in text
    assert 'shoal_queue_depth{namespace="default",queue="q"} 1.0' in text
    assert 'shoal_workers{namespace="default",state="idle"} 1.0' in text
    assert 'shoal_job_wait_seconds_count{namespace="default",queue="q"} 2.0' in text
    assert (
        'shoal_job_run_seconds_count{namespace="default",outcome="succeeded",queue="q"} 1.0' in text
    )
    assert 'shoal_events_total{kind="job.enqueued",namespace="default"} 3.0' in text


async def test_deleted_queues_and_namespaces_leave_the_metrics(
    client: httpx.AsyncClient, service: QueueService
) -> None:
    # names are the callers' own: a tenant per test run, a queue per batch...
    for number in range(10):
        await run_one(service, namespace=f"tenant{number}", queue=f"q{number}")
        await service.delete_queue(f"tenant{number}", f"q{number}")
    await run_one(service, namespace="mixed", queue="gone")
    await run_one(service, namespace="mixed", queue="kept", fail=True)
    await service.delete_queue("mixed", "gone")
    text = (await client.get("/metrics")).text
    assert "tenant" not in text and 'queue="gone"' not in text
    # what lives is shown as before
    assert 'shoal_jobs{namespace="mixed",queue="kept",state="failed"} 1.0' in text
    assert 'shoal_job_wait_seconds_count{namespace="mixed",queue="kept"} 1.0' in text
    assert 'shoal_events_total{kind="job.enqueued",namespace="mixed"} 2.0' in text
    namespaces = (await client.get("/api/v1/namespaces")).json()["namespaces"]
    assert namespaces == ["default", "mixed"]
    # a namespace deleted here, once it holds no queue (its jobs were deleted one by one)
    await run_one(service, namespace="solo")
    assert (await client.post("/api/v1/namespaces", json={"name": "solo"})).status_code == 201
    [job] = (await client.get("/api/v1/jobs", params={"namespace": "solo"})).json()["jobs"]
    await service.delete("solo", job["id"])
    assert "solo" in (await client.get("/metrics")).text  # it may still hold jobs
    assert (await client.delete("/api/v1/namespaces/solo")).status_code == 204
    assert "solo" not in (await client.get("/metrics")).text
    # a forgotten namespace comes back with its next event
    await run_one(service, namespace="tenant0", queue="q0")
    text = (await client.get("/metrics")).text
    assert 'shoal_jobs{namespace="tenant0",queue="q0",state="succeeded"} 1.0' in text
    assert 'shoal_events_total{kind="job.enqueued",namespace="tenant0"} 1.0' in text


async def test_a_namespace_deleted_by_an_embedded_grpc_listener_leaves_the_metrics(
    client: httpx.AsyncClient, service: QueueService
) -> None:
    # a listener given no AccessService makes its own: it tells the service's bus too
    listener = GrpcListener(service)
    await listener.access.create_namespace(ANONYMOUS, "solo")
    await run_one(service, namespace="solo")
    [job] = (await service.list_jobs(JobQuery(namespace="solo"))).jobs
    await service.delete("solo", job.id)
    assert "solo" in (await client.get("/metrics")).text

    async def no_jobs(namespace: str) -> int:
        return 0

    await listener.access.delete_namespace(ANONYMOUS, "solo", no_jobs)
    assert "solo" not in (await client.get("/metrics")).text


async def test_a_live_queue_keeps_its_metrics_when_a_sibling_queue_goes(
    client: httpx.AsyncClient, service: QueueService
) -> None:
    # its jobs done and deleted (TCP's job_timeout, retention), a live queue is listed nowhere
    # for an instant: deleting its sibling then dropped its histograms and counters
    await service.register_worker(WorkerInfo("w-kept", "grp", ("kept",), 0.0, 0.0))
    await run_one(service, namespace="grp", queue="gone")
    await run_one(service, namespace="grp", queue="kept")
    for job in (await service.list_jobs(JobQuery(namespace="grp", queue="kept"))).jobs:
        await service.delete("grp", job.id)
    await service.delete_queue("grp", "gone")
    text = (await client.get("/metrics")).text
    assert 'shoal_job_wait_seconds_count{namespace="grp",queue="kept"} 1.0' in text
    assert 'shoal_events_total{kind="job.succeeded",namespace="grp"} 2.0' in text
    assert 'queue="gone"' not in text


async def test_recording_can_be_turned_off(service: QueueService) -> None:
    app = create_app(service, settings=HttpSettings(record_events=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            await run_one(service)
            text = (await client.get("/metrics")).text
            assert 'shoal_jobs{namespace="default",queue="q",state="succeeded"} 1.0' in text
            assert "shoal_job_wait_seconds_count" not in text
            assert (await client.get("/api/v1/overview")).json()["points"] == []


async def test_overview(client: httpx.AsyncClient, service: QueueService) -> None:
    await run_one(service)
    await client.post("/api/v1/queues/q/pause")
    overview = (await client.get("/api/v1/overview")).json()
    assert overview["counts"]["succeeded"] == 1 and overview["total"] == 1
    assert [q["name"] for q in overview["queues"]] == ["q"] and overview["paused_queues"] == 1
    assert overview["queues"][0]["paused"] and overview["queues"][0]["counts"]["succeeded"] == 1
    [point] = overview["points"]
    assert (point["enqueued"], point["started"], point["succeeded"]) == (1, 1, 1)
    assert point["wait_avg"] is not None and point["run_avg"] is not None
    bad = await client.get("/api/v1/overview", params={"window": 0})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "window"


async def test_healthz(client: httpx.AsyncClient, service: QueueService) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    await service.store.close()
    response = await client.get("/healthz")
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"


async def test_unknown_routes_answer_with_the_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = await client.put("/api/v1/jobs")
    assert response.status_code == 405


async def test_the_token_guards_the_api_and_the_dashboard(service: QueueService) -> None:
    access = AccessService(cast(IdentityStore, service.store), enabled=True)
    _, secret = await access.create_token(ANONYMOUS, "ops", {"*": frozenset({Role.ADMIN})})
    app = create_app(service, settings=HttpSettings(), access=access)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            denied = await client.get("/api/v1/jobs")
            assert denied.status_code == 401
            assert denied.json()["error"]["code"] == "unauthenticated"
            assert denied.headers["www-authenticate"] == "Bearer"
            assert (await client.get("/metrics")).status_code == 401
            page = await client.get("/")
            assert page.status_code == 303 and page.headers["location"] == "/login"
            bearer = {"authorization": f"Bearer {secret}"}
            assert (await client.get("/api/v1/jobs", headers=bearer)).status_code == 200
            assert (await client.post("/login", json={"token": "wrong"})).status_code == 401
            signed_in = await client.post("/login", json={"token": secret})
            assert "samesite=strict" in signed_in.headers["set-cookie"].lower()
            assert secret not in signed_in.headers["set-cookie"]
            assert (await client.get("/api/v1/jobs")).status_code == 200  # the cookie
            assert (await client.get("/")).status_code == 200
            assert (await client.get("/healthz")).status_code == 200  # always open


@pytest.mark.parametrize("path", ["/", "/queues", "/jobs", "/jobs/some-id", "/workers", "/login"])
async def test_dashboard_pages_render(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, params={"namespace": "tenant-a"})
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assert '<script src="/static/app.js"></script>' in response.text
    if path != "/login":
        assert 'data-namespace="tenant-a"' in response.text
        assert '<option value="tenant-a" selected>' in response.text


async def test_static_files_are_served(client: httpx.AsyncClient) -> None:
    assert "EventSource" in (await client.get("/static/app.js")).text
    assert '[data-theme="dark"]' in (await client.get("/static/app.css")).text


async def test_the_openapi_document_is_published(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    enqueue = spec["paths"]["/api/v1/jobs"]["post"]
    assert set(enqueue["responses"]) >= {"201", "400", "404", "409", "422"}
    schema = enqueue["responses"]["422"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ErrorBody")
    assert "/" not in spec["paths"]  # the dashboard is not part of the API


async def test_a_namespace_deleted_over_http_leaves_with_an_access_service_of_its_own(
    service: QueueService,
) -> None:
    # docs/http-api.md builds the app with an AccessService made without the service's bus:
    # its `namespace.deleted` must still reach the recorder
    access = AccessService(cast(IdentityStore, service.store), enabled=False)
    app = create_app(service, access=access)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal") as client:
            await run_one(service, namespace="solo")
            assert (await client.post("/api/v1/namespaces", json={"name": "solo"})).is_success
            [job] = (await client.get("/api/v1/jobs", params={"namespace": "solo"})).json()["jobs"]
            await service.delete("solo", job["id"])
            assert (await client.delete("/api/v1/namespaces/solo")).status_code == 204
            names = (await client.get("/api/v1/namespaces")).json()["namespaces"]
            assert names == ["default"]
