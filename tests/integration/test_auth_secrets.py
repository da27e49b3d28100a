"""No reply, log line, event or page ever holds a password or a token after its creation.

A real server logs at debug level to a file; the test creates users and tokens through the
APIs, uses them (and wrong ones) on gRPC, HTTP, TCP and the dashboard, reads every listing an
admin can read, and keeps every reply body, the event stream and the pages; then it greps all
of it, and the log, for every secret (and for the stored hashes, which are secrets too).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import grpc
import httpx
import pytest

from shoal.core.auth import hash_token
from shoal.protocols.grpc.gen.shoal.v1 import admin_pb2, admin_pb2_grpc, jobs_pb2, jobs_pb2_grpc

from ._auth_env import NS, Identities, role_users, start_auth_server
from ._auth_ops import Creds


class Replies:
    """Every reply body (text) the test received, except a token's creation reply."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def http(self, reply: httpx.Response) -> httpx.Response:
        self.texts.append(reply.text)
        self.texts.append(str(reply.headers))
        return reply

    def keep(self, message: object) -> None:
        self.texts.append(str(message))


def _read_events(url: str, headers: dict[str, str], out: list[str]) -> None:
    # Runs until the server stops (which ends every event stream).
    try:
        with httpx.stream("GET", url, headers=headers, timeout=None) as stream:
            for line in stream.iter_lines():
                out.append(line)
    except httpx.HTTPError:
        pass


async def _tcp(address: str, lines: list[str]) -> list[str]:
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    replies = []
    try:
        for line in lines:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            replies.append((await asyncio.wait_for(reader.readline(), 10)).decode())
    finally:
        writer.close()
    return replies


@pytest.mark.slow
def test_no_secret_is_ever_shown_again(tmp_path: Path) -> None:
    ids = role_users()
    server = start_auth_server(tmp_path, ids)
    base = f"http://{server.ready['http']}"
    root = Creds("root", ids.passwords["root"]).header()
    replies = Replies()
    events: list[str] = []
    reader = threading.Thread(
        target=_read_events, args=(f"{base}/api/v1/events?namespace=*", root, events)
    )
    reader.start()
    new_password, changed_password = "carol-pass-" + "q7" * 12, "carol-next-" + "z9" * 12
    created_tokens: list[str] = []
    try:
        with httpx.Client(base_url=base, timeout=10) as http, server.channel() as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            jobs = jobs_pb2_grpc.JobServiceStub(channel)
            # creation: a user (HTTP), tokens (HTTP and gRPC; their replies are their one showing)
            body = {"name": "carol", "password": new_password, "grants": {NS: ["producer"]}}
            replies.http(http.post("/api/v1/users", json=body, headers=root))
            made = http.post(
                "/api/v1/tokens",
                json={"owner": "carol", "grants": {NS: ["worker"]}, "expires_in": 3600},
                headers=root,
            )
            created_tokens.append(made.json()["token"])
            assert created_tokens[0] in made.text  # the grep below would see one
            request = admin_pb2.CreateTokenRequest(
                owner="carol", grants={NS: admin_pb2.Roles(roles=["viewer"])}
            )
            created_tokens.append(
                admin.CreateToken(request, metadata=tuple(root.items()), timeout=10).token
            )
            replies.http(
                http.put(
                    "/api/v1/users/carol/password",
                    json={"password": changed_password},
                    headers=root,
                )
            )
            secrets = [*ids.secrets(), new_password, changed_password, *created_tokens]
            # use every secret on every surface (and a wrong password next to each)
            _use_grpc(channel, jobs, admin, ids, created_tokens, changed_password, replies)
            _use_http(http, ids, created_tokens, changed_password, replies)
            _use_tcp(server.ready["tcp"], ids, created_tokens, changed_password, replies)
            # read what an admin can read about identities
            for path in ("/users", "/tokens", "/audit", "/me", "/namespaces"):
                replies.http(http.get(f"/api/v1{path}", headers=root))
            for call, message in (
                (admin.ListUsers, admin_pb2.ListUsersRequest()),
                (admin.ListTokens, admin_pb2.ListTokensRequest()),
                (admin.ListAudit, admin_pb2.ListAuditRequest()),
            ):
                replies.keep(call(message, metadata=tuple(root.items()), timeout=10))
    finally:
        assert server.stop() == 0
        reader.join(30)
    log = server.stderr()
    hashes = [hash_token(token) for token in [*ids.tokens.values(), *created_tokens]]
    assert "audit.user.add" in log or "user.add" in log  # the log did capture the activity
    assert any("job." in line for line in events)  # and the event stream saw it
    everything = {"replies": "\n".join(replies.texts), "events": "\n".join(events), "log": log}
    for where, text in everything.items():
        for secret in [*secrets, *hashes, "scrypt$"]:
            assert secret not in text, f"a secret is in the {where}"


def _use_grpc(
    channel: grpc.Channel,
    jobs: jobs_pb2_grpc.JobServiceStub,
    admin: admin_pb2_grpc.AdminServiceStub,
    ids: Identities,
    tokens: list[str],
    password: str,
    replies: Replies,
) -> None:
    creds = [Creds(name, secret) for name, secret in ids.passwords.items()]
    creds += [Creds(token=token) for token in [*ids.tokens.values(), *tokens]]
    creds += [Creds("carol", password), Creds("carol", password + "-wrong")]
    for cred in creds:
        metadata = tuple(cred.header().items())
        for call, request in (
            (admin.WhoAmI, admin_pb2.WhoAmIRequest()),
            (jobs.Enqueue, jobs_pb2.EnqueueRequest(namespace=NS, task="t", payload=b"1")),
        ):
            try:
                replies.keep(call(request, metadata=metadata, timeout=10))
            except grpc.RpcError as error:
                replies.keep(f"{error.code()} {error.details()} {error.trailing_metadata()}")


def _use_http(
    http: httpx.Client, ids: Identities, tokens: list[str], password: str, replies: Replies
) -> None:
    creds = [Creds(name, secret) for name, secret in ids.passwords.items()]
    creds += [Creds(token=token) for token in [*ids.tokens.values(), *tokens]]
    creds += [Creds("carol", password), Creds("carol", password + "-wrong")]
    for cred in creds:
        headers = cred.header()
        replies.http(http.get("/api/v1/me", headers=headers))
        replies.http(
            http.post("/api/v1/jobs", params={"namespace": NS}, json={"task": "t"}, headers=headers)
        )
        # the dashboard: sign in, read the pages with the cookie
        body = (
            {"token": cred.token} if cred.token else {"name": cred.user, "password": cred.password}
        )
        with httpx.Client(base_url=str(http.base_url), timeout=10) as browser:
            replies.http(browser.post("/login", json=body))
            for path in ("/", "/jobs", "/queues", "/workers", "/login"):
                replies.http(browser.get(path, params={"namespace": NS}))
    replies.http(http.get("/metrics", headers=Creds(token=tokens[0]).header()))


def _use_tcp(
    address: str, ids: Identities, tokens: list[str], password: str, replies: Replies
) -> None:
    logins = [f"AUTH {name} {secret}" for name, secret in ids.passwords.items()]
    logins += [f"AUTH bot {token}" for token in [*ids.tokens.values(), *tokens]]
    logins += [f"AUTH carol {password}", f"AUTH carol {password}-wrong"]
    for login in logins:
        lines = [login, f"USE_GROUP {NS}", "CURRENT_SESSION", "LIST_SESSIONS", "PUBLISH q t {}"]
        for reply in asyncio.run(_tcp(address, lines)):
            replies.keep(reply)
