"""examples/http-worker: a worker in shell (curl + jq) runs jobs end to end over HTTP."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import httpx

from shoal.core.service import QueueService
from shoal.protocols.http import create_app, serve_http
from shoal.stores.memory import MemoryStore

WORKER = Path(__file__).resolve().parents[2] / "examples" / "http-worker" / "worker.sh"


async def test_the_shell_worker_processes_jobs_end_to_end() -> None:
    assert shutil.which("curl") and shutil.which("jq"), "the example needs curl and jq"
    service = QueueService(MemoryStore())
    server = await serve_http(create_app(service), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            jobs = [
                {"task": "add", "payload": {"a": 2, "b": 40}},
                {"task": "shout", "payload": {"text": "hello"}},
                {"task": "echo", "payload": {"nested": [1, "two", None]}},
                {"task": "wc", "payload": {"text": "one two  three"}},
                {"task": "boom", "max_attempts": 1},
                {"task": "unknown.task"},
            ]
            answer = await client.post("/api/v1/jobs/batch", json={"jobs": jobs})
            ids = [r["job"]["id"] for r in answer.json()["results"]]
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "SHOAL_URL": url,
                "SHOAL_WORKER_ID": "sh-test",
                "SHOAL_WAIT": "0.2",
                "SHOAL_BURST": "1",
            }
            worker = await asyncio.create_subprocess_exec(
                "sh", str(WORKER), env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _out, err = await asyncio.wait_for(worker.communicate(), 60)
            log = err.decode()
            assert worker.returncode == 0, log
            done = [(await client.get(f"/api/v1/jobs/{i}")).json() for i in ids]
    finally:
        await server.stop()
    results = [(job["state"], job["result"]) for job in done[:4]]
    assert results == [
        ("succeeded", {"sum": 42}),
        ("succeeded", "HELLO"),
        ("succeeded", {"nested": [1, "two", None]}),
        ("succeeded", {"words": 3}),
    ], log
    boom, unknown = done[4], done[5]
    assert boom["state"] == "failed" and boom["error"]["type"] == "ShellError"
    assert "always fails" in boom["error"]["message"]
    assert unknown["state"] == "failed" and unknown["error"]["type"] == "UnknownTask"
    assert unknown["error"]["retryable"] is False and unknown["attempt"] == 1
    assert all(job["worker_id"] is None for job in done)
    assert "registered on queue default" in log and "left" in log
    assert await service.list_workers() == []  # it left on exit


async def test_the_shell_worker_stops_when_drained() -> None:
    service = QueueService(MemoryStore())
    server = await serve_http(create_app(service), "127.0.0.1", 0)
    joined = service.events.subscribe(lambda event: event.kind == "worker.joined")
    try:
        url = f"http://127.0.0.1:{server.port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SHOAL_URL": url,
            "SHOAL_WORKER_ID": "sh-drain",
            "SHOAL_WAIT": "0.2",  # no SHOAL_BURST: it would run until told otherwise
        }
        worker = await asyncio.create_subprocess_exec(
            "sh", str(WORKER), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert await joined.next(30) is not None
            async with httpx.AsyncClient(base_url=url) as client:
                drained = await client.post("/api/v1/workers/sh-drain/drain")
                assert drained.json()["state"] == "draining"
            _out, err = await asyncio.wait_for(worker.communicate(), 30)
        finally:
            if worker.returncode is None:  # never leave the worker running
                worker.kill()
                await worker.wait()
        assert worker.returncode == 0 and "asked to drain" in err.decode()
        assert await service.list_workers() == []
    finally:
        joined.close()
        await server.stop()
