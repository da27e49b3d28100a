"""The authorization matrix: every operation of every surface (gRPC, HTTP, TCP, the dashboard)
of a real `shoal server`, tried with no credentials, a wrong password, an expired token, a token
of another namespace, and each role (by password and by token). The expected outcome of each
attempt is computed from core's `Authorizer` over `ROLE_ACTIONS`; a refused attempt must change
nothing (a snapshot of jobs, queues, workers, schedules, identities and the audit is compared).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from shoal.core.auth import Authorizer, Principal, Role

from ._auth_env import Identities, role_users, start_auth_server
from ._auth_ops import (
    DENIED,
    OK,
    UNAUTHENTICATED,
    Admin,
    Creds,
    Op,
    dashboard_ops,
    grpc_ops,
    http_ops,
    tcp_ops,
)
from ._grpc_server import ServerProcess


@dataclass(frozen=True)
class Caller:
    """One row of the matrix: how it authenticates, and its grants if that succeeds."""

    label: str
    creds: Creds
    grants: Mapping[str, frozenset[Role]] | None

    def expected(self, op: Op) -> str:
        if self.grants is None:
            return UNAUTHENTICATED
        principal = Principal(self.label, "test", self.grants)
        return OK if Authorizer().allows(principal, op.action, op.namespace) else DENIED


def callers(ids: Identities) -> list[Caller]:
    rows = [
        Caller("no credentials", Creds(), None),
        Caller("wrong password", Creds("root", ids.passwords["root"] + "x"), None),
        Caller("expired token", Creds(token=ids.tokens["t-expired"]), None),
        Caller("token of another ns", Creds(token=ids.tokens["t-other"]), ids.grants["t-other"]),
    ]  # fmt: skip
    for role in Role:
        user, token = f"u-{role.value}", f"t-{role.value}"
        rows.append(Caller(user, Creds(user, ids.passwords[user]), ids.grants[user]))
        rows.append(Caller(token, Creds(token=ids.tokens[token]), ids.grants[token]))
    return rows


@dataclass
class Running:
    server: ServerProcess
    ids: Identities
    admin: Admin
    channel: grpc.Channel


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp_path: Path = tmp_path_factory.mktemp("matrix")
    ids = role_users()
    server = start_auth_server(tmp_path, ids)
    try:
        with server.channel() as channel:
            admin = Admin(f"http://{server.ready['http']}", ids.passwords["root"], channel)
            admin.job()  # queue `q` exists from the start (TCP commands name it)
            try:
                yield Running(server, ids, admin, channel)
            finally:
                admin.close()
    finally:
        assert server.stop() == 0


SURFACES: dict[str, Callable[[Running], list[Op]]] = {
    "grpc": lambda r: grpc_ops(r.channel),
    "http": lambda r: http_ops(f"http://{r.server.ready['http']}"),
    "tcp": lambda r: tcp_ops(r.server.ready["tcp"]),
    "dashboard": lambda r: dashboard_ops(f"http://{r.server.ready['http']}"),
}


@pytest.mark.slow
@pytest.mark.parametrize("surface", list(SURFACES))
def test_only_the_allowed_succeed_and_the_refused_change_nothing(
    running: Running, surface: str
) -> None:
    admin, rows = running.admin, callers(running.ids)
    wrong: list[str] = []
    seen = {OK: 0, DENIED: 0, UNAUTHENTICATED: 0}
    for op in SURFACES[surface](running):
        refused = [row for row in rows if row.expected(op) != OK]
        target = op.prepare(admin)
        before = admin.snapshot()
        for row in refused:
            outcome = op.attempt(target, row.creds)
            seen[outcome] += 1
            if outcome != row.expected(op):
                wrong.append(f"{op.name} by {row.label}: {outcome}, expected {row.expected(op)}")
        after = admin.snapshot()
        if after != before:
            changed = sorted(key for key in before if before[key] != after[key])
            wrong.append(f"{op.name}: a refused attempt changed {changed}: {after}")
        for row in rows:
            if row.expected(op) == OK:
                outcome = op.attempt(op.prepare(admin), row.creds)
                seen[outcome] += 1
                if outcome != OK:
                    wrong.append(f"{op.name} by {row.label}: {outcome}, expected ok")
    assert not wrong, "\n".join(wrong)
    assert all(seen.values()), seen  # each outcome happened (the matrix is not vacuous)
