"""End to end: a real ``jotkit serve`` revokes, a subscriber in this process rejects.

Over the HTTP feed (``GET /revocations`` long-poll) and over Redis (the server publishes with
``RedisPublisher``), including a Redis crash in the middle.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from _revocation_helpers import verdict, wait_for

from jotkit.jose.jwt import peek
from jotkit.revocation import RevocationSet
from jotkit.revocation.http import HttpFeedSubscriber
from jotkit.revocation.redis import RedisSubscriber
from servers import DEADLINE_SECONDS, PrivateRedis, ServerProcess, start_server

REVOKED = "ERR_JWT_REVOKED"


def claims_of(pair: dict[str, Any]) -> dict[str, Any]:
    # The subscriber is what is under test here, not the signature: peek is enough.
    return peek(pair["access_token"])[1]


def logout(server: ServerProcess, pair: dict[str, Any], path: str = "/logout") -> None:
    answer = server.client.post(path, headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert answer.status_code in (200, 204), answer.text


def test_logout_reaches_an_http_feed_subscriber(server: ServerProcess) -> None:
    first, second = server.login(), server.login()
    revocations = RevocationSet()
    with HttpFeedSubscriber(server.url, revocations, wait_seconds=5) as feed:
        assert feed.wait_ready(DEADLINE_SECONDS)
        assert verdict(revocations, claims_of(first)) == "accepted"
        logout(server, first)
        wait_for(lambda: verdict(revocations, claims_of(first)) == REVOKED, "logout to arrive")
        assert verdict(revocations, claims_of(second)) == "accepted"
        logout(server, second, "/logout/all")
        wait_for(lambda: verdict(revocations, claims_of(second)) == REVOKED, "logout/all to arrive")


def test_logout_reaches_a_redis_subscriber_across_a_redis_crash(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    server = start_server(tmp_path, env={"JOTKIT_REDIS_URL": private_redis.url})
    revocations = RevocationSet()
    subscriber = RedisSubscriber(
        private_redis.url, revocations, prefix="jotkit", backoff_max_seconds=0.5
    )
    try:
        first, second, third = server.login(), server.login(), server.login()
        subscriber.start()
        if not subscriber.wait_ready(DEADLINE_SECONDS):
            pytest.fail("the subscriber never subscribed and read the log")
        logout(server, first)
        wait_for(lambda: verdict(revocations, claims_of(first)) == REVOKED, "logout via Redis")

        private_redis.kill()
        wait_for(lambda: not subscriber.connected, "the subscriber to notice Redis died")
        logout(server, second)  # the server must not fail because Redis is down
        private_redis.start()  # empty: the log is gone
        # The server's heartbeat sees the missing epoch and reseeds from its store; the
        # subscriber reconnects and re-reads the log.
        wait_for(
            lambda: verdict(revocations, claims_of(second)) == REVOKED,
            "the logout made during the outage, after the reseed",
        )
        assert verdict(revocations, claims_of(first)) == REVOKED
        assert verdict(revocations, claims_of(third)) == "accepted"
        assert subscriber.connections >= 2

        logout(server, third)
        wait_for(lambda: verdict(revocations, claims_of(third)) == REVOKED, "a logout after")
    finally:
        subscriber.close()
        server.stop()


def test_redis_subscribers_stay_fresh_while_the_server_cannot_read_its_store(
    tmp_path: Path, private_redis: PrivateRedis, postgres_url: str
) -> None:
    # The store read behind sync fails every second (its table is gone); the heartbeat to
    # Redis must still go out, or every Redis-fed verifier fails closed for nothing.
    from sqlalchemy import create_engine, text

    server = start_server(
        tmp_path,
        database_url=postgres_url,
        env={"JOTKIT_REDIS_URL": private_redis.url, "JOTKIT_HEARTBEAT_SECONDS": "1"},
    )
    revocations = RevocationSet(max_staleness_seconds=3)
    subscriber = RedisSubscriber(private_redis.url, revocations, prefix="jotkit")
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        pair = server.login()
        subscriber.start()
        assert subscriber.wait_ready(DEADLINE_SECONDS)
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE revocations RENAME TO revocations_away"))
        time.sleep(5)  # past the 3 s bound: only heartbeats can keep the set fresh
        assert verdict(revocations, claims_of(pair)) == "accepted"
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE revocations_away RENAME TO revocations"))
    finally:
        subscriber.close()
        server.stop()
        engine.dispose()


def test_a_poll_ahead_of_the_server_reads_the_store_before_answering(
    server: ServerProcess,
) -> None:
    # A subscriber behind a load balancer saw entry N on another instance (or worker); this
    # one has not synced it yet (it syncs every second). Answering its own lower cursor would
    # make the subscriber take the store for a new one and read the whole feed again.
    with sqlite3.connect(server.database_url.removeprefix("sqlite:///")) as connection:
        written = connection.execute(
            "INSERT INTO revocations (kind, value, not_before, forget_after, created_at)"
            " VALUES ('jti', ?, 0, ?, ?)",
            (f"elsewhere-{uuid.uuid4().hex}", time.time() + 600, time.time()),
        ).lastrowid
    answer = server.client.get("/revocations", params={"since": written}).json()
    assert answer["cursor"] == written


def test_a_revocation_on_another_instance_reaches_the_feed_without_waiting_for_the_poll(
    tmp_path: Path, postgres_url: str
) -> None:
    # Two instances on one PostgreSQL, no Redis, the store poll slowed to 10 minutes: only
    # PostgreSQL's NOTIFY (store/notices.py) can bring B's revocation to A's feed in time.
    env = {"JOTKIT_FEED_POLL_SECONDS": "600", "JOTKIT_ISSUER": "http://jotkit.notices"}
    first = start_server(tmp_path, database_url=postgres_url, env=env)
    second = start_server(tmp_path, database_url=postgres_url, env=env, users={})
    revocations = RevocationSet()
    try:
        pair = first.login()
        with HttpFeedSubscriber(first.url, revocations, wait_seconds=5) as feed:
            assert feed.wait_ready(DEADLINE_SECONDS)
            assert verdict(revocations, claims_of(pair)) == "accepted"
            logout(second, pair)
            wait_for(lambda: verdict(revocations, claims_of(pair)) == REVOKED, "B's logout at A")
    finally:
        second.stop()
        first.stop()
