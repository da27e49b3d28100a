"""`[auth]`, `[tls]`, `[[users]]` and `[[namespaces]]`, and how the server decides auth is on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shoal._security import build_access
from shoal.config import load_config
from shoal.core.access import AccessService
from shoal.core.auth import ANONYMOUS, Action, Principal, Role, hash_password
from shoal.core.errors import ConfigError, PermissionDenied
from shoal.stores.memory import MemoryStore

HASH = hash_password("correct horse battery")


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None, **flags: object) -> object:
    path = tmp_path / "shoal.toml"
    path.write_text(text)
    return load_config(path, env=env or {}, overrides=flags).config


def test_users_and_namespaces_are_read(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        f"""
[[namespaces]]
name = "billing"
description = "money"

[[users]]
name = "ops"
password_hash = "{HASH}"
grants = {{ "*" = "admin" }}

[[users]]
name = "ci"
password_env = "CI_PASSWORD"
grants = {{ billing = ["producer", "viewer"] }}
""",
        env={"CI_PASSWORD": "from-the-environment"},
    )
    identities = config.identities  # type: ignore[attr-defined]
    assert [n.name for n in identities.namespaces] == ["billing"]
    ops, ci = identities.users
    assert ops.grants == {"*": frozenset({Role.ADMIN})} and ops.password_hash == HASH
    assert ci.grants == {"billing": frozenset({Role.PRODUCER, Role.VIEWER})}
    assert ci.password_env == "CI_PASSWORD" and "from-the" not in repr(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[users]]\nname = "a"\ngrants = { x = "admin" }\n', "exactly one of password_hash"),
        (f'[[users]]\nname = "a"\npassword_hash = "{HASH}"\n', "grants"),
        (f'[[users]]\nname = "a"\npassword_hash = "{HASH}"\ngrants = {{ x = "boss" }}\n', "role"),
        ('[[users]]\nname = "a"\npassword_hash = "plain"\ngrants = { x = "admin" }\n', "hash"),
        ('[[users]]\nname = "a"\npassword_env = "NOPE"\ngrants = { x = "admin" }\n', "NOPE"),
        (f'[[users]]\nname = "a"\npassword_hash = "{HASH}"\ngrants = {{}}\nrole = 1\n', "role"),
        ('[[namespaces]]\nname = "bad name"\n', "namespaces[0]"),
        ('[auth]\nenabled = "maybe"\n', "auth.enabled"),
        ('[auth]\nauthorizer = "no_colon"\n', "module:name"),
        ('[tls]\ngrpc_cert = "/nonexistent.pem"\n', "go together"),
        ('[tls]\ngrpc_client_ca = "/x.pem"\n', "grpc_client_ca"),
    ],
)
def test_bad_identity_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        _load(tmp_path, text)


def test_a_public_address_needs_users_or_auth_on_or_insecure(tmp_path: Path) -> None:
    public = {"server.grpc_listen": "0.0.0.0:50051"}
    with pytest.raises(ConfigError, match="not a loopback address"):
        _load(tmp_path, "", **public)
    assert _load(tmp_path, '[auth]\nenabled = "on"\n', **public)
    users = f'[[users]]\nname = "ops"\npassword_hash = "{HASH}"\ngrants = {{ "*" = "admin" }}\n'
    assert _load(tmp_path, users, **public)
    with pytest.raises(ConfigError, match="not a loopback address"):
        _load(tmp_path, '[auth]\nenabled = "off"\n' + users, **public)
    assert _load(tmp_path, '[auth]\nenabled = "off"\n', **public, **{"server.insecure": "true"})


def test_tls_settings_come_from_the_environment_too(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    env = {"SHOAL_TLS_TCP_CERT": str(cert), "SHOAL_TLS_TCP_KEY": str(key)}
    config = load_config(None, env=env).config
    assert config.tls.pair("tcp") == (str(cert), str(key)) and config.tls.pair("grpc") is None


def _access(tmp_path: Path, text: str, store: MemoryStore) -> AccessService:
    config = _load(tmp_path, text)
    return asyncio.run(build_access(config, store))  # type: ignore[arg-type]


def test_auto_turns_auth_on_when_users_exist(tmp_path: Path) -> None:
    assert not _access(tmp_path, "", MemoryStore()).enabled
    users = f'[[users]]\nname = "ops"\npassword_hash = "{HASH}"\ngrants = {{ "*" = "admin" }}\n'
    store = MemoryStore()
    access = _access(tmp_path, users + '[[namespaces]]\nname = "billing"\n', store)
    assert access.enabled
    principal = asyncio.run(access.authenticate_password("ops", "correct horse battery"))
    assert principal.roles_in("billing") == {Role.ADMIN}
    assert [n.name for n in asyncio.run(store.list_namespaces())] == ["billing"]
    # a user added to the store later (shoal users add) keeps auth on with an empty file
    assert _access(tmp_path, "", store).enabled
    assert not _access(tmp_path, '[auth]\nenabled = "off"\n', store).enabled


def test_the_authorizer_hook_refines_decisions(tmp_path: Path) -> None:
    config = '[auth]\nauthorizer = "tests.unit.test_auth_config:no_deletes"\n'
    access = _access(tmp_path, config, MemoryStore())
    access.require(ANONYMOUS, Action.ENQUEUE, "default")
    with pytest.raises(PermissionDenied):
        access.require(ANONYMOUS, Action.DELETE_JOB, "default")
    with pytest.raises(ConfigError, match=r"auth\.authorizer"):
        _access(
            tmp_path, '[auth]\nauthorizer = "tests.unit.test_auth_config:nothing"\n', MemoryStore()
        )


def no_deletes(principal: Principal, action: Action, namespace: str, decision: bool) -> bool:
    """An authorizer hook: nobody deletes jobs."""
    return decision and action is not Action.DELETE_JOB
