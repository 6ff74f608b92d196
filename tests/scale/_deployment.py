"""The reference deployment of docs/deploy.md, for real: nginx from Debian's package, started
with the committed deploy/nginx.conf, in front of two ``jotkit serve`` instances started with
the committed deploy/jotkit.toml, on PostgreSQL, with a redis-server of the test's own.

Only what a test must change is changed: ports, the issuer (nginx's address), the database
and Redis URLs (environment variables, which win over the file), and nginx's pid and log
paths. A change to deploy/nginx.conf that removes one of the replaced strings fails the test
instead of silently testing something else.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from servers import (
    DEADLINE_SECONDS,
    PrivateRedis,
    ServerProcess,
    free_port,
    skip_or_fail,
    start_server,
)

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx.conf"
JOTKIT_TOML = REPO / "deploy" / "jotkit.toml"
ADMIN_TOKEN = "deployment-admin-token-" + "d" * 32


def _nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else ""
    )
    if not found:
        skip_or_fail("nginx not found (Debian: apt-get install nginx; .ci/run installs it)")
    return found


def render_nginx_conf(listen_port: int, upstream_ports: tuple[int, int], directory: Path) -> str:
    """deploy/nginx.conf with the test's ports, and pid and logs under ``directory``."""
    text = NGINX_CONF.read_text()
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
        "127.0.0.1:8001 ": f"127.0.0.1:{upstream_ports[0]} ",
        "127.0.0.1:8002 ": f"127.0.0.1:{upstream_ports[1]} ",
        "/run/nginx.pid": str(directory / "nginx.pid"),
        "/var/log/nginx/": f"{directory}/",
    }
    for old, new in replacements.items():
        assert old in text, f"deploy/nginx.conf no longer holds {old!r}: update {__file__}"
        text = text.replace(old, new)
    return text


class Nginx:
    """nginx running deploy/nginx.conf in the foreground, as a child of the test."""

    def __init__(self, directory: Path, upstream_ports: tuple[int, int]) -> None:
        self.binary = _nginx_binary()
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = directory / "nginx.conf"
        self.conf.write_text(render_nginx_conf(self.port, upstream_ports, directory))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start nginx and wait until it answers (any status: the instances may be down)."""
        checked = subprocess.run(
            [self.binary, "-t", "-q", "-c", str(self.conf)], capture_output=True, text=True
        )
        assert checked.returncode == 0, f"nginx -t refused deploy/nginx.conf: {checked.stderr}"
        with open(self.directory / "nginx.out", "ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.conf), "-g", "daemon off;"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            assert self.process.poll() is None, f"nginx exited: {self.log()}"
            try:
                httpx.get(self.url + "/healthz", timeout=2)
                return
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"nginx never answered: {self.log()}"
                time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGTERM), then SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        """nginx's error log."""
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _postgres_tool(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), ""
    )
    if not found:
        skip_or_fail(f"{name} not found (Debian: apt-get install postgresql)")
    return found


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb into a temporary directory, a free
    port), so that a test can stop it without touching the shared one on 5432."""

    def __init__(self) -> None:
        self.initdb = _postgres_tool("initdb")
        self.pg_ctl = _postgres_tool("pg_ctl")
        # initdb and postgres refuse to run as root: as root, run them as the postgres user,
        # in a directory of its own (pytest's tmp_path is private to root).
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.directory = Path(tempfile.mkdtemp(prefix="jotkit-pg-"))
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._as_postgres, *command], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command[:2])} failed: {done.stdout}{done.stderr}{self.log()}")

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
            f"{self.directory} -c fsync=off -c synchronous_commit=off -c max_connections=200"
        )
        log = str(self.directory / "postgres.log")
        self._run(self.pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when the database goes away."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop (if running) and delete the cluster."""
        subprocess.run(
            [*self._as_postgres, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        path = self.directory / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class Deployment:
    """nginx in front of two ``jotkit serve`` instances sharing one database and one Redis."""

    directory: Path
    database_url: str
    redis: PrivateRedis
    nginx: Nginx
    env: dict[str, str]
    ports: tuple[int, int]
    instances: list[ServerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Where clients go: nginx."""
        return self.nginx.url

    def start_instance(self, index: int) -> ServerProcess:
        """Start (or restart) instance ``index`` on its port, from deploy/jotkit.toml."""
        started = start_server(
            self.directory,
            users={},
            env={**self.env, "JOTKIT_PORT": str(self.ports[index])},
            database_url=self.database_url,
            port=self.ports[index],
        )
        if index < len(self.instances):
            self.instances[index] = started
        else:
            self.instances.append(started)
        return started

    def kill_instance(self, index: int) -> None:
        """SIGKILL: no shutdown, in-flight requests cut, as when the machine dies."""
        self.instances[index].process.send_signal(signal.SIGKILL)
        self.instances[index].process.wait(30)
        self.instances[index].client.close()

    def add_user(self, email: str, password: str = "correct horse battery") -> None:
        """Create a user through nginx with the admin token."""
        made = httpx.post(
            self.url + "/users",
            json={"email": email, "password": password},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        assert made.status_code == 201, made.text

    def stop(self) -> None:
        """Stop nginx, the instances and Redis."""
        self.nginx.stop()
        for instance in self.instances:
            instance.stop()
        self.redis.kill()


def start_deployment(
    directory: Path, database_url: str, *, env: Mapping[str, str] | None = None
) -> Deployment:
    """The reference deployment on ``database_url``, with a redis-server of its own."""
    redis = PrivateRedis(directory)
    redis.start()
    ports = (free_port(), free_port())
    nginx = Nginx(directory, ports)
    deployment = Deployment(
        directory,
        database_url,
        redis,
        nginx,
        {
            "JOTKIT_CONFIG": str(JOTKIT_TOML),
            "JOTKIT_ISSUER": nginx.url,
            "JOTKIT_REDIS_URL": redis.url,
            "JOTKIT_ADMIN_TOKEN": ADMIN_TOKEN,
            **(env or {}),
        },
        ports,
    )
    try:
        for index in range(2):  # one after the other: the first creates the schema
            deployment.start_instance(index)
        nginx.start()
    except BaseException:
        deployment.stop()
        raise
    return deployment
