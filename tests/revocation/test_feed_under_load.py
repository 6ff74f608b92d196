"""Under concurrent revokes, every feed subscriber ends with every revocation (issue 17).

A real ``jotkit serve`` whose store already holds over 10k live entries takes 2,000 RFC 7009
revokes, 32 at a time, while eight HTTP long-poll subscribers and one Redis subscriber follow
its feed. A feed answer whose cursor runs ahead of the entries it carries (``since=21998 ->
{"cursor": 22000, "entries": [21999]}``) makes a subscriber skip an entry for good, and the
revoked token it names stays valid in that verifier until it expires.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from _revocation_helpers import verdict
from sqlalchemy import create_engine, text

from jotkit.jose.jwt import peek
from jotkit.revocation import RevocationSet
from jotkit.revocation.http import HttpFeedSubscriber
from jotkit.revocation.redis import RedisSubscriber
from jotkit.revocation.transport import FeedFollower
from jotkit.server import build_service, load_settings
from servers import DEADLINE_SECONDS, PrivateRedis, ServerProcess, start_server

SEEDED = 10_000
REVOKES = 2_000
CONCURRENCY = 32
HTTP_SUBSCRIBERS = 8
# Below uvicorn's 5 s keep-alive timeout: a pooled connection the server is closing would
# fail a request with ReadError (issue 17 item 3, not under test here).
KEEPALIVE_SECONDS = 2.0
MINTING_SESSIONS = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jotkit.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def server(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis
) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path,
        database_url=database_url,
        env={
            "JOTKIT_REDIS_URL": private_redis.url,
            "JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
        },
    )
    yield running
    running.stop()


def seed(database_url: str, count: int) -> list[str]:
    """Live ``jti`` entries written straight into the store, as another instance would."""
    values = [f"seed-{uuid.uuid4().hex}" for _ in range(count)]
    now = time.time()
    rows = [{"value": value, "forget_after": now + 3600, "now": now} for value in values]
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO revocations (kind, value, not_before, forget_after, created_at)"
                    " VALUES ('jti', :value, 0, :forget_after, :now)"
                ),
                rows,
            )
    finally:
        engine.dispose()
    return values


def mint_access_tokens(server: ServerProcess, count: int) -> list[str]:
    """``count`` live access tokens, issued as a second instance of the deployment would:
    same settings and store (so the same signing keys), sessions refreshed in turn."""
    environ = {name: value for name, value in server.env.items() if name != "JOTKIT_REDIS_URL"}
    service = build_service(load_settings(environ=environ))

    def session(length: int) -> list[str]:
        pair = service.login(server.email, server.password, address="127.0.0.1", user_agent="")
        tokens = [pair.access_token]
        while len(tokens) < length:
            pair = service.refresh(pair.refresh_token, address="127.0.0.1")
            tokens.append(pair.access_token)
        return tokens

    try:
        with ThreadPoolExecutor(MINTING_SESSIONS) as pool:
            lengths = [count // MINTING_SESSIONS + 1] * MINTING_SESSIONS
            return [token for tokens in pool.map(session, lengths) for token in tokens][:count]
    finally:
        service.store.close()


async def revoke_all(server: ServerProcess, tokens: list[str]) -> None:
    """RFC 7009 revocation of every token, ``CONCURRENCY`` requests in flight."""
    queue = list(reversed(tokens))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            token = queue.pop()
            answer = await client.post(
                "/revoke", data={"token": token, "token_type_hint": "access_token"}
            )
            assert answer.status_code == 200, answer.text

    limits = httpx.Limits(max_connections=CONCURRENCY, keepalive_expiry=KEEPALIVE_SECONDS)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))


def missing(revocations: RevocationSet, jtis: list[str]) -> list[str]:
    return [jti for jti in jtis if verdict(revocations, {"jti": jti}) == "accepted"]


def test_every_subscriber_ends_with_every_entry(
    server: ServerProcess, database_url: str, private_redis: PrivateRedis
) -> None:
    seeded = seed(database_url, SEEDED)
    followers: dict[str, tuple[FeedFollower, RevocationSet]] = {}
    for number in range(HTTP_SUBSCRIBERS):
        revocations = RevocationSet()
        subscriber = HttpFeedSubscriber(server.url, revocations, wait_seconds=5)
        followers[f"http-{number}"] = (subscriber, revocations)
    revocations = RevocationSet()
    followers["redis"] = (RedisSubscriber(private_redis.url, revocations), revocations)
    try:
        for subscriber, _ in followers.values():
            subscriber.start()
        tokens = mint_access_tokens(server, REVOKES)
        for name, (subscriber, _) in followers.items():
            assert subscriber.wait_ready(DEADLINE_SECONDS), f"{name} never caught up"
        asyncio.run(revoke_all(server, tokens))
        expected = seeded + [peek(token)[1]["jti"] for token in tokens]

        deadline = time.monotonic() + DEADLINE_SECONDS
        gaps = {name: missing(s, expected) for name, (_, s) in followers.items()}
        while any(gaps.values()) and time.monotonic() < deadline:
            time.sleep(0.5)
            gaps = {name: missing(s, gaps[name]) for name, (_, s) in followers.items()}
        server_cursor = server.client.get("/revocations").json()["cursor"]
        lost = {
            name: f"{len(gap)} of {len(expected)} entries missing, e.g. {gap[:2]}"
            f" (subscriber cursor {getattr(followers[name][0], 'cursor', '-')},"
            f" server cursor {server_cursor})"
            for name, gap in gaps.items()
            if gap
        }
        assert not lost, f"subscribers lost revocations for good: {lost}"
    finally:
        for subscriber, _ in followers.values():
            subscriber.close()
