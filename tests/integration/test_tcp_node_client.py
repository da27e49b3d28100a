"""examples/tcp-node-client: a client written in Node.js from the protocol's description
publishes, subscribes and works a queue of a real server (no npm packages).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from shoal.core.model import JobState
from tests.integration._tcp import Harness, running

CLIENT = Path(__file__).resolve().parents[2] / "examples" / "tcp-node-client" / "client.js"


async def _node(harness: Harness, *args: str) -> list[dict[str, object]]:
    node = shutil.which("node")
    assert node is not None, "Node.js 20 is needed for the TCP client example"
    login = ["--port", str(harness.port), "--user", "user1", "--password", "pass1"]
    process = await asyncio.create_subprocess_exec(
        node, str(CLIENT), *login, "--group", "group1", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_the_node_client_publishes_subscribes_and_works_a_queue() -> None:
    async with running() as harness:
        published = await _node(harness, "publish", "images", "upper", "hello world", "3")
        awkward = "two\nlines, it's 'quoted' "  # needs the array form
        published += await _node(harness, "publish", "images", "echo", awkward)
        published += await _node(harness, "publish", "images", "flaky", "{}")
        ids = [str(line["id"]) for line in published]
        assert len(set(ids)) == 5

        worked = await _node(harness, "work", "images", "--max", "6")
        done = [line for line in worked if line["event"] == "done"]
        assert sorted(str(line["id"]) for line in done) == sorted(ids)
        by_type = {line["type"]: line for line in done}
        assert by_type["upper"]["result"] == "HELLO WORLD"
        assert by_type["echo"]["result"] == awkward
        (errored,) = [line for line in worked if line["event"] == "errored"]
        assert errored["type"] == "flaky" and errored["attempts"] == 0
        assert by_type["flaky"]["attempts"] == 1  # came back to it at once (IGNORE)

        for job_id in ids:
            job = await harness.service.get("group1", job_id)
            assert job.state is JobState.SUCCEEDED
        async with asyncio.timeout(5):  # both clients said QUIT; their sessions end
            while harness.server.hub.sessions:
                await asyncio.sleep(0.01)
