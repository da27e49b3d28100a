"""Type-checked by tests/typing/test_enqueue_types.py: a line marked E must be an error with
that code, a line marked N a note with that text, and every other line clean. Not a test
module (pytest does not import it); it must FAIL to type-check.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import reveal_type

from shoal.sdk import App, JobHandle

app = App("memory://")


@app.task(queue="mail", retries=2)
def send_email(to: str, subject: str, *, urgent: bool = False) -> bool:
    return bool(to and subject and urgent)


@app.task
async def fetch(url: str, attempts: int = 3) -> bytes:
    await asyncio.sleep(0)
    return url.encode() * attempts


def good_calls() -> None:
    handle: JobHandle[bool] = send_email.enqueue("a@example.com", "hi")
    send_email.enqueue(to="a@example.com", subject="hi", urgent=True)
    send_email.options(delay=5, priority=3).enqueue("a@example.com", "hi")
    send_email.enqueue_many([send_email.call("a@example.com", "x"), ("b@example.com", "y")])
    data: bytes = fetch.enqueue("https://example.com").result(timeout=1)
    fetched: JobHandle[bytes] = fetch.enqueue("https://example.com")
    reveal_type(send_email.enqueue("a", "b").result())  # N: Revealed type is "bool"
    reveal_type(app.handle("job-1"))  # N: Revealed type is "shoal.sdk._handle.JobHandle[Any]"
    typed = app.handle("job-1", send_email)
    reveal_type(typed)  # N: Revealed type is "shoal.sdk._handle.JobHandle[bool]"
    send_email.options(retries=1, backoff=0.5).enqueue("a@example.com", "hi")
    print(handle, data, fetched)


def bad_calls() -> None:
    send_email.enqueue("a@example.com")  # E: call-arg
    send_email.enqueue("a@example.com", 42)  # E: arg-type
    send_email.enqueue("a@example.com", "hi", True)  # E: call-arg
    send_email.enqueue("a@example.com", "hi", urgnet=True)  # E: call-arg
    send_email.options(delay=5).enqueue(subject="hi")  # E: call-arg
    send_email.call(1, "x")  # E: arg-type
    fetch.enqueue(url=b"https://example.com")  # E: arg-type
    number: int = fetch.enqueue("u").result()  # E: assignment
    wrong: JobHandle[str] = fetch.enqueue("u")  # E: assignment
    send_email.options(run_at="tomorrow")  # E: arg-type
    send_email.options(when=datetime.now())  # E: call-arg
    print(number, wrong)


async def bad_async_calls() -> None:
    await fetch.aenqueue(7)  # E: arg-type
    text: str = await (await fetch.aenqueue("u")).aresult()  # E: assignment
    print(text)
