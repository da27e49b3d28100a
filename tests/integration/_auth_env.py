"""A `shoal server` subprocess with authentication on: users declared in its shoal.toml, tokens
made in its store before it starts, certificates made here (the `cryptography` package).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.core.auth import Role, hash_password, hash_token, new_api_token
from shoal.core.identity import ApiToken
from shoal.stores.sqlite import SqliteStore

from ._grpc_server import ServerProcess, start_server

#: The namespace every matrix operation acts in, and another one.
NS = "ns1"
OTHER_NS = "ns2"


@dataclass
class Identities:
    """The secrets a test may use, by name."""

    passwords: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    grants: dict[str, dict[str, frozenset[Role]]] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        """Every password and token (what must never appear anywhere after its creation)."""
        return [*self.passwords.values(), *self.tokens.values()]


def role_users() -> Identities:
    """`root` (admin of every namespace) and one user per role in `NS`, with strong passwords,
    and tokens: one per role in `NS`, an admin token of `OTHER_NS`, and an expired one.
    """
    ids = Identities()
    ids.passwords["root"] = "root-" + new_api_token()[6:30]
    ids.grants["root"] = {"*": frozenset({Role.ADMIN})}
    for role in Role:
        name = f"u-{role.value}"
        ids.passwords[name] = f"{role.value}-" + new_api_token()[6:30]
        ids.grants[name] = {NS: frozenset({role})}
        ids.tokens[f"t-{role.value}"] = new_api_token()
        ids.grants[f"t-{role.value}"] = {NS: frozenset({role})}
    ids.tokens["t-other"] = new_api_token()
    ids.grants["t-other"] = {OTHER_NS: frozenset({Role.ADMIN})}
    ids.tokens["t-expired"] = new_api_token()
    ids.grants["t-expired"] = {"*": frozenset({Role.ADMIN})}
    return ids


def _toml_grants(grants: Mapping[str, frozenset[Role]]) -> str:
    items = ", ".join(
        f'"{ns}" = [{", ".join(repr(r.value) for r in sorted(roles))}]'.replace("'", '"')
        for ns, roles in grants.items()
    )
    return "{ " + items + " }"


def write_config(tmp_path: Path, ids: Identities, extra: str = "") -> Path:
    """A shoal.toml declaring `NS`, `OTHER_NS` and the users of `ids` (hashed passwords)."""
    lines = ["[log]", 'level = "debug"', "[service]", 'reap_interval = "100ms"', extra]
    for namespace in (NS, OTHER_NS):
        lines += ["[[namespaces]]", f'name = "{namespace}"']
    for name, password in ids.passwords.items():
        lines += [
            "[[users]]",
            f'name = "{name}"',
            f'password_hash = "{hash_password(password)}"',
            f"grants = {_toml_grants(ids.grants[name])}",
        ]
    path = tmp_path / "shoal.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def _seed_tokens(db: Path, ids: Identities) -> None:
    store = SqliteStore(str(db))
    await store.open()
    try:
        now = time.time()
        for number, (name, token) in enumerate(ids.tokens.items()):
            expired = name == "t-expired"
            await store.save_token(
                ApiToken(
                    id=f"tok{number:04d}",
                    owner="root",
                    token_hash=hash_token(token),
                    grants=ids.grants[name],
                    created_at=now - 3600,
                    expires_at=now - 60 if expired else None,
                )
            )
    finally:
        await store.close()


def start_auth_server(
    tmp_path: Path,
    ids: Identities,
    *,
    extra: str = "",
    listeners: bool = True,
    native: bool = False,
) -> ServerProcess:
    """Seed the tokens, write the config, start the server (gRPC, HTTP and TCP on loopback;
    the native framing too with `native`).
    """
    db = tmp_path / "shoal.db"
    asyncio.run(_seed_tokens(db, ids))
    config = write_config(tmp_path, ids, extra)
    args = ["--config", str(config)]
    if listeners:
        args += ["--http-listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0"]
    if native:
        args += ["--native-listen", "127.0.0.1:0"]
    return start_server(tmp_path, *args, store=f"sqlite:///{db}")


# --- certificates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """PEM files of a CA, a server certificate for 127.0.0.1 and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Path:
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def make_pki(directory: Path, client_name: str) -> Pki:
    """A throw-away CA, a server certificate (127.0.0.1, localhost) and a client certificate
    whose common name is `client_name`, all signed by the CA.
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("shoal test CA", ca_key, None, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate("127.0.0.1", server_key, (ca_cert.subject, ca_key), server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _certificate(client_name, client_key, (ca_cert.subject, ca_key))
    _write(directory / "ca.pem", ca_cert, ca_key)
    _write(directory / "server.pem", server_cert, server_key)
    _write(directory / "client.pem", client_cert, client_key)
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
