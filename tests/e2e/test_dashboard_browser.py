"""The dashboard in Debian's Chromium, driven by Playwright, over a real uvicorn server on a
memory service: live updates, cancel, pause, kick; screenshots in artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from shoal.core.model import JobError, JobQuery, JobState, LeaseRef, WorkerInfo
from shoal.core.schedules import ScheduleInput
from shoal.core.service import ClaimInput, QueueService
from shoal.core.validation import EnqueueRequest
from shoal.protocols.http import HttpServer, create_app, serve_http
from shoal.scheduler import SchedulerApi, ScheduleService
from shoal.stores.memory import MemoryStore

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def service() -> QueueService:
    return QueueService(MemoryStore())


@pytest.fixture
async def server(service: QueueService) -> AsyncIterator[HttpServer]:
    app = create_app(service, schedules=SchedulerApi(ScheduleService(service)))
    running = await serve_http(app, "127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Browser, server: HttpServer) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=f"http://127.0.0.1:{server.port}",
        viewport={"width": 1360, "height": 860},
        color_scheme="light",
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        yield page
    finally:
        await context.close()
    assert errors == [], errors  # no JavaScript error on any page


def server_url(page: Page) -> str:
    """The page's origin: http://127.0.0.1:PORT."""
    return "/".join(page.url.split("/", 3)[:3])


async def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def live(page: Page) -> None:
    """Wait until the page's event stream is open, so no update can be missed."""
    await expect(page.locator("#live.on")).to_be_visible()


async def run_jobs(service: QueueService, count: int, fail_every: int = 0) -> None:
    for i in range(count):
        await service.enqueue(
            EnqueueRequest("report.build", queue="reports", payload=b'{"n":%d}' % i, max_attempts=1)
        )
        [job] = await service.claim(ClaimInput("worker-a", ("reports",)))
        lease = LeaseRef(job.id, job.lease_token or "")
        if fail_every and i % fail_every == 0:
            error = JobError("ValueError", f"bad input {i}", "Traceback (most recent call last):\n")
            await service.fail(lease, error)
        else:
            await service.complete(lease, b'{"rows":%d}' % (i * 10))


async def test_a_job_appears_live_and_is_cancelled_from_its_page(
    page: Page, service: QueueService
) -> None:
    await page.goto("/jobs")
    await expect(page.locator("#jobs-table")).to_contain_text("No jobs match.")
    await live(page)
    enqueued = await service.enqueue(
        EnqueueRequest("mail.send", queue="mail", payload=b'{"to":"ann@example.com"}', delay=3600)
    )
    job_id = enqueued.job.id
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    await expect(row).to_be_visible()  # no reload: the event stream brought it
    await expect(row).to_contain_text("scheduled")
    await shoot(page, "jobs-light")
    await row.get_by_role("link").click()
    await expect(page.locator("#job-state")).to_have_text("scheduled")
    await expect(page.locator("#job-payload")).to_contain_text("ann@example.com")
    await live(page)
    await shoot(page, "job-detail-light")
    await page.locator("#job-cancel").click()
    await expect(page.locator("#job-state")).to_have_text("cancelled")
    assert (await service.get("default", job_id)).state is JobState.CANCELLED
    await expect(page.locator("#job-retry")).to_be_enabled()
    await expect(page.locator("#job-timeline")).to_contain_text("cancelled")
    await page.locator("#job-retry").click()
    await expect(page.locator("#job-state")).to_have_text("queued")
    await page.locator("#job-delete").click()  # confirmed by the dialog handler
    await expect(page).to_have_url(f"{server_url(page)}/jobs?namespace=default")
    await expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_have_count(0)
    assert (await service.list_jobs(JobQuery())).jobs == ()


async def test_the_namespace_switcher(page: Page, service: QueueService) -> None:
    await service.enqueue(EnqueueRequest("t", namespace="tenant-a", queue="imports"))
    await page.goto("/queues")
    await expect(page.locator("#queues-table")).to_contain_text("No queues yet")
    await page.locator("#namespace-switcher").select_option("tenant-a")
    await expect(page).to_have_url(f"{server_url(page)}/queues?namespace=tenant-a")
    await expect(page.locator('tr[data-queue="imports"]')).to_be_visible()
    await page.get_by_role("link", name="Jobs").click()
    await expect(page.locator("#jobs-table")).to_contain_text("imports")
    await page.locator("#theme-toggle").click()
    await shoot(page, "jobs-tenant-dark")


