"""Fixtures for the revocation transports: the shared Redis, private Redis servers, a feed app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from _revocation_helpers import SHARED_REDIS_URL, ScriptedFeedServer

from servers import PrivateRedis, skip_or_fail


@pytest.fixture
def redis_url() -> str:
    """The shared Redis on 127.0.0.1:6379 (skip, or fail under CI=true, when it is absent)."""
    client = redis.Redis.from_url(SHARED_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        skip_or_fail(f"no Redis answering on 127.0.0.1:6379 ({error})")
    finally:
        client.close()
    return SHARED_REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test (or parallel run) uses; its keys are deleted afterwards."""
    name = f"jotkit-test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own, started; killed at the end whatever happened."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def scripted_feed() -> Iterator[ScriptedFeedServer]:
    """A real HTTP server speaking the feed protocol, fed by the test."""
    stub = ScriptedFeedServer()
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()
