"""The configuration layers, their checks, and the messages that name a bad key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shoal.config import (
    ListenAddress,
    ShoalConfig,
    TcpConfig,
    load_config,
    parse_listen,
    parse_store_url,
)
from shoal.core.errors import ConfigError
from shoal.core.retry import RetryPolicy


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shoal.toml"
    path.write_text(text)
    return path


def test_defaults_without_file_env_or_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./shoal.toml here
    loaded = load_config(env={})
    assert loaded.config == ShoalConfig()
    assert loaded.config.server.grpc_listen.startswith("127.0.0.1:")
    assert loaded.sources["store.url"] == "default"


def test_layers_override_in_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[store]\nurl = "memory://"\n[service]\nlease_ttl = "30s"\nheartbeat_interval = 5\n'
        "[limits]\nmax_batch = 50\n",
    )
    env = {"SHOAL_SERVICE_LEASE_TTL": "1m", "SHOAL_LIMITS_MAX_BATCH": "70"}
    loaded = load_config(path, env=env, overrides={"limits.max_batch": "90"})
    config = loaded.config
    assert config.store.url == "memory://"
    assert config.service.lease_ttl == 60.0
    assert config.service.heartbeat_interval == 5.0
    assert config.limits.max_batch == 90
    assert loaded.sources["store.url"] == f"file {path}"
    assert loaded.sources["service.lease_ttl"] == "env SHOAL_SERVICE_LEASE_TTL"
    assert loaded.sources["limits.max_batch"] == "flag limits.max_batch"
    assert loaded.sources["service.retention"] == "default"


def test_config_file_from_the_environment_and_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, '[log]\nlevel = "debug"\n')
    assert load_config(env={"SHOAL_CONFIG": str(path)}).config.log.level == "debug"
    monkeypatch.chdir(tmp_path)
    assert load_config(env={}).config.log.level == "debug"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[servr]\n", "unknown section 'servr' in file {path}; did you mean 'server'?"),
        ("[service]\nlease_tll = 1\n", "did you mean 'service.lease_ttl'?"),
        ("[queues.emails]\nmax_attempt = 2\n", "did you mean 'queues.emails.max_attempts'?"),
        ("[service]\nlease_ttl = 'often'\n", "service.lease_ttl (from file {path})"),
        ("[service]\nlease_ttl = -1\n", "must be a finite number >= 0"),
        ("[limits]\nmax_batch = 1.5\n", "limits.max_batch"),
        ("[server]\ninsecure = 'maybe'\n", "server.insecure"),
        ("store = 1\n", "store (from file {path}): must be a table"),
        ("[service]\nheartbeat_interval = 20\n", "heartbeat_interval must be shorter"),
        ("[service]\nlookahead = 30\n", "service.lookahead must be between 0 and 1s"),
        ("[service]\nlookahead = 1\nlease_ttl = 1.5\nheartbeat_interval = 0.5\n", "at most half"),
        ("[log]\nformat = 'xml'\n", "log.format must be text or json"),
        ("[queues.a]\nbackoff = 'linear'\n", "queues: bad backoff 'linear'"),
        ("[queues.a]\nmax_attempts = 0\n", "queues.a.max_attempts must be 1..1000"),
        ("[server\n", "is not valid TOML"),
    ],
)
def test_bad_file_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert message.format(path=path) in raised.value.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml", env={})


def test_unknown_environment_key_names_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'store.url'\?"):
        load_config(env={"SHOAL_STORE_UR": "memory://"})
    with pytest.raises(ConfigError, match=r"shoal\.toml only"):
        load_config(env={"SHOAL_QUEUES_A_MAX_ATTEMPTS": "2"})
    # other tools' variables are theirs
    assert load_config(env={"SHOAL_URL": "x", "SHOAL_TEST_POSTGRES_URL": "y"}).config


def test_flags_must_be_dotted(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SECTION\.KEY"):
        load_config(env={}, overrides={"lease_ttl": "1"})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("15s", 15.0), ("2m", 120.0), ("1.5h", 5400.0), ("7d", 604800.0), ("3", 3.0)],
)
def test_durations(text: str, seconds: float) -> None:
    config = load_config(env={}, overrides={"service.retention": text}).config
    assert config.service.retention == seconds


def test_queue_policies_become_service_settings(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[queues.default]\nmax_attempts = 7\n"
        "[queues.emails]\nmax_attempts = 5\nbackoff = 'fixed:base=10'\ntimeout = 30\n",
    )
    settings = load_config(path, env={}).config.service_settings()
    assert settings.policy("emails").max_attempts == 5
    assert settings.policy("emails").backoff == RetryPolicy.parse("fixed:base=10")
    assert settings.policy("emails").timeout == 30.0
    assert settings.policy("anything").max_attempts == 7
    assert settings.policy("anything").timeout is None


def test_the_lookahead_reaches_the_service_settings(tmp_path: Path) -> None:
    assert load_config(None, env={}).config.service_settings().lookahead == 0.1
    path = _write(tmp_path, "[service]\nlookahead = '20ms'\n")
    assert load_config(path, env={}).config.service_settings().lookahead == 0.02


def test_store_urls() -> None:
    assert parse_store_url("memory://").scheme == "memory"
    assert parse_store_url("sqlite:///rel/shoal.db").path == "rel/shoal.db"
    assert parse_store_url("sqlite:////abs/shoal.db").path == "/abs/shoal.db"
    assert parse_store_url("postgresql://u:p@h:5432/db").path == "u:p@h:5432/db"
    with pytest.raises(ConfigError, match="names no file"):
        parse_store_url("sqlite:///")
    with pytest.raises(ConfigError, match="did you mean 'sqlite'"):
        parse_store_url("sqlit:///x.db")
    with pytest.raises(ConfigError, match="is not a URL"):
        parse_store_url("shoal.db")


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:0") == ListenAddress("127.0.0.1", 0)
    assert parse_listen("[::1]:50051") == ListenAddress("::1", 50051)
    assert parse_listen("localhost:1").is_loopback()
    assert not parse_listen("0.0.0.0:1").is_loopback()
    assert not parse_listen("example.org:1").is_loopback()
    for bad in ("50051", ":50051", "h:port", "h:70000"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_listen(bad)


def test_non_loopback_needs_insecure() -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        load_config(env={}, overrides={"server.grpc_listen": "0.0.0.0:50051"})
    config = load_config(
        env={}, overrides={"server.grpc_listen": "0.0.0.0:50051", "server.insecure": "true"}
    ).config
    assert config.server.insecure


def test_config_show_prints_values_and_sources(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shoal.cli import app

    path = _write(tmp_path, "service.lease_ttl = '30s'\nqueues.emails = { max_attempts = 5 }\n")
    result = CliRunner().invoke(
        app, ["config", "show", "--config", str(path), "--set", "limits.max_batch=9"], env={}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"service.lease_ttl = 30.0  (file {path})" in lines
    assert "queues.emails.max_attempts = 5  (file " + str(path) + ")" in lines
    assert "limits.max_batch = 9  (flag limits.max_batch)" in lines
    assert "server.grpc_listen = '127.0.0.1:50051'  (default)" in lines
    bad = CliRunner().invoke(app, ["config", "show", "--set", "servr.x=1"], env={})
    assert bad.exit_code == 2 and "did you mean 'server'?" in bad.output


def test_forget_workers_after_reaches_the_service_and_is_checked() -> None:
    assert load_config(env={}).config.service_settings().forget_workers_after == 3600.0
    config = load_config(env={}, overrides={"service.forget_workers_after": "2h"}).config
    assert config.service_settings().forget_workers_after == 7200.0
    assert load_config(env={}, overrides={"service.forget_workers_after": "0"}).config
    with pytest.raises(ConfigError, match="forget_workers_after"):
        load_config(env={}, overrides={"service.forget_workers_after": "10s"})


#: Numeric settings that need a value above 0, each with values it must refuse (a flag's
#: text, or a TOML value). A reap_interval of 0 made an idle server spin on its reaper; a
#: limit of 0 or below refused every request, and one past 32 bits cannot go on the wire.
_REFUSED = [
    ("limits.max_batch", "0"),
    ("limits.max_batch", "-1"),
    ("limits.max_batch", str(2**32)),
    ("limits.max_page", "0"),
    ("limits.max_page", "-1"),
    ("limits.max_payload_bytes", "0"),
    ("limits.max_payload_bytes", "-1"),
    ("limits.max_attempts", "0"),
    ("limits.max_attempts", str(2**31)),
    ("service.reap_interval", "0"),
    ("service.reap_interval", "0ms"),
    ("service.reap_interval", "nan"),
    ("service.reap_interval", "inf"),
    ("service.reap_interval", "-1"),
    ("service.lease_ttl", "0"),
    ("service.heartbeat_interval", "0"),
    ("service.retention", "-1"),
    ("service.forget_workers_after", "-1"),
    ("server.grace_period", "-1"),
    ("server.grace_period", "nan"),
    ("server.max_message_bytes", "0"),
    ("server.max_message_bytes", "-1"),
    ("server.max_message_bytes", str(2**31)),
    ("auth.session_ttl", "0"),
    ("auth.audit_retention", "-1"),
]


@pytest.mark.parametrize(("key", "value"), _REFUSED)
def test_a_number_out_of_range_is_refused_naming_its_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(env={}, overrides={key: value})
    assert raised.value.message.startswith(f"{key} "), raised.value.message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("limits.max_batch", "0"),
        ("limits.max_page", "-1"),
        ("service.reap_interval", "0"),
        ("service.reap_interval", "nan"),
        ("service.reap_interval", "-inf"),
        ("auth.session_ttl", "0"),
    ],
)
def test_a_number_out_of_range_in_the_file_is_refused_naming_its_key(
    tmp_path: Path, key: str, value: str
) -> None:
    section, name = key.split(".")
    path = _write(tmp_path, f"[{section}]\n{name} = {value}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert raised.value.message.startswith(f"{key} (from file {path})"), raised.value.message


def test_zero_keeps_its_documented_meaning_and_the_bounds_load() -> None:
    zeros = {
        "server.grace_period": "0",  # stop at once
        "service.retention": "0",  # finished jobs go at the next retention pass
        "service.lookahead": "0",  # off
        "service.forget_workers_after": "0",  # kept until their workers leave
        "auth.audit_retention": "0",  # kept for ever
        "queues.a.timeout": "0",  # no limit
    }
    assert load_config(env={}, overrides=zeros).config.server.grace_period == 0.0
    smallest = {
        "limits.max_batch": "1",
        "limits.max_page": "1",
        "limits.max_payload_bytes": "1",
        "limits.max_attempts": "1",
        "service.reap_interval": "1ms",
        "auth.session_ttl": "1",
        "server.max_message_bytes": "2",
    }
    assert load_config(env={}, overrides=smallest).config.limits.max_batch == 1
    largest = {"server.max_message_bytes": str(2**31 - 1), "limits.max_attempts": str(2**31 - 1)}
    assert load_config(env={}, overrides=largest).config.limits.max_attempts == 2**31 - 1


def test_the_cli_exits_with_the_config_code_on_a_bad_number() -> None:
    from typer.testing import CliRunner

    from shoal.cli import app

    # `config show` loads as `shoal server` does (`cli._common.load`), without serving
    result = CliRunner().invoke(app, ["config", "show", "--set", "service.reap_interval=0"], env={})
    assert result.exit_code == 2, result.output
    assert "service.reap_interval" in result.output


def test_the_tcp_section_configures_the_tcp_surface(tmp_path: Path) -> None:
    # docs/tcp-protocol.md named a [tcp] section of shoal.toml that did not exist: test mode,
    # DISPATCH, the delay policy and a done job's timeout could not be set for a server
    path = tmp_path / "shoal.toml"
    path.write_text('[tcp]\ntest_mode = true\ndelay_policy = "IGNORE"\njob_timeout = "10m"\n')
    loaded = load_config(path, env={}, overrides={"tcp.max_connections": "50"})
    tcp = loaded.config.tcp
    assert (tcp.test_mode, tcp.delay_policy, tcp.job_timeout) == (True, "IGNORE", 600.0)
    assert (tcp.max_connections, tcp.allow_dispatch, tcp.renew_leases) == (50, False, True)
    assert load_config(env={}).config.tcp == TcpConfig()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tcp.max_connections", "0"),
        ("tcp.max_line", "0"),
        ("tcp.max_listed_jobs", "0"),
        ("tcp.auth_timeout", "0"),
        ("tcp.idle_flush", "0"),
        ("tcp.delay_policy", "SOMETIMES"),
    ],
)
def test_bad_tcp_settings_are_refused_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}"):
        load_config(env={}, overrides={key: value})


def test_the_tcp_section_and_the_tcp_settings_agree() -> None:
    # the server builds the listener's TcpSettings from the section, key for key
    from dataclasses import asdict

    from shoal.protocols.tcp.server import TcpSettings

    assert TcpSettings(**asdict(TcpConfig())) == TcpSettings()
