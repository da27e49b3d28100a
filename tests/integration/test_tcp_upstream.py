"""Jobatator's own tests (seed-systems.md 1.9: TestAuth, TestJob, TestRecurrent, TestConnexion)
ported against shoal's TCP server over real sockets, with the upstream test configuration
(groups group1..3, users user1, user2, superuser, `delay_policy: IGNORE`, test mode,
`job_timeout: 2`). Upstream inspected state through DEBUG_JSON and DEBUG; so do these.

Where shoal fixes a bug the scenario shows the fix: a job is leased to the worker it is
dispatched to, so the worker is `busy` from the dispatch line on (upstream only after
`in-progress`), and the job shows `in-progress` meanwhile.
"""

from __future__ import annotations

import json
from typing import Any

from tests.integration._tcp import Client, running


async def _debug_json(client: Client) -> Any:
    return await client.json("DEBUG_JSON")


async def _debug(client: Client) -> list[str]:
    await client.send("DEBUG\n")
    lines = []
    while True:
        line = await client.line()
        lines.append(line)
        if line == "No queues" or line.startswith("  workers: "):
            if line.startswith("  workers: "):
                lines += [await client.line() for _ in range(3 * int(line.split(": ")[1]))]
            return lines


async def test_auth() -> None:
    async with running() as harness:
        client = await harness.connect()
        assert (await client.call("AUTH user1 wrong")).startswith("Err")
        assert await client.call("AUTH user1 pass1") == "Welcome!"
        assert await client.call("PING") == "PONG"
        assert (await client.call("USE_GROUP group2")).startswith("Err")
        assert await client.call("USE_GROUP group1") == "OK"
        superuser = await harness.connect()
        assert await superuser.call("AUTH superuser superuser") == "Welcome!"
        assert await superuser.call("USE_GROUP group1") == "OK"
        assert await superuser.call("USE_GROUP group3") == "OK"


async def test_job_life_cycle_with_a_worker() -> None:
    async with running() as harness:
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE default") == "OK"
        dump = await _debug_json(worker)
        (queue,) = dump["Queues"]
        (member,) = queue["Workers"]
        assert member["Username"] == "user1" and member["CurrentGroup"] == {"Slug": "group1"}
        assert member["Password"] == ""

        publisher = await harness.login(group="group1")
        payload = '{"foo": "bar", "n": 1}'
        reply = await publisher.call(f"PUBLISH default job.type '{payload}'")
        assert reply.startswith("OK#")
        job_id = reply[3:]

        job = await worker.dispatched()
        assert (job["ID"], job["Type"], job["Payload"]) == (job_id, "job.type", payload)
        assert job["State"] == "pending" and job["Attempts"] == 0

        assert await worker.call(f"UPDATE_JOB {job_id} errored") == "OK"
        again = await worker.dispatched()  # IGNORE: the errored job comes back at once
        assert (again["ID"], again["State"], again["Attempts"]) == (job_id, "errored", 1)
        debug = await _debug(worker)
        assert "      state: in-progress" in debug and "      status: busy" in debug

        assert await worker.call(f"UPDATE_JOB {job_id} in-progress") == "OK"
        debug = await _debug(worker)
        assert "      status: busy" in debug

        assert await worker.call(f"UPDATE_JOB {job_id} done") == "OK"
        debug = await _debug(worker)
        assert "      state: done" in debug and "      status: available" in debug

        assert await worker.call("UNSUBSCRIBE default") == "OK"
        (queue,) = (await _debug_json(worker))["Queues"]
        assert queue["Workers"] is None

        assert len(await publisher.json("LIST_QUEUES")) == 1
        (listed,) = await publisher.json("LIST_JOBS default")
        assert (listed["ID"], listed["State"], listed["Attempts"]) == (job_id, "done", 1)
        assert await publisher.call(f"DELETE_JOB {job_id}") == "OK"
        assert await publisher.call("DELETE_QUEUE default") == "OK"
        assert (await _debug_json(publisher))["Queues"] is None


async def test_recurrent_jobs() -> None:
    async with running() as harness:
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE default") == "OK"
        client = await harness.login(group="group1")
        reply = await client.call("RECURRENT_JOB default recurrent.type 'bad'")
        assert reply == "Err: invalid-cron;expected exactly 5 fields, found 1: [bad]"
        assert await client.call("RECURRENT_JOB default recurrent.type '* * * * *'") == "OK#1"

        job = await worker.dispatched()  # IGNORE: one job published at declaration
        assert (job["Type"], job["Payload"]) == ("recurrent.type", "")
        debug = await _debug(client)
        assert "  recurrent_jobs: 1" in debug
        assert "      expression: * * * * *" in debug and "      type: recurrent.type" in debug
        assert "      payload: " in debug
        assert await worker.call(f"UPDATE_JOB {job['ID']} done") == "OK"
        (entry,) = await client.json("LIST_RECURRENT_JOBS default")  # not wiped by UPDATE_JOB
        assert entry["EntryID"] == 1 and entry["CronExpression"] == "* * * * *"


async def test_connection_and_quoting() -> None:
    async with running() as harness:
        client = await harness.connect()
        assert await client.call("PING") == "PONG"
        parts = await client.json("DEBUG_PARTS nonQuoted 'that is quoted' 'also that' 'and' that")
        assert parts == ["DEBUG_PARTS", "nonQuoted", "that is quoted", "also that", "and", "that"]
        long = "".join(chr(ord("a") + i % 26) for i in range(2000))
        assert await client.json(f"DEBUG_PARTS {long}") == ["DEBUG_PARTS", long]

        producer = await harness.login(group="group1")
        assert (await producer.call(f"PUBLISH default long.type '{long} with spaces'"))[:3] == "OK#"
        (job,) = await producer.json("LIST_JOBS default")
        assert job["Payload"] == f"{long} with spaces"
        assert json.loads(await producer.call("CURRENT_SESSION"))["CurrentGroup"] == "group1"
