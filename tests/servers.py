"""Real ``jotkit serve`` processes for tests: a free port, a SQLite file, real HTTP.

``start_server(tmp_path)`` creates the users through the real CLI, starts the server as a
subprocess, waits for /readyz and returns a ``ServerProcess``; ``stop()`` ends it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

JOTKIT = str(Path(sys.executable).with_name("jotkit"))
# Cheap argon2 for tests (the production default is 64 MiB, t=3); the algorithm is the same.
FAST_ARGON2 = {"JOTKIT_ARGON2_MEMORY_KIB": "8192", "JOTKIT_ARGON2_TIME_COST": "1"}
DEFAULT_USERS = {"alice@example.com": "correct horse battery"}
# A deadline for things that must happen, not a speed requirement: generous on a busy machine.
DEADLINE_SECONDS = 30.0
# How long a starting server may take to answer /readyz.
READY_SECONDS = 120.0


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``; under CI=true fail instead (CI must not pass by skipping)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: not skipping)")
    pytest.skip(reason)


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail under CI=true) when a service does not answer at host:port."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        skip_or_fail(f"{name} is not reachable at {host}:{port}")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    """A running ``jotkit serve``."""

    url: str
    database_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    email: str = "alice@example.com"
    password: str = "correct horse battery"
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def login(self, email: str | None = None, password: str | None = None) -> dict[str, Any]:
        """POST /login (as this view's user by default); asserts 200, returns the token pair."""
        credentials = {"email": email or self.email, "password": password or self.password}
        answer = self.client.post("/login", json=credentials)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``jotkit ARGS`` against this server's store and environment."""
        return subprocess.run(
            [JOTKIT, *args], input=stdin, capture_output=True, text=True, env=self.env, timeout=60
        )

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and close the client."""
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    tmp_path: Path,
    *,
    users: Mapping[str, str] = DEFAULT_USERS,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    database_url: str | None = None,
    port: int | None = None,
) -> ServerProcess:
    """Create ``users`` with the real CLI, start ``jotkit serve``, wait until it is ready."""
    port = port or free_port()
    database_url = database_url or f"sqlite:///{tmp_path / 'jotkit.db'}"
    full_env = {
        **os.environ,
        **FAST_ARGON2,
        "JOTKIT_DATABASE_URL": database_url,
        "JOTKIT_PORT": str(port),
        "JOTKIT_HOST": "127.0.0.1",
        **(env or {}),
    }
    for email, password in users.items():
        made = subprocess.run(
            [JOTKIT, "users", "add", email, "--password-stdin"],
            input=password + "\n",
            capture_output=True,
            text=True,
            env=full_env,
            timeout=60,
        )
        if made.returncode != 0 and "ERR_CONFLICT" not in made.stderr:
            raise RuntimeError(f"jotkit users add failed: {made.stderr}")
    log_path = tmp_path / f"server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [JOTKIT, "serve", *args], stdout=log, stderr=subprocess.STDOUT, env=full_env
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", database_url, full_env, process, log_path)
    # Start-up (imports, migrations, key load) has taken over 30 s on a machine at load 30.
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jotkit serve exited with {process.returncode}: {server.log()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"jotkit serve did not become ready: {server.log()}")


class PrivateRedis:
    """A redis-server process owned by one test: start, kill, start again on the same port."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("redis-server") is None:
            skip_or_fail("redis-server binary not found (Debian: apt-get install redis-server)")
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start an empty server (no RDB, no AOF) and wait until it answers PING."""
        log = open(self.directory / f"redis-{self.port}.log", "ab")  # noqa: SIM115 - child owns it
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--dir", str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"redis-server on port {self.port} exited: {self.log()}")
            try:
                if client.ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server on port {self.port} never answered: {self.log()}")
                time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        """SIGKILL: everything in memory is gone, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self.process = None

    def client(self) -> redis.Redis:
        """A plain redis-py client on this server."""
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def log(self) -> str:
        """The server's own log."""
        path = self.directory / f"redis-{self.port}.log"
        return path.read_text(errors="replace") if path.exists() else ""
