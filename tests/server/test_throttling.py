"""Login throttling in Redis (``redis_url``): two instances share the counters, and a Redis
that goes away leaves logins working and throttled by the database's counters.

One deployment for the module: a redis-server of its own (the last test kills it), two
``jotkit serve`` on one SQLite file. The database is shared too, so every test checks where
the count is: in Redis while it answers, in the database only while it does not.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers import DEADLINE_SECONDS, PrivateRedis, ServerProcess, start_server

PASSWORD = "correct horse battery"
USERS = [f"{name}@example.com" for name in ("ann", "ben", "cid", "dee")]
ADMIN_TOKEN = "throttling-admin-token-" + "a" * 32
MAX_PER_ACCOUNT = 5


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("throttling")
    redis_server = PrivateRedis(directory)
    redis_server.start()
    env = {
        "JOTKIT_ADMIN_TOKEN": ADMIN_TOKEN,
        "JOTKIT_REDIS_URL": redis_server.url,
        "JOTKIT_LOGIN_MAX_FAILURES_PER_ACCOUNT": str(MAX_PER_ACCOUNT),
        "JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",  # every test logs in from 127.0.0.1
    }
    servers: list[ServerProcess] = []
    try:
        for _ in range(2):
            servers.append(start_server(directory, users={}, env=env))
        for email in USERS:  # over HTTP: a CLI process per user is slow on a loaded machine
            created = servers[0].client.post(
                "/users",
                json={"email": email, "password": PASSWORD},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert created.status_code == 201, created.text
        yield {"redis": redis_server, "servers": servers, "db": directory / "jotkit.db"}
    finally:
        for server in servers:
            server.stop()
        redis_server.kill()


def _login(server: ServerProcess, email: str, password: str) -> int:
    return server.client.post("/login", json={"email": email, "password": password}).status_code


def _database_failures(db: Path, email: str) -> int | None:
    with sqlite3.connect(db) as connection:
        row = connection.execute(
            "SELECT failures FROM login_failures WHERE key = ?", (f"account:{email}",)
        ).fetchone()
    return None if row is None else int(row[0])


def _redis_key(email: str) -> str:
    return f"jotkit:login-failures:account:{email}"


def test_failures_on_one_instance_throttle_the_account_on_the_other(
    deployment: dict[str, Any],
) -> None:
    first, second = deployment["servers"]
    email = "ann@example.com"
    for attempt in range(MAX_PER_ACCOUNT):  # alternate instances: no instance sees them all
        assert _login((first, second)[attempt % 2], email, "wrong password") == 401
    for server in (first, second):
        answer = server.client.post("/login", json={"email": email, "password": PASSWORD})
        assert answer.status_code == 429, answer.text
        assert 0 < int(answer.headers["Retry-After"]) <= 901
    client = deployment["redis"].client()
    assert int(client.get(_redis_key(email))) == MAX_PER_ACCOUNT
    assert 0 < client.pttl(_redis_key(email)) <= 900_000  # the window, set on the first failure
    assert _database_failures(deployment["db"], email) is None  # Redis counted, not the store


def test_a_successful_login_clears_the_account_counter(deployment: dict[str, Any]) -> None:
    first, second = deployment["servers"]
    email = "ben@example.com"
    assert _login(first, email, "wrong password") == 401
    client = deployment["redis"].client()
    assert int(client.get(_redis_key(email))) == 1
    assert _login(second, email, PASSWORD) == 200
    assert client.get(_redis_key(email)) is None


def test_with_redis_down_logins_go_on_and_the_database_throttles(
    deployment: dict[str, Any],
) -> None:
    first, second = deployment["servers"]
    redis_server = deployment["redis"]
    redis_server.kill()
    assert _login(first, "dee@example.com", PASSWORD) == 200
    assert _login(second, "dee@example.com", PASSWORD) == 200
    email = "cid@example.com"
    for attempt in range(MAX_PER_ACCOUNT):
        assert _login((first, second)[attempt % 2], email, "wrong password") == 401
    assert _login(first, email, PASSWORD) == 429
    assert _login(second, email, PASSWORD) == 429
    assert _database_failures(deployment["db"], email) == MAX_PER_ACCOUNT
    for server in (first, second):
        metrics = server.client.get("/metrics").text
        assert "jotkit_login_throttle_fallbacks_total 0" not in metrics
    # Redis back (empty, as after a crash): after the retry period, each instance counts in
    # it again. Until then the database counts (and may throttle: 429 is a right answer too).
    redis_server.start()
    client = redis_server.client()
    key = _redis_key("dee@example.com")
    for server in (first, second):
        before = int(client.get(key) or 0)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while int(client.get(key) or 0) == before:
            assert time.monotonic() < deadline, "failures never counted in Redis again"
            assert _login(server, "dee@example.com", "wrong password") in (401, 429)
            time.sleep(0.5)
