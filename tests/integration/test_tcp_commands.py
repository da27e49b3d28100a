"""Sessions, auth and the commands beyond the upstream scenarios, over real sockets: no
password in any reply, AUTH re-checks the group, the extension commands (HEARTBEAT,
CANCEL_JOB, RETRY_JOB, STATS), recurrent jobs that update and delete, framing and timeouts,
and TLS.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from pathlib import Path

import pytest

from shoal.core.access import AccessService
from shoal.core.auth import Role
from shoal.core.model import JobState
from shoal.protocols.tcp.commands import HELP_NAMES
from shoal.protocols.tcp.server import TcpSettings, serve_tcp
from shoal.stores.memory import MemoryStore
from tests.integration._tcp import UPSTREAM_SETTINGS, Client, _hashed, running


async def test_passwords_never_appear_in_any_reply() -> None:
    async with running() as harness:
        worker = await harness.login("user1", "pass1", "group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        other = await harness.login("superuser", "superuser", "group1")
        replies = [
            await other.call(command)
            for command in (
                "LIST_SESSIONS",
                "LIST_QUEUES",
                "DEBUG_JSON",
                "CURRENT_SESSION",
                "HEALTH",
            )
        ]
        replies.append(await worker.call("CURRENT_SESSION"))
        text = "\n".join(replies)
        assert "user1" in text and "pass1" not in text and "scrypt" not in text
        sessions = json.loads(replies[0])
        assert {s["Username"] for s in sessions} == {"user1", "superuser"}
        assert all(s["Password"] == "" for s in sessions)
        users = json.loads(replies[2])["Users"]
        assert {u["Username"]: u["Password"] for u in users} == {
            "superuser": "",
            "user1": "",
            "user2": "",
        }


async def test_auth_again_rechecks_the_selected_group() -> None:
    async with running() as harness:
        client = await harness.login("user2", "pass1", "group2")
        assert await client.call("AUTH user1 pass1") == "Welcome!"  # user1 may not use group2
        assert await client.call("PUBLISH q t p") == "Err: group-non-selected"
        assert json.loads(await client.call("CURRENT_SESSION"))["CurrentGroup"] == ""
        assert await client.call("USE_GROUP group1") == "OK"
        assert await client.call("AUTH superuser superuser") == "Welcome!"  # `*`: kept
        session = json.loads(await client.call("CURRENT_SESSION"))
        assert session == {
            "Username": "superuser",
            "Addr": session["Addr"],
            "CurrentGroup": "group1",
            "IsWorker": False,
            "Groups": ["*"],
        }
        assert await client.call("AUTH superuser wrong") == "Err: invalid-creds"
        assert await client.call("PING") == "PONG"
        assert await client.call("PUBLISH q t p") == "Err: not-logged"  # a failed AUTH logs out


async def test_rights_come_from_the_shared_table() -> None:
    async with running() as harness:
        grants = {"group1": frozenset({Role.VIEWER})}
        await harness.access.declare_user("viewer", _hashed("pw"), grants)
        client = await harness.login("viewer", "pw", "group1")
        assert await client.call("PUBLISH q t p") == "Err: forbidden"
        assert await client.call("SUBSCRIBE q") == "Err: forbidden"
        assert await client.call("LIST_QUEUES") == "null"
        assert await client.call("RECURRENT_JOB q t '@hourly'") == "Err: forbidden"
        assert (await harness.service.stats("group1")).total == 0


async def test_api_tokens_and_auth_off() -> None:
    async with running() as harness:
        admin = await harness.access.authenticate_password("superuser", "superuser")
        _, token = await harness.access.create_token(
            admin, "robot", {"group1": frozenset({Role.WORKER})}
        )
        client = await harness.connect()
        assert await client.call(f"AUTH robot {token}") == "Welcome!"
        assert await client.call("USE_GROUP group1") == "OK"
        assert await client.call("SUBSCRIBE q") == "OK"
    store = MemoryStore()
    access = AccessService(store, enabled=False)
    async with running(UPSTREAM_SETTINGS, access=access) as harness:
        client = await harness.connect()
        assert await client.call("AUTH anybody anything") == "Welcome!"
        assert await client.call("USE_GROUP anygroup") == "OK"
        assert (await client.call("PUBLISH q t p")).startswith("OK#")


async def test_extension_commands() -> None:
    async with running(UPSTREAM_SETTINGS) as harness:
        worker = await harness.login(group="group1")
        publisher = await harness.login(group="group1")
        assert await worker.call("HEARTBEAT") == '{"Renewed":[],"Lost":[],"Cancel":[]}'
        assert await worker.call("SUBSCRIBE q") == "OK"
        first = (await publisher.call("PUBLISH q send.mail 1"))[3:]
        second = (await publisher.call("PUBLISH q send.sms 2"))[3:]
        assert (await worker.dispatched())["ID"] == first
        assert await worker.json("HEARTBEAT") == {"Renewed": [first], "Lost": [], "Cancel": []}

        assert await publisher.call(f"CANCEL_JOB {second}") == "OK"  # waiting: cancelled now
        assert await publisher.call(f"CANCEL_JOB {first}") == "OK"  # running: its worker is told
        assert await worker.json("HEARTBEAT") == {"Renewed": [first], "Lost": [], "Cancel": [first]}
        assert await worker.call(f"UPDATE_JOB {first} errored") == "OK"
        assert (await harness.service.get("group1", first)).state is JobState.CANCELLED
        assert await publisher.call(f"CANCEL_JOB {first}") == "Err: job-finished"

        stats = await publisher.json("STATS q")
        assert stats["Queue"] == "q" and stats["Total"] == 2
        assert stats["ByState"]["cancelled"] == 2 and stats["ByType"]["send.sms"]["cancelled"] == 1

        assert await publisher.call(f"RETRY_JOB {second}") == "OK"
        assert (await worker.dispatched())["ID"] == second
        assert await publisher.call(f"RETRY_JOB {second}") == "Err: job-not-retryable"
        assert await worker.call(f"UPDATE_JOB {second} done") == "OK"
        assert (await publisher.json("STATS q"))["ByState"]["succeeded"] == 1
        help_names = await publisher.json("HELP")
        assert help_names == list(HELP_NAMES) and help_names[-4:] == [
            "HEARTBEAT",
            "CANCEL_JOB",
            "RETRY_JOB",
            "STATS",
        ]


async def test_update_job_needs_the_lease() -> None:
    async with running(UPSTREAM_SETTINGS) as harness:
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        publisher = await harness.login(group="group1")
        job_id = (await publisher.call("PUBLISH q t p"))[3:]
        await worker.dispatched()
        assert await publisher.call(f"UPDATE_JOB {job_id} done") == "Err: lease-lost"
        assert await worker.call(f"UPDATE_JOB {job_id} pending") == "Err: unknown-state"
        assert await worker.call(f"UPDATE_JOB {job_id} DONE") == "Err: unknown-state"
        assert await worker.call(f"UPDATE_JOB {job_id} in-progress") == "OK"
        assert await worker.call(f"DELETE_JOB {job_id}") == "OK"  # running: cancelled, deleted
        assert await worker.call(f"UPDATE_JOB {job_id} done") == "Err: unknown-job"
        assert await publisher.call("LIST_JOBS q") == "null"


async def test_deleted_recurrent_jobs_leave_no_entry_number_behind() -> None:
    async with running() as harness:
        client = await harness.login(group="group1")
        hub = harness.server.hub
        for number in range(1, 21):
            assert await client.call(f"RECURRENT_JOB q{number} t '@daily'") == f"OK#{number}"
            assert await client.call(f"DELETE_RECURRENT_JOB {number}") == "OK"
        assert (len(hub._entry_ids), len(hub._entries)) == (0, 0)
        # declared again, a deleted schedule is a new entry, as in Jobatator's cron
        assert await client.call("RECURRENT_JOB q1 t '@daily'") == "OK#21"
        # deleted through another surface: the number is dropped with its refusal
        await harness.scheduler.remove("group1", next(iter(hub._entry_ids))[1])
        assert await client.call("DELETE_RECURRENT_JOB 21") == "Err: unknown-recurrent-job"
        assert (len(hub._entry_ids), len(hub._entries)) == (0, 0)


async def test_recurrent_jobs_update_delete_and_fire() -> None:
    async with running(TcpSettings(test_mode=True), scheduler=True) as harness:
        client = await harness.login(group="group1")
        assert await client.call("RECURRENT_JOB q tick '0 * * * *'") == "OK#1"
        assert await client.call("RECURRENT_JOB q tock '@daily'") == "OK#2"
        assert await client.call("RECURRENT_JOB q tick '@every 1h30m'") == "OK#1"  # updated
        listed = await client.json("LIST_RECURRENT_JOBS q")
        assert sorted((e["EntryID"], e["Type"], e["CronExpression"]) for e in listed) == [
            (1, "tick", "@every 1h30m0s"),
            (2, "tock", "@daily"),
        ]
        assert await client.call("UPDATE_JOB x done") == "Err: unknown-job"
        assert len(await client.json("LIST_RECURRENT_JOBS q")) == 2  # untouched by UPDATE_JOB
        # entry numbers count over all groups: group3's user deleted group1's entry 2 from there
        other = await harness.login("superuser", "superuser", "group3")
        assert await other.call("DELETE_RECURRENT_JOB 2") == "Err: unknown-recurrent-job"
        assert await client.call("DELETE_RECURRENT_JOB 1") == "OK"
        assert await client.call("DELETE_RECURRENT_JOB 1") == "Err: unknown-recurrent-job"
        assert [s.task for s in await harness.scheduler.list("group1")] == ["tock"]

        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE fast") == "OK"
        assert (await client.call("RECURRENT_JOB fast beat '@every 100ms'")).startswith("OK#")
        ids = set()
        for _ in range(3):  # the scheduler fires; each fire is dispatched once
            job = await worker.dispatched(timeout=3)
            assert (job["Type"], job["Payload"]) == ("beat", "")
            ids.add(job["ID"])
            assert await worker.call(f"UPDATE_JOB {job['ID']} done") == "OK"
        assert len(ids) == 3
        assert await client.call("DELETE_QUEUE fast") == "OK"  # its recurrent job goes too
        assert [s.task for s in await harness.scheduler.list("group1")] == ["tock"]


async def test_framing_pipelining_split_packets_and_the_idle_rule() -> None:
    async with running() as harness:
        client = await harness.connect()
        await client.send("PING\nping\r\nPING\n")
        assert [await client.line() for _ in range(3)] == ["PONG"] * 3
        await client.send("PI")
        await asyncio.sleep(0.1)
        await client.send("NG\n")
        assert await client.line() == "PONG"
        await client.send("AUTH user1 pass1 ")  # the official CLI: trailing space, no newline
        assert await client.line() == "Welcome!"
        await client.send("USE_GROUP group1 ")
        assert await client.line() == "OK"
        await client.send("PING")  # no space: waits for its newline
        with pytest.raises(TimeoutError):
            await client.line(timeout=0.2)
        await client.send("\n")
        assert await client.line() == "PONG"
        await client.send("*3\r\n$8\r\nSUBSCRIB\r\n$1\r\nq\r\n$1\r\nx\r\n")
        assert await client.line() == "Err: unknown-command"
        payload = "multi\nline 'quoted"
        data = f"*4\r\n$7\r\nPUBLISH\r\n$1\r\nq\r\n$1\r\nt\r\n${len(payload)}\r\n{payload}\r\n"
        await client.send(data)
        assert (await client.line()).startswith("OK#")
        (job,) = await client.json("LIST_JOBS q")
        assert job["Payload"] == payload
        await client.send(
            "PUBLISH p t 1\nPUBLISH 'bad q' t 2\nPUBLISH p t 3\nPING\nPUBLISH p t 4\n"
        )
        replies = [await client.line() for _ in range(5)]  # pipelined: batched, same replies
        assert [reply[:3] for reply in replies] == ["OK#", "Err", "OK#", "PON", "OK#"]
        assert replies[1].startswith("Err: invalid-argument;queue:")
        listed = await client.json("LIST_JOBS p")
        assert [job["Payload"] for job in listed] == ["1", "3", "4"]
        await client.send("PING\nQUIT\nPING\n")
        assert [await client.line(), await client.line()] == ["PONG", ""]
        assert await client.closed()


async def test_idle_unauthenticated_connections_time_out_workers_do_not() -> None:
    settings = TcpSettings(auth_timeout=0.3)
    async with running(settings) as harness:
        idle = await harness.connect()
        chatty = await harness.connect()
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        for _ in range(4):
            await asyncio.sleep(0.1)
            assert await chatty.call("PING") == "PONG"  # input resets the clock
        assert await idle.closed(timeout=1)
        await asyncio.sleep(0.5)
        assert await chatty.closed(timeout=1)
        assert await worker.call("PING") == "PONG"


async def test_stop_server_and_dispatch_switches() -> None:
    async with running(TcpSettings()) as harness:
        client = await harness.connect()
        assert await client.call("STOP_SERVER") == "Err: forbidden"
        assert await client.call("DEBUG_PARTS a") == "Err: test-mode-disabled"
        assert await client.call("DEBUG_JSON") == "Err: test-mode-disabled"
    async with running(TcpSettings(test_mode=True, allow_dispatch=True)) as harness:
        client = await harness.connect()
        assert await client.call("DISPATCH") == "OK"
        assert await client.call("STOP_SERVER") == ""
        assert await client.closed()
        await asyncio.wait_for(harness.server.stop_requested.wait(), 1)


def _certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)]
    command += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


async def test_tls(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    async with running() as harness:
        server = await serve_tcp(
            harness.service,
            harness.access,
            harness.scheduler,
            "127.0.0.1",
            0,
            UPSTREAM_SETTINGS,
            ssl=server_context,
        )
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, ssl=client_context
            )
            client = Client(reader, writer)
            assert await client.call("AUTH user1 pass1") == "Welcome!"
            assert await client.call("PING") == "PONG"
            await client.close()
        finally:
            await server.close()


async def test_a_worker_whose_rights_go_takes_nothing_until_they_come_back() -> None:
    async with running() as harness:
        grants = {"group1": frozenset({Role.VIEWER})}
        await harness.access.declare_user("viewer", _hashed("pw"), grants)
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE q") == "OK"
        assert await worker.call("AUTH viewer pw") == "Welcome!"  # may read group1: kept
        publisher = await harness.login(group="group1")
        job_id = (await publisher.call("PUBLISH q t p"))[3:]
        with pytest.raises(TimeoutError):
            await worker.line(timeout=0.3)
        assert (await harness.service.get("group1", job_id)).state is JobState.QUEUED
        assert await worker.call("AUTH user1 pass1") == "Welcome!"
        assert (await worker.dispatched())["ID"] == job_id
