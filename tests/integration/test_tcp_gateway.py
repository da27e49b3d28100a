"""Jobatator's HTTP gateway (`POST /gateway`, seed-systems.md 1.8), with the fix: every JSON
reply of a batch is placed in `data` (upstream injected only the first).
"""

from __future__ import annotations

import json

import httpx

from shoal.core.model import JobQuery
from shoal.protocols.tcp.gateway import create_gateway_app
from tests.integration._tcp import UPSTREAM_SETTINGS, Harness, running


def _client(harness: Harness) -> httpx.AsyncClient:
    app = create_gateway_app(
        harness.service,
        harness.access,
        harness.scheduler,
        UPSTREAM_SETTINGS,
        hub=harness.server.hub,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shoal")


async def test_every_json_reply_is_placed_in_data() -> None:
    async with running() as harness, _client(harness) as http:
        commands = [
            "AUTH user1 pass1",
            "USE_GROUP group1",
            "PING",
            "PUBLISH jobs a.type '{\"x\": 1}'",
            "LIST_QUEUES",
            "LIST_JOBS jobs",
            "CURRENT_SESSION",
            "PUBLISH jobs b.type 2",
            "STATS jobs",
        ]
        response = await http.post("/gateway", json={"commands": commands})
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is True and body["errors"] == []
        data = body["data"]
        assert data[:3] == ["Welcome!", "OK", "PONG"]
        assert data[3].startswith("OK#") and data[7].startswith("OK#")
        (queue,) = data[4]
        assert queue["Slug"] == "jobs" and queue["Group"] == {"Slug": "group1"}
        (job,) = data[5]
        assert job["ID"] == data[3][3:] and job["Payload"] == '{"x": 1}'
        assert data[6]["Username"] == "user1" and data[6]["CurrentGroup"] == "group1"
        assert data[8]["Total"] == 2
        assert "$!$!" not in response.text and "pass1" not in response.text
        assert response.headers["content-type"] == "application/json"


async def test_errors_go_to_errors_and_answer_400() -> None:
    async with running() as harness, _client(harness) as http:
        commands = ["PING", "AUTH user1 nope", "LIST_QUEUES", "FOO", "DEBUG_PARTS 'a b' c"]
        response = await http.post("/gateway", json={"commands": commands})
        assert response.status_code == 400
        assert response.json() == {
            "success": False,
            "data": ["PONG", ["DEBUG_PARTS", "a b", "c"]],
            "errors": [
                {"message": "", "code": "invalid-creds"},
                {"message": "", "code": "not-logged"},
                {"message": "", "code": "unknown-command"},
            ],
        }


async def test_methods_bodies_and_cors() -> None:
    async with running() as harness, _client(harness) as http:
        options = await http.options("/gateway")
        assert (options.status_code, options.json()) == (
            200,
            {"success": True, "data": None, "errors": []},
        )
        got = await http.get("/gateway")
        assert got.status_code == 405
        assert got.json()["errors"] == [
            {"message": "Method not allowed", "code": "method-not-allowed"}
        ]
        invalid = {"message": "Invalid body", "code": "invalid-body"}
        too_big = b'{"commands": ["PING ' + b"x" * (4 * 1024 * 1024) + b'"]}'
        for body in (b"not json", b'{"commands": []}', b'{"commands": [1]}', b"[]", too_big):
            bad = await http.post("/gateway", content=body, headers=JSON)
            assert bad.status_code == 400 and bad.json()["errors"] == [invalid]
        # A page of the server's own origin gets CORS headers for it (upstream's shape).
        headers = {"Referer": "http://shoal/admin/page?x=1"}
        cors = await http.post("/gateway", json={"commands": ["PING"]}, headers=headers)
        assert cors.headers["access-control-allow-origin"] == "http://shoal"
        assert cors.headers["access-control-allow-methods"] == "GET, POST"
        assert cors.headers["access-control-allow-headers"] == "Content-Type, Referer"
        assert (
            "access-control-allow-origin"
            not in (await http.post("/gateway", json={"commands": ["PING"]})).headers
        )


DOCUMENTED = {"commands": ["AUTH user1 pass1", "USE_GROUP group1", "LIST_QUEUES"]}
JSON = {"Content-Type": "application/json"}
EVIL = "https://evil.example"


async def _published(harness: Harness) -> int:
    return len((await harness.service.list_jobs(JobQuery(namespace="group1"))).jobs)


async def test_a_page_of_another_origin_cannot_drive_the_gateway() -> None:
    # With authentication off (the default on loopback) any AUTH succeeds: a page of any site
    # that could POST here would publish jobs and, given CORS headers, read the answers.
    commands = ["AUTH user1 pass1", "USE_GROUP group1", "PUBLISH jobs t p", "LIST_QUEUES"]
    body = json.dumps({"commands": commands})
    forbidden = [{"message": "Origin not allowed", "code": "forbidden-origin"}]
    async with running() as harness, _client(harness) as http:
        for headers in (
            {"Origin": EVIL, "Referer": f"{EVIL}/page", "Content-Type": "text/plain"},
            {"Origin": EVIL, **JSON},
            {"Referer": f"{EVIL}/page", **JSON},  # upstream's only source of the origin
            {"Origin": "null", **JSON},  # a sandboxed frame or a file
            {"Origin": "http://shoal.evil.example", "Referer": "http://shoal/", **JSON},
        ):
            response = await http.post("/gateway", content=body, headers=headers)
            assert response.status_code == 403, headers
            assert response.json() == {"success": False, "data": None, "errors": forbidden}
            assert "access-control-allow-origin" not in response.headers
        preflight = await http.options(
            "/gateway",
            headers={
                "Origin": EVIL,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert "access-control-allow-origin" not in preflight.headers
        assert await _published(harness) == 0


async def test_the_gateway_takes_only_json_bodies() -> None:
    # A JSON content type cannot be sent across origins without a CORS preflight, which the
    # gateway does not grant: a form or a text/plain fetch of another site is refused here.
    body = json.dumps({"commands": ["AUTH user1 pass1", "USE_GROUP group1", "PUBLISH jobs t p"]})
    unsupported = [
        {"message": "Content-Type must be application/json", "code": "invalid-content-type"}
    ]
    async with running() as harness, _client(harness) as http:
        for content_type in (None, "text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x", "application/jsonx"):  # fmt: skip
            headers = {"Content-Type": content_type} if content_type else {}
            response = await http.post("/gateway", content=body.encode(), headers=headers)
            assert response.status_code == 415, content_type
            assert response.json() == {"success": False, "data": None, "errors": unsupported}
        assert await _published(harness) == 0
        headers = {"Content-Type": "Application/JSON; charset=utf-8"}
        response = await http.post("/gateway", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert await _published(harness) == 1


async def test_the_documented_request_works_without_a_browser_and_from_the_same_origin() -> None:
    # seed-systems.md 1.8's request, as a script sends it (no Origin, no Referer) and as a
    # page served by the same host sends it (Origin and Referer of that host).
    async with running() as harness, _client(harness) as http:
        plain = await http.post("/gateway", json=DOCUMENTED)
        assert plain.status_code == 200, plain.text
        assert plain.json()["data"][:2] == ["Welcome!", "OK"]
        assert "access-control-allow-origin" not in plain.headers
        page = {"Origin": "http://shoal", "Referer": "http://shoal/admin/"}
        same = await http.post("/gateway", json=DOCUMENTED, headers=page)
        assert same.status_code == 200, same.text
        assert same.json() == plain.json()
        assert same.headers["access-control-allow-origin"] == "http://shoal"


async def test_the_gateway_shares_the_tcp_listeners_sessions_and_never_dispatches() -> None:
    async with running() as harness, _client(harness) as http:
        worker = await harness.login(group="group1")
        assert await worker.call("SUBSCRIBE jobs") == "OK"
        commands = ["AUTH user1 pass1", "USE_GROUP group1", "SUBSCRIBE jobs", "LIST_SESSIONS"]
        commands += ["PUBLISH jobs t p"]
        response = await http.post("/gateway", json={"commands": commands})
        data = response.json()["data"]
        assert len(data[3]) == 2  # the TCP worker and the gateway's own session
        job = await worker.dispatched()  # the TCP worker gets it, not the gateway's session
        assert job["ID"] == data[4][3:]
        assert len(harness.server.hub.sessions) == 1  # the gateway's session ended


async def test_stop_server_through_the_gateway_in_test_mode() -> None:
    async with running() as harness, _client(harness) as http:
        response = await http.post("/gateway", json={"commands": ["STOP_SERVER", "PING"]})
        assert response.json() == {"success": True, "data": [""], "errors": []}
        assert harness.server.stop_requested.is_set()
