"""The tasks `shoal demo` runs: inside the package, so the demo works from an installed wheel.

They sleep rather than compute, so the demo shows concurrency on a small machine.
"""

from __future__ import annotations

import asyncio
import random
import time

from shoal.sdk import NonRetryable, TaskRegistry, current_job

tasks = TaskRegistry()


@tasks.task(name="demo.resize_image", queue="media", timeout=30)
async def resize_image(name: str, width: int) -> dict[str, object]:
    """Succeeds after a short while, reporting progress on the way."""
    job = current_job()
    steps = 5
    for step in range(steps):
        await asyncio.sleep(random.uniform(0.04, 0.12))
        job.progress((step + 1) / steps)
    return {"name": name, "width": width, "height": width * 3 // 4}


@tasks.task(name="demo.charge_card", queue="payments", retries=3, backoff=0.3)
def charge_card(order: int, failures: int) -> str:
    """Fails its first `failures` attempts, as a flaky payment gateway would, then succeeds."""
    if current_job().attempt <= failures:
        raise ConnectionError(f"payment gateway timed out (attempt {current_job().attempt})")
    time.sleep(0.05)
    return f"order {order} charged"


@tasks.task(name="demo.ship_order", queue="payments", retries=1, backoff=0.2)
def ship_order(order: int) -> str:
    """Always fails: its attempts run out and it ends `failed` (the dead-letter view)."""
    raise LookupError(f"order {order} has no shipping address")


@tasks.task(name="demo.validate_order", queue="payments")
def validate_order(order: int) -> str:
    """Fails at once without retrying: bad input does not get better."""
    raise NonRetryable(f"order {order}: quantity must be positive")


@tasks.task(name="demo.build_report", queue="reports", timeout=600)
def build_report(rows: int) -> int:
    """A long job that reports progress and stops when it is cancelled."""
    job = current_job()
    for row in range(rows):
        job.raise_if_cancelled()
        time.sleep(0.02)
        job.progress(row / rows)
    return rows


@tasks.task(name="demo.send_digest", queue="mail")
async def send_digest() -> str:
    """What the demo's periodic schedule enqueues."""
    await asyncio.sleep(0.01)
    return "digest sent"
