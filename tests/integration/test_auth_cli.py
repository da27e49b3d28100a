"""`shoal users`, `shoal tokens` and `shoal namespaces` over a SQLite store, then a server that
starts with authentication on because users exist, and lets exactly them in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ._auth_ops import Creds
from ._grpc_server import start_server


def shoal(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shoal.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_hash_prints_a_scrypt_hash_and_never_the_password() -> None:
    done = shoal("users", "hash", "--password-stdin", stdin="s3cret-words\n")
    assert done.returncode == 0 and done.stdout.startswith("scrypt$")
    assert "s3cret-words" not in done.stdout + done.stderr


@pytest.mark.slow
def test_users_and_tokens_made_with_the_cli_turn_auth_on(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shoal.db'}"
    password = "ops-password-1234"
    added = shoal(
        "users",
        "add",
        "ops",
        "--store",
        store,
        "-g",
        "*=admin",
        "--password-stdin",
        stdin=password + "\n",
    )
    assert added.returncode == 0, added.stderr
    made = shoal(
        "tokens",
        "create",
        "--store",
        store,
        "--owner",
        "ci",
        "-g",
        "default=viewer",
        "--expires",
        "1d",
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("shoal_") and token not in made.stderr
    assert shoal("namespaces", "create", "billing", "--store", store).returncode == 0
    listed = shoal("users", "ls", "--store", store)
    assert "ops\t*=admin" in listed.stdout and "scrypt" not in listed.stdout
    tokens = shoal("tokens", "ls", "--store", store)
    assert "ci\tdefault=viewer" in tokens.stdout and token not in tokens.stdout
    bad = shoal(
        "users", "add", "x", "--store", store, "-g", "default=boss", "--password-stdin", stdin="p\n"
    )
    assert bad.returncode == 2 and "unknown role" in bad.stderr

    root = shoal("tokens", "create", "--store", store, "--owner", "ops", "-g", "*=admin")
    root_token = root.stdout.strip()
    server = start_server(tmp_path, "--http-listen", "127.0.0.1:0", store=store)
    try:
        with httpx.Client(base_url=f"http://{server.ready['http']}", timeout=10) as http:
            assert http.get("/api/v1/jobs").status_code == 401
            me = http.get("/api/v1/me", headers=Creds("ops", password).header()).json()
            assert me["name"] == "ops"
            viewer = Creds(token=token).header()
            assert http.get("/api/v1/jobs", headers=viewer).status_code == 200
            assert http.post("/api/v1/jobs", json={"task": "t"}, headers=viewer).status_code == 403
            audit = http.get("/api/v1/audit", headers=Creds("ops", password).header()).json()
            assert {e["action"] for e in audit} >= {"user.add", "token.create", "namespace.create"}
            assert all(e["actor"].startswith("cli:") for e in audit)
        _manage_a_running_server(f"grpc://{server.address}", store, root_token)
    finally:
        assert server.stop() == 0
    token_id = tokens.stdout.split("\t")[0]
    assert shoal("tokens", "revoke", token_id, "--store", store).returncode == 0
    assert shoal("users", "rm", "ops", "--store", store).returncode == 0
    assert shoal("users", "rm", "ops", "--store", store).returncode == 1


def _manage_a_running_server(url: str, store: str, root_token: str) -> None:
    """`--url grpc://...` manages the identities of a running server (which holds its SQLite
    file) as the holder of `$SHOAL_TOKEN`.
    """
    held = shoal("users", "ls", "--store", store)
    assert held.returncode == 4 and "shoal.db" in held.stderr  # the server holds the file
    anonymous = shoal("users", "ls", "--url", url, env={**os.environ, "SHOAL_TOKEN": ""})
    assert anonymous.returncode == 1 and "credentials are required" in anonymous.stderr
    env = {**os.environ, "SHOAL_TOKEN": root_token}
    added = shoal(
        "users",
        "add",
        "dave",
        "--url",
        url,
        "-g",
        "default=viewer",
        "--password-stdin",
        stdin="dave-password\n",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    listed = shoal("users", "ls", "--url", url, env=env)
    assert "dave\tdefault=viewer" in listed.stdout and "ops\t*=admin" in listed.stdout
    made = shoal(
        "tokens", "create", "--url", url, "--owner", "dave", "-g", "default=viewer", env=env
    )
    assert made.returncode == 0 and made.stdout.startswith("shoal_"), made.stderr
    assert "billing" in shoal("namespaces", "ls", "--url", url, env=env).stdout
    assert shoal("users", "rm", "dave", "--url", url, env=env).returncode == 0
