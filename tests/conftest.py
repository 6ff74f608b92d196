"""Shared test fixtures: real servers (tests/servers.py) and the services CI must have."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import ServerProcess, start_server


def require_service(name: str, host: str, port: int) -> None:
    """Skip (with the reason) when a service is down; under CI=true, fail instead."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        reason = f"{name} is not reachable at {host}:{port}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}, and CI=true requires it")
        pytest.skip(reason)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real ``jotkit serve`` on a fresh SQLite file, with alice@example.com."""
    running = start_server(tmp_path)
    yield running
    running.stop()
