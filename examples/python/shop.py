"""An example shoal app: a small shop's background jobs.

Run it all in one process (local mode, an in-memory store and an in-process worker):

    python examples/python/shop.py

Or against a server, with workers in their own processes:

    shoal server --store sqlite:///shop.db --grpc-listen 127.0.0.1:7070
    cd examples/python && SHOAL_URL=grpc://127.0.0.1:7070 shoal worker shop:app --pool thread
    SHOAL_URL=grpc://127.0.0.1:7070 python examples/python/shop.py
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pydantic

from shoal.sdk import App, JobHandle, NonRetryable, Retry, current_job

#: The URL comes from SHOAL_URL (memory:// when unset); nothing connects until first use.
app = App()

# Tasks are named explicitly: a producer running this file as a script (module `__main__`)
# and a worker importing it as `shop` then agree on the names jobs carry.


class Currency(enum.Enum):
    EUR = "EUR"
    USD = "USD"


class Invoice(pydantic.BaseModel):
    id: uuid.UUID
    customer: str
    total: Decimal
    currency: Currency
    due: datetime


@dataclasses.dataclass
class Thumbnail:
    name: str
    width: int
    height: int


@app.task(name="shop.send_invoice", queue="mail", retries=3, backoff=0.2)
def send_invoice(invoice: Invoice) -> str:
    """Arrives as an `Invoice` (converted back from JSON), whatever the producer's language."""
    if invoice.total < 0:
        raise NonRetryable(f"invoice {invoice.id} has a negative total")
    return f"sent {invoice.total} {invoice.currency.value} to {invoice.customer}"


@app.task(name="shop.make_thumbnail", queue="media", timeout=30)
async def make_thumbnail(name: str, width: int = 128) -> Thumbnail:
    await asyncio.sleep(0.01)  # pretend to fetch and scale an image
    return Thumbnail(name=name, width=width, height=width * 3 // 4)


@app.task(name="shop.fetch_exchange_rate", retries=4)
def fetch_exchange_rate(currency: Currency) -> Decimal:
    """Fails on its first attempt, as a flaky upstream would, and asks to be retried soon."""
    if current_job().attempt == 1:
        raise Retry(delay=0.1, reason="upstream busy")
    return Decimal("1.08") if currency is Currency.USD else Decimal(1)


@app.task(name="shop.build_report", queue="reports", timeout=60)
def build_report(rows: int) -> str:
    """Long and CPU-bound: reports progress and stops early when cancelled."""
    job = current_job()
    digest = hashlib.sha256()
    for row in range(rows):
        if job.cancelled:
            job.raise_if_cancelled()
        digest.update(row.to_bytes(8, "little"))
        if row % 10_000 == 0:
            job.progress(row / rows)
    return digest.hexdigest()[:16]


def main() -> None:
    """Enqueue a mix of jobs and print how each ended."""
    invoice = Invoice(
        id=uuid.uuid4(),
        customer="ada@example.com",
        total=Decimal("41.50"),
        currency=Currency.EUR,
        due=datetime.now(UTC) + timedelta(days=30),
    )
    with app:
        handles: dict[str, JobHandle[Any]] = {
            "invoice": send_invoice.enqueue(invoice),
            "thumbnail": make_thumbnail.options(priority=5).enqueue("cat.png", width=256),
            "rate": fetch_exchange_rate.enqueue(Currency.USD),
            "report": build_report.enqueue(50_000),
        }
        later = send_invoice.options(delay=3600).enqueue(invoice)
        later.cancel()
        for name, handle in handles.items():
            print(f"{name:<10} {handle.result(timeout=30)!r}")
        print(f"{'later':<10} {later.state.value}")


if __name__ == "__main__":
    main()