async def test_pause_a_queue(page: Page, service: QueueService) -> None:
    for queue in ("mail", "reports", "thumbnails"):
        await service.enqueue(EnqueueRequest("t", queue=queue))
    await page.goto("/queues")
    row = page.locator('tr[data-queue="mail"]')
    await expect(row).to_contain_text("active")
    await row.get_by_role("button", name="Pause").click()
    await expect(row).to_contain_text("paused")
    await expect(row.get_by_role("button", name="Resume")).to_be_visible()
    [mail] = [q for q in await service.list_queues("default") if q.name == "mail"]
    assert mail.paused
    await page.locator('tr[data-queue="reports"] a').click()
    await expect(page.locator("#tasks-table")).to_contain_text("t")
    await shoot(page, "queues-light")
    await page.locator("#theme-toggle").click()
    await shoot(page, "queues-dark")


async def test_kick_a_worker(page: Page, service: QueueService) -> None:
    now = service.clock.now()
    for worker_id in ("py-worker-1", "py-worker-2"):
        await service.register_worker(
            WorkerInfo(worker_id, "default", ("mail",), now, now, concurrency=4, host="box")
        )
    enqueued = await service.enqueue(EnqueueRequest("mail.send", queue="mail"))
    await service.claim(ClaimInput("py-worker-1", ("mail",)))
    await page.goto("/workers")
    row = page.locator('tr[data-worker="py-worker-1"]')
    await expect(row).to_contain_text("1/4")
    await shoot(page, "workers-light")
    await page.locator("#theme-toggle").click()
    await shoot(page, "workers-dark")
    await row.get_by_role("button", name="Kick").click()
    await expect(row).to_have_count(0)
    await expect(page.locator('tr[data-worker="py-worker-2"]')).to_be_visible()
    assert [w.id for w in await service.list_workers("default")] == ["py-worker-2"]
    assert (await service.get("default", enqueued.job.id)).state is JobState.QUEUED


async def test_overview_in_both_themes(page: Page, service: QueueService) -> None:
    await run_jobs(service, 30, fail_every=7)
    await service.enqueue(EnqueueRequest("mail.send", queue="mail", delay=60))
    await page.goto("/")
    await expect(page.locator('[data-count="succeeded"]')).to_have_text("25")
    await expect(page.locator('[data-count="failed"]')).to_have_text("5")
    await expect(page.locator("#chart-throughput path")).to_have_count(3)
    await shoot(page, "overview-light")
    await page.locator("#theme-toggle").click()
    assert await page.evaluate("document.documentElement.dataset.theme") == "dark"
    await shoot(page, "overview-dark")
    await page.goto("/jobs?state=failed")
    await page.locator("#jobs-table a").first.click()
    await expect(page.locator("#job-error")).to_contain_text("ValueError")
    await shoot(page, "job-failed-dark")  # the theme is remembered across pages
    assert await page.evaluate("document.documentElement.dataset.theme") == "dark"


async def test_names_and_payloads_are_shown_as_text_never_run(
    page: Page, service: QueueService
) -> None:
    hostile = "<img/src=x/onerror=window.pwned=1>"
    enqueued = await service.enqueue(
        EnqueueRequest(hostile, queue="q<b>", payload=b'{"html":"<script>window.pwned=2</script>"}')
    )
    for path in ("/jobs", f"/jobs/{enqueued.job.id}", "/queues", "/"):
        await page.goto(path)
        await expect(page.locator("main")).to_contain_text("q<b>")
        assert await page.evaluate("window.pwned") is None
    await expect(page.locator("#job-task")).to_have_count(0)  # on the overview now
    await page.goto(f"/jobs/{enqueued.job.id}")
    await expect(page.locator("#job-task")).to_have_text(hostile)
    await expect(page.locator("#job-payload")).to_contain_text("<script>")


async def test_schedules_page_pauses_and_triggers(page: Page, service: QueueService) -> None:
    schedules = SchedulerApi(ScheduleService(service))
    await schedules.add(ScheduleInput("report", id="nightly", cron="0 3 * * *", timezone="UTC"))
    await schedules.add(ScheduleInput("ping", id="heartbeat", every_ms=250, queue="fast"))
    await page.goto("/schedules")
    row = page.locator('tr[data-schedule="heartbeat"]')
    await expect(row).to_contain_text("every 250 ms")
    await expect(page.locator('tr[data-schedule="nightly"]')).to_contain_text("cron 0 3 * * *")
    await shoot(page, "schedules")
    await row.get_by_role("button", name="Pause").click()
    await expect(row).to_contain_text("paused")
    assert (await schedules.get("default", "heartbeat")).paused
    await row.get_by_role("button", name="Trigger").click()
    await expect(row.locator("a.mono")).to_be_visible()
    jobs = await service.list_jobs(JobQuery(queue="fast"))
    assert [job.schedule_id for job in jobs.jobs] == ["heartbeat"]
