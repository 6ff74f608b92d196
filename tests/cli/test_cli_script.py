"""The installed `jotkit` console script, run as a user runs it: help, exit codes, colour."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
from pathlib import Path

import click
import pytest
from _cli_helpers import ANSI_ESCAPE, JOTKIT, forge, invoke, run_script

from jotkit.cli import main
from jotkit.jose import Key


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The token and keys commands defined in jotkit.cli.token and jotkit.cli.keys (serve,
    users, demo, and keys rotate/list belong to the server's part of the CLI)."""
    found = []
    for name, command in group.commands.items():
        module = getattr(command.callback, "__module__", "")
        if module not in ("jotkit.cli.token", "jotkit.cli.keys"):
            continue
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
    return found


COMMANDS = all_commands(main)


def test_the_cli_has_token_and_keys_commands() -> None:
    assert {("token", "decode"), ("token", "verify"), ("token", "sign")} <= set(COMMANDS)
    assert {("keys", "generate"), ("keys", "jwks"), ("keys", "thumbprint")} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    for flag in ("--help", "-h"):
        result = invoke(*command, flag)
        assert result.exit_code == 0
        assert result.stdout.startswith(f"Usage: main {' '.join(command)} ")


@pytest.mark.parametrize("command", [c for c in COMMANDS if len(c) == 2], ids=" ".join)
def test_an_unknown_option_is_a_usage_error_exit_2(command: tuple[str, ...]) -> None:
    result = invoke(*command, "--no-such-option")
    assert result.exit_code == 2
    assert "No such option '--no-such-option'" in result.stderr


@pytest.mark.parametrize("group", ["token", "keys"])
def test_help_documents_the_exit_codes(group: str) -> None:
    lines = [line.strip() for line in invoke(group, "--help").stdout.splitlines()]
    start = lines.index("Exit codes:")
    assert lines[start + 1].startswith("0  success")
    assert lines[start + 2].startswith("1  the operation failed")
    assert any(line.startswith("2  bad usage or unreadable input") for line in lines[start:])


def test_script_generate_jwks_sign_verify_round_trip(tmp_path: Path) -> None:
    signing = tmp_path / "signing.pem"
    assert run_script("keys", "generate", "--alg", "ES256", "--out", str(signing)).returncode == 0
    jwks = run_script("keys", "jwks", str(signing))
    assert jwks.returncode == 0
    (tmp_path / "jwks.json").write_text(jwks.stdout)
    signed = run_script("token", "sign", "--key", str(signing), "--sub", "alice", "--aud", "api",
                        "--exp", "15m")  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    valid = run_script("token", "verify", "-", "--key", str(tmp_path / "jwks.json"),
                       "--aud", "api", input=signed.stdout)  # fmt: skip
    assert valid.returncode == 0
    assert valid.stdout.startswith("valid: ES256 signature")
    invalid = run_script("token", "verify", "-", "--key", str(tmp_path / "jwks.json"),
                         "--aud", "web", input=signed.stdout)  # fmt: skip
    assert invalid.returncode == 1
    assert invalid.stdout.startswith("INVALID: ERR_JWT_INVALID_AUD: ")


def test_script_decode_json_from_stdin() -> None:
    token = forge({"alg": "ES256"}, {"sub": "alice", "password": "x"})
    result = run_script("token", "decode", "--json", input=token)
    assert result.returncode == 0
    codes = [warning["code"] for warning in json.loads(result.stdout)["warnings"]]
    assert codes == ["WARN_NO_EXP", "WARN_SECRET_CLAIM"]


def test_script_malformed_token_is_one_line_on_stderr_exit_1() -> None:
    result = run_script("token", "decode", "junk")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: ERR_JWS_MALFORMED: not a decodable JWT: a compact JWS has 3 segments, this has 1\n"
    )


def test_script_sign_refusal_is_exit_1_with_its_code(tmp_path: Path) -> None:
    key = Key.generate("ES256")
    (tmp_path / "k.pem").write_bytes(key.to_pem(private=True))
    result = run_script("token", "sign", "--key", str(tmp_path / "k.pem"), "--claim", "secret=s",
                        "--exp", "1m")  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: ERR_JWT_SECRET_CLAIM: ")


def test_script_usage_error_is_exit_2() -> None:
    assert run_script("token", "verify", "a.b.c").returncode == 2


def test_script_keys_thumbprint(tmp_path: Path) -> None:
    key = Key.generate("Ed25519")
    (tmp_path / "k.pem").write_bytes(key.to_pem())
    result = run_script("keys", "thumbprint", str(tmp_path / "k.pem"))
    assert (result.returncode, result.stdout) == (0, key.thumbprint() + "\n")


def run_in_terminal(*args: str, env: dict[str, str] | None = None) -> str:
    """Run the console script with stdout on a pseudo-terminal; return what it printed."""
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | (env or {})
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(JOTKIT), *args], stdout=follower, stderr=subprocess.PIPE, env=environment
    )
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    return output.decode()


TOKEN = forge({"alg": "HS256", "typ": "JWT"}, {"sub": "alice", "exp": 2**31})


def test_decode_colours_its_output_on_a_terminal() -> None:
    assert ANSI_ESCAPE in run_in_terminal("token", "decode", TOKEN)


def test_decode_honours_no_color_on_a_terminal() -> None:
    output = run_in_terminal("token", "decode", TOKEN, env={"NO_COLOR": "1"})
    assert '"sub": "alice"' in output
    assert ANSI_ESCAPE not in output


def test_decode_ignores_an_empty_no_color() -> None:
    assert ANSI_ESCAPE in run_in_terminal("token", "decode", TOKEN, env={"NO_COLOR": ""})


def test_decode_no_color_flag_on_a_terminal() -> None:
    output = run_in_terminal("token", "decode", "--no-color", TOKEN)
    assert '"sub": "alice"' in output
    assert ANSI_ESCAPE not in output


def test_decode_is_not_coloured_into_a_pipe() -> None:
    result = run_script("token", "decode", TOKEN)
    assert result.returncode == 0
    assert ANSI_ESCAPE not in result.stdout
