"""Shared test fixtures: real servers (tests/servers.py) and the services CI must have."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from servers import ServerProcess, postgres_schema, start_server

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL into a fresh schema of the real PostgreSQL ``test`` database, dropped afterwards.

    Skips where PostgreSQL is not reachable (fails under CI=true).
    """
    with postgres_schema(PG_URL) as url:
        yield url


ADMIN_TOKEN = "test-admin-token-" + "a" * 32


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real ``jotkit serve`` for the tests that need no special configuration."""
    running = start_server(
        tmp_path_factory.mktemp("shared-server"),
        users={},
        env={"JOTKIT_ADMIN_TOKEN": ADMIN_TOKEN, "JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000"},
    )
    yield running
    running.stop()


@pytest.fixture
def server(shared_server: ServerProcess) -> Iterator[ServerProcess]:
    """The shared server, seen as a user of its own (so tests cannot disturb each other)."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = "correct horse battery"
    created = shared_server.client.post(
        "/users",
        json={"email": email, "password": password},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert created.status_code == 201, created.text
    view = dataclasses.replace(shared_server, email=email, password=password)
    yield view
    view.client.close()
