"""Hostile input to the real console script: one `error: CODE: message` line, the right exit
code, nothing half-written. Each case was a traceback or a lost file before its fix."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import time
from pathlib import Path

import pytest
from _cli_helpers import JOTKIT

from jotkit.jose import Key


def run(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    file_size_limit: int | None = None,
) -> subprocess.CompletedProcess[bytes]:
    def limit() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [str(JOTKIT), *args],
        env={**os.environ, **(env or {})},
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        preexec_fn=limit,
        timeout=120,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[bytes], code: str) -> str:
    error = result.stderr.decode(errors="replace")
    assert error.startswith(f"error: {code}: "), error
    assert error.count("\n") == 1 and "Traceback" not in error, error
    return error


def test_a_failed_forced_write_keeps_the_old_key_and_leaves_no_fragment(tmp_path: Path) -> None:
    victim = tmp_path / "victim.pem"
    victim.write_bytes(Key.generate("ES256").to_pem(private=True))
    before = victim.read_bytes()
    # A 4096-bit RSA PEM is ~3.2 KiB: a 1 KiB file size limit makes the write fail midway.
    result = run(
        "keys", "generate", "--alg", "RS256", "--rsa-bits", "4096",
        "--out", str(victim), "--force", file_size_limit=1024,
    )  # fmt: skip
    assert result.returncode == 2
    one_line(result, "ERR_FILE_UNWRITABLE")
    assert victim.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.pem"]


def test_a_failed_new_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "new.pem"
    result = run(
        "keys", "generate", "--alg", "RS256", "--rsa-bits", "4096",
        "--out", str(target), file_size_limit=1024,
    )  # fmt: skip
    assert result.returncode == 2
    one_line(result, "ERR_FILE_UNWRITABLE")
    assert not target.exists()


def test_force_does_not_replace_what_is_not_a_regular_file() -> None:
    result = run("keys", "generate", "--out", "/dev/full", "--force")
    assert result.returncode == 2
    one_line(result, "ERR_FILE_UNWRITABLE")
    assert Path("/dev/full").is_char_device()


def test_a_forced_write_replaces_the_key_whole(tmp_path: Path) -> None:
    target = tmp_path / "k.pem"
    target.write_text("old")
    assert run("keys", "generate", "--out", str(target), "--force").returncode == 0
    assert Key.from_pem(target.read_bytes()).is_private
    assert target.stat().st_mode & 0o777 == 0o600


def test_stdout_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:
        result = run("keys", "generate", stdout=full.fileno())
    assert result.returncode == 1
    one_line(result, "ERR_OUTPUT")


def test_a_closed_stdin_is_one_line() -> None:
    result = subprocess.run(
        f"exec {JOTKIT} token decode - <&-", shell=True, capture_output=True, timeout=60
    )
    assert result.returncode == 1
    one_line(result, "ERR_UNEXPECTED")


def test_a_secret_that_is_not_text_is_one_line() -> None:
    secret = os.fsdecode(b"\xff\xfe" + b"0" * 40)  # surrogate-escaped, as Python reads it
    result = run("token", "sign", "--secret-env", "S", "--exp", "1m", env={"S": secret})
    assert result.returncode in (1, 2)
    assert "Traceback" not in result.stderr.decode(errors="replace")
    assert result.stderr.decode(errors="replace").count("\n") == 1


@pytest.mark.parametrize("exp", ["9" * 400, "3651d", "١٢"])
def test_an_absurd_duration_is_a_usage_error(exp: str) -> None:
    result = run("token", "sign", "--secret-env", "S", "--exp", exp, env={"S": "s" * 32})
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("ahead", ["inf", "nan", "-5", "1e308"])
def test_rotate_refuses_a_publish_ahead_that_is_no_time_and_stores_nothing(
    tmp_path: Path, ahead: str
) -> None:
    env = {"JOTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}"}
    result = run("keys", "rotate", "--publish-ahead", ahead, env=env)
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr
    listed = run("keys", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == b""


@pytest.mark.parametrize("command", [("keys", "list"), ("keys", "rotate"), ("users", "list")])
def test_a_database_that_cannot_be_opened_is_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    (tmp_path / "file").write_text("not a directory")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    for url in (f"sqlite:///{tmp_path / 'file' / 'x.db'}", f"sqlite:///{garbage}"):
        result = run(*command, env={"JOTKIT_DATABASE_URL": url})
        assert result.returncode == 1, result.stderr
        one_line(result, "ERR_STORE")


@pytest.mark.parametrize(
    "email", ["@", "a@b@c", " a@b.c", "a@b.c ", "x\x01y@z", "x\ny@z", "no-at-sign"]
)
def test_users_add_refuses_what_the_api_would_refuse(tmp_path: Path, email: str) -> None:
    env = {"JOTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}"}
    result = subprocess.run(
        [str(JOTKIT), "users", "add", email, "--password-stdin"],
        input=b"password1\n",
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"not an email address" in result.stderr


def test_users_errors_are_one_line_with_their_code(tmp_path: Path) -> None:
    env = {"JOTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}", "JOTKIT_ARGON2_TIME_COST": "1"}
    result = subprocess.run(
        [str(JOTKIT), "users", "add", "a@b.c", "--password-stdin"],
        input=b"short\n",
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1
    one_line(result, "ERR_PASSWORD_TOO_SHORT")
    missing = run("users", "disable", "nobody@b.c", env=env)
    assert missing.returncode == 1
    one_line(missing, "ERR_NOT_FOUND")


def test_serve_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), "--database", f"sqlite:///{tmp_path / 'j.db'}")
    assert result.returncode == 1
    one_line(result, "ERR_LISTEN")


def test_serve_on_an_unknown_host_is_one_line(tmp_path: Path) -> None:
    env = {"JOTKIT_HOST": "no-such-host.invalid"}
    result = run("serve", "--database", f"sqlite:///{tmp_path / 'j.db'}", env=env)
    assert result.returncode == 1
    one_line(result, "ERR_LISTEN")


@pytest.mark.parametrize("ahead", ["0", "30", "364"])
def test_rotate_refuses_a_publish_ahead_remote_verifiers_would_miss(
    tmp_path: Path, ahead: str
) -> None:
    env = {"JOTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}"}
    result = run("keys", "rotate", "--publish-ahead", ahead, env=env)
    assert result.returncode == 2
    assert b"ERR_PUBLISH_AHEAD_TOO_SHORT" in result.stderr and b"365 s" in result.stderr
    assert run("keys", "list", env=env).stdout == b""  # nothing stored


def test_rotate_takes_a_short_publish_ahead_with_emergency(tmp_path: Path) -> None:
    env = {"JOTKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}"}
    assert run("keys", "rotate", "--publish-ahead", "365", env=env).returncode == 0
    emergency = run("keys", "rotate", "--emergency", env=env)
    assert emergency.returncode == 0, emergency.stderr
    signs_from = emergency.stdout.decode().split("signs from ")[1].strip()
    assert signs_from <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    # The first key (made on load), the 365 s one, the emergency one.
    assert len(run("keys", "list", env=env).stdout.splitlines()) == 3
