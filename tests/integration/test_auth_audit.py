"""Admin actions on every surface land in the audit log, which the API reads back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from shoal.protocols.grpc.gen.shoal.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    queues_pb2,
    queues_pb2_grpc,
    workers_pb2,
    workers_pb2_grpc,
)

from ._auth_env import NS, role_users, start_auth_server
from ._auth_ops import Creds


async def _tcp(address: str, lines: list[str]) -> list[str]:
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        replies = []
        for line in lines:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            replies.append((await asyncio.wait_for(reader.readline(), 10)).decode().strip())
        return replies
    finally:
        writer.close()


@pytest.mark.slow
def test_admin_actions_are_audited_and_readable(tmp_path: Path) -> None:
    ids = role_users()
    server = start_auth_server(tmp_path, ids)
    admin_user = Creds("u-admin", ids.passwords["u-admin"])
    token = Creds(token=ids.tokens["t-admin"])
    root = Creds("root", ids.passwords["root"])
    try:
        with httpx.Client(base_url=f"http://{server.ready['http']}", timeout=10) as http:
            ns = {"namespace": NS}
            http.post(
                "/api/v1/jobs", params=ns, json={"task": "t", "queue": "q"}, headers=root.header()
            )
            http.post(
                "/api/v1/workers",
                params=ns,
                json={"id": "w1", "queues": ["q"]},
                headers=root.header(),
            )
            http.post(
                "/api/v1/workers",
                params=ns,
                json={"id": "w2", "queues": ["q"]},
                headers=root.header(),
            )
            # HTTP: kick a worker, create a schedule, make a token
            assert http.post(
                "/api/v1/workers/w1/kick", params=ns, headers=admin_user.header()
            ).is_success
            body = {"task": "t", "id": "hourly", "every_ms": 3_600_000}
            assert http.post(
                "/api/v1/schedules", params=ns, json=body, headers=admin_user.header()
            ).is_success
            # gRPC: drain a worker, purge a queue, create a namespace
            with server.channel() as channel:
                meta = tuple(token.header().items())
                workers_pb2_grpc.WorkerServiceStub(channel).DrainWorker(
                    workers_pb2.DrainWorkerRequest(namespace=NS, worker_id="w2"), metadata=meta
                )
                queues_pb2_grpc.QueueServiceStub(channel).PurgeQueue(
                    queues_pb2.PurgeQueueRequest(namespace=NS, queue="q"), metadata=meta
                )
                admin = admin_pb2_grpc.AdminServiceStub(channel)
                root_meta = tuple(root.header().items())
                admin.CreateNamespace(
                    admin_pb2.CreateNamespaceRequest(name="ns3"), metadata=root_meta
                )
                # TCP: a recurrent job
                replies = asyncio.run(
                    _tcp(
                        server.ready["tcp"],
                        [
                            f"AUTH u-admin {ids.passwords['u-admin']}",
                            f"USE_GROUP {NS}",
                            "RECURRENT_JOB q t '0 0 1 1 *'",
                        ],
                    )
                )
                assert replies[2].startswith("OK#"), replies
                via_grpc = admin.ListAudit(
                    admin_pb2.ListAuditRequest(namespace=NS), metadata=root_meta
                )
            via_http = http.get(
                "/api/v1/audit", params={"namespace": NS}, headers=admin_user.header()
            )
            assert via_http.status_code == 200
            # an admin of NS reads NS's audit; not every namespace's
            assert http.get("/api/v1/audit", headers=admin_user.header()).status_code == 403
            everything = http.get("/api/v1/audit", headers=root.header()).json()
    finally:
        assert server.stop() == 0
    seen = {(e["action"], e["actor"].split("/")[0]) for e in via_http.json()}
    assert seen >= {
        ("worker.kick", "u-admin"),
        ("schedule.create", "u-admin"),
        ("worker.drain", "root"),  # the token's owner (tokens seeded for root)
        ("queue.purge", "root"),
        ("schedule.put", "u-admin"),
    }, seen
    assert {e.action for e in via_grpc.entries} == {a for a, _ in seen}
    assert ("namespace.create", "root") in {(e["action"], e["actor"]) for e in everything}
