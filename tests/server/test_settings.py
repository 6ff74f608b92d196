"""Configuration: defaults, TOML file, environment, options, and refusals of unsafe values."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from jotkit.server.settings import ConfigError, load_settings, min_publish_ahead
from servers import JOTKIT


def test_defaults_need_nothing_but_give_a_working_issuer() -> None:
    settings = load_settings(environ={})
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.algorithm == "ES256" and settings.access_ttl_seconds == 900
    assert settings.database_url.startswith("sqlite:///") and settings.audiences == ("jotkit",)


def test_environment_overrides_the_file_and_options_override_both(tmp_path: Path) -> None:
    config = tmp_path / "jotkit.toml"
    config.write_text('access_ttl_seconds = 300\nport = 9000\naudiences = ["a", "b"]\n')
    settings = load_settings(config_file=config, environ={"JOTKIT_PORT": "9100"})
    assert settings.access_ttl_seconds == 300 and settings.audiences == ("a", "b")
    assert settings.port == 9100 and settings.issuer == "http://127.0.0.1:9100"
    settings = load_settings(
        config_file=config, environ={"JOTKIT_PORT": "9100"}, overrides={"port": 9200}
    )
    assert settings.port == 9200


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"JOTKIT_ALGORITHM": "none"}, "JOTKIT_ALGORITHM"),
        ({"JOTKIT_ALGORITHM": "HS256", "JOTKIT_HS256_SECRET": "short"}, "32 bytes"),
        ({"JOTKIT_MASTER_KEY": "short"}, "JOTKIT_MASTER_KEY"),
        ({"JOTKIT_PORT": "eighty"}, "JOTKIT_PORT"),
        ({"JOTKIT_COOKIE_MODE": "maybe"}, "JOTKIT_COOKIE_MODE"),
        ({"JOTKIT_ACCESS_TTL_SECONDS": "0"}, "JOTKIT_ACCESS_TTL_SECONDS"),
        ({"JOTKIT_DATABASE_URL": "mysql://x"}, "JOTKIT_DATABASE_URL"),
        ({"JOTKIT_REGISTRATION": "sometimes"}, "JOTKIT_REGISTRATION"),
        ({"JOTKIT_DPOP": "sometimes"}, "JOTKIT_DPOP must be 'optional' or 'required'"),
        ({"JOTKIT_DPOP_NONCE_SECONDS": "0"}, "JOTKIT_DPOP_NONCE_SECONDS must be positive"),
        ({"JOTKIT_DPOP_IAT_WINDOW_SECONDS": "0"}, "JOTKIT_DPOP_IAT_WINDOW_SECONDS"),
        # URLs that parse wrong: each was a traceback from SQLAlchemy or redis-py at start.
        ({"JOTKIT_DATABASE_URL": "postgresql://[::1/x"}, "JOTKIT_DATABASE_URL is not a valid"),
        ({"JOTKIT_DATABASE_URL": "postgresql://h:99999/db"}, "JOTKIT_DATABASE_URL is not a valid"),
        ({"JOTKIT_REDIS_URL": "redis://[::1/x"}, "JOTKIT_REDIS_URL is not a valid"),
        ({"JOTKIT_REDIS_URL": "http://127.0.0.1:6379"}, "JOTKIT_REDIS_URL must be a redis://"),
        ({"JOTKIT_ISSUER": "ftp://auth.example"}, "JOTKIT_ISSUER must be a http://"),
        ({"JOTKIT_ISSUER": "https://auth.example\nX: y"}, "JOTKIT_ISSUER is not a valid URL"),
        ({"JOTKIT_ISSUER": "auth.example"}, "JOTKIT_ISSUER must be a http://"),
        # Numbers out of any sense: each reached the server, argon2 or the OS as a traceback.
        ({"JOTKIT_PORT": "-1"}, "JOTKIT_PORT must be between 0 and"),
        ({"JOTKIT_PORT": "70000"}, "JOTKIT_PORT must be between 0 and 65535"),
        ({"JOTKIT_ARGON2_PARALLELISM": "0"}, "JOTKIT_ARGON2_PARALLELISM"),
        ({"JOTKIT_ARGON2_TIME_COST": "0"}, "JOTKIT_ARGON2_PARALLELISM must be 1-64, JOTKIT_ARGON2"),
        ({"JOTKIT_ARGON2_MEMORY_KIB": "1"}, "JOTKIT_ARGON2_MEMORY_KIB"),
        ({"JOTKIT_ARGON2_MEMORY_KIB": "99999999999"}, "JOTKIT_ARGON2_MEMORY_KIB"),
        ({"JOTKIT_HEARTBEAT_SECONDS": "nan"}, "JOTKIT_HEARTBEAT_SECONDS"),
        ({"JOTKIT_REUSE_GRACE_SECONDS": "inf"}, "JOTKIT_REUSE_GRACE_SECONDS"),
        ({"JOTKIT_KEY_ROTATION_DAYS": "-1"}, "JOTKIT_KEY_ROTATION_DAYS"),
        ({"JOTKIT_ACCESS_TTL_SECONDS": "99999999999999999999999"}, "JOTKIT_ACCESS_TTL_SECONDS"),
    ],
)
def test_unsafe_or_malformed_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_url_settings_that_parse_are_accepted() -> None:
    settings = load_settings(
        environ={
            "JOTKIT_DATABASE_URL": "postgresql+psycopg://u:p@[::1]:5432/db",
            "JOTKIT_REDIS_URL": "rediss://cache.internal:6380/0",
            "JOTKIT_ISSUER": "https://auth.example.com/tenant-1/",
        }
    )
    assert settings.issuer == "https://auth.example.com/tenant-1"


@pytest.mark.parametrize(
    "text",
    [
        b"port = inf\n",
        b"port = 20001.9\n",
        b'host = "\xff\xfe"\n',
        b"x = " + b"[" * 3000 + b"]" * 3000,
    ],
)
def test_a_toml_file_that_breaks_the_parser_or_the_types_is_refused(
    tmp_path: Path, text: bytes
) -> None:
    config = tmp_path / "bad.toml"
    config.write_bytes(text)
    with pytest.raises(ConfigError):
        load_settings(config_file=config, environ={})


def test_unknown_or_invalid_toml_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("acces_ttl_seconds = 5\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(config_file=config, environ={})
    config.write_text("= broken")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_file=config, environ={})


def test_serve_help_documents_every_setting_and_its_variable() -> None:
    shown = subprocess.run([JOTKIT, "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0
    for name in ("JOTKIT_DATABASE_URL", "JOTKIT_ISSUER", "JOTKIT_COOKIE_MODE", "JOTKIT_REDIS_URL"):
        assert name in shown.stdout
    assert "--database" in shown.stdout and "--issuer" in shown.stdout


def test_serve_with_a_bad_setting_exits_2_with_one_line() -> None:
    refused = subprocess.run(
        [JOTKIT, "serve", "--port", "1", "--database", "mysql://x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ERR_CONFIG: ") and refused.stderr.count("\n") == 1


def test_a_database_that_accepts_but_never_answers_fails_the_start_instead_of_hanging(
    tmp_path: Path,
) -> None:
    # A listener that takes the TCP connection and says nothing (a frozen host behind a
    # live port): the connect has a timeout, so serve stops with one line, not a hang.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        refused = subprocess.run(
            [JOTKIT, "serve", "--port", "1", "--database", f"postgresql://x@127.0.0.1:{port}/x"],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith("error: ERR_STORE: ")


def test_the_default_publish_ahead_clears_the_safe_minimum() -> None:
    settings = load_settings(environ={})
    # max(max-age 300, 30 s kid-miss cooldown) + 5 s key reload + 60 s skew
    assert min_publish_ahead(settings) == 365 <= settings.key_publish_ahead_seconds


@pytest.mark.parametrize(
    "environ",
    [
        {"JOTKIT_KEY_PUBLISH_AHEAD_SECONDS": "0"},
        {"JOTKIT_KEY_PUBLISH_AHEAD_SECONDS": "364"},
        # A longer max-age raises the minimum past the default publish-ahead.
        {"JOTKIT_JWKS_MAX_AGE_SECONDS": "3600"},
        # Without max-age the 30 s kid-miss cooldown of remote clients still counts.
        {
            "JOTKIT_JWKS_MAX_AGE_SECONDS": "0",
            "JOTKIT_CLOCK_SKEW_SECONDS": "0",
            "JOTKIT_KEY_PUBLISH_AHEAD_SECONDS": "34",
        },
    ],
)
def test_a_publish_ahead_remote_verifiers_would_miss_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"JOTKIT_KEY_PUBLISH_AHEAD_SECONDS.*too short"):
        load_settings(environ=environ)


def test_hs256_mode_publishes_no_keys_so_publish_ahead_does_not_matter() -> None:
    secret = "s" * 32
    load_settings(
        environ={
            "JOTKIT_ALGORITHM": "HS256",
            "JOTKIT_HS256_SECRET": secret,
            "JOTKIT_KEY_PUBLISH_AHEAD_SECONDS": "0",
        }
    )


@pytest.mark.parametrize(
    ("environ", "served"),
    [
        ({}, ""),
        ({"JOTKIT_ISSUER": "https://a.example/tenant/"}, "/tenant"),
        ({"JOTKIT_ISSUER": "https://a.example/tenant", "JOTKIT_ROOT_PATH": "/"}, ""),
        ({"JOTKIT_ISSUER": "https://a.example/t", "JOTKIT_ROOT_PATH": "/inner/"}, "/inner"),
    ],
)
def test_root_path_defaults_to_the_issuers_path(environ: dict[str, str], served: str) -> None:
    assert load_settings(environ=environ).served_path == served


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"JOTKIT_ROOT_PATH": "tenant"}, "JOTKIT_ROOT_PATH"),
        ({"JOTKIT_ROOT_PATH": "/a?b"}, "JOTKIT_ROOT_PATH"),
        ({"JOTKIT_ISSUER": "https://a.example/t?x=1"}, "no query or fragment"),
        ({"JOTKIT_ISSUER": "https://a.example/t#x"}, "no query or fragment"),
    ],
)
def test_paths_that_cannot_be_served_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)
