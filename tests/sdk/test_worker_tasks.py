"""A worker takes only jobs of the tasks its app has: two apps (or two versions of one, in a
rolling deploy) share a namespace and its queues without failing each other's jobs.
"""

from __future__ import annotations

import uuid

import pytest

from shoal.core.validation import EnqueueRequest
from shoal.sdk import App, JobState, Worker


def _apps(url: str) -> tuple[App, App]:
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    billing, mail = (App(url, namespace=namespace, worker=None) for _ in range(2))

    @billing.task(name="billing.charge")
    def charge() -> str:
        return "charged"

    @mail.task(name="mail.send")
    def send() -> str:
        return "sent"

    return billing, mail


@pytest.mark.parametrize("transport", ["grpc", "native"])
async def test_a_worker_leaves_the_jobs_of_tasks_its_app_lacks_to_another_worker(
    server_urls: dict[str, str], transport: str
) -> None:
    # every worker claimed every task of its queues: mail.send reached the billing app's
    # worker, which failed it for good (UnknownTask) before the mail app's worker started
    billing, mail = _apps(server_urls[transport])
    async with billing, mail:
        async with Worker(billing, concurrency=2):
            send, charge = mail.find_task("mail.send"), billing.find_task("billing.charge")
            assert send is not None and charge is not None
            handle = await send.aenqueue()
            assert await (await charge.aenqueue()).aresult(timeout=10) == "charged"
            assert (await handle.arefresh()).state is JobState.QUEUED
            async with Worker(mail, concurrency=2):
                assert await handle.aresult(timeout=10) == "sent"


async def test_a_local_worker_leaves_the_jobs_of_tasks_its_app_lacks() -> None:
    app = App("memory://", worker=None)

    @app.task(name="known")
    def known() -> int:
        return 1

    async with app:
        service = app.transport.service  # type: ignore[attr-defined]  # the local transport
        other = await service.enqueue(EnqueueRequest("unknown.task"))
        mine = await known.aenqueue()
        await Worker(app, concurrency=1).run_until_idle(timeout=2)
        assert await mine.aresult(timeout=1) == 1
        assert (await service.get("default", other.job.id)).state is JobState.QUEUED


@pytest.mark.parametrize("transport", ["grpc", "native"])
async def test_a_task_whose_name_the_server_refuses_does_not_stop_the_worker(
    server_urls: dict[str, str], transport: str
) -> None:
    # the hello named every task, and the server refused the whole worker for one of them
    app = App(server_urls[transport], namespace=f"test-{uuid.uuid4().hex[:12]}", worker=None)

    @app.task(name="legacy task")
    def legacy() -> None:
        """Cannot be enqueued remotely (a space), but may be declared."""

    @app.task(name="fine")
    def fine() -> int:
        return 1

    async with app, Worker(app, concurrency=1):
        assert await (await fine.aenqueue()).aresult(timeout=10) == 1
