"""The Redis revocation feed: real redis-server processes, a real publisher and subscriber."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
import redis
from _revocation_helpers import ManualClock, entry, verdict, wait_for

from jotkit.revocation import Revocation, RevocationSet
from jotkit.revocation.redis import RedisPublisher, RedisSubscriber, feed_keys
from servers import DEADLINE_SECONDS, PrivateRedis, free_port

REVOKED = "ERR_JWT_REVOKED"
STALE = "ERR_REVOCATION_FEED_STALE"


@contextmanager
def following(
    url: str, prefix: str, revocations: RevocationSet | None = None
) -> Iterator[tuple[RevocationSet, RedisSubscriber]]:
    """A started subscriber that has subscribed and read the log; closed afterwards."""
    revocations = RevocationSet() if revocations is None else revocations
    subscriber = RedisSubscriber(url, revocations, prefix=prefix, backoff_max_seconds=0.5)
    subscriber.start()
    try:
        if not subscriber.wait_ready(DEADLINE_SECONDS):
            pytest.fail("the subscriber never subscribed and read the log")
        yield revocations, subscriber
    finally:
        subscriber.close()


@contextmanager
def seeded_publisher(url: str, prefix: str) -> Iterator[RedisPublisher]:
    """A publisher whose log is seeded (from an empty store), as the auth server's is from
    its first heartbeat on: subscribers trust only a seeded log."""
    with RedisPublisher(url, prefix=prefix) as publisher:
        assert publisher.reseed([]) is True
        yield publisher


def log_members(url: str, prefix: str) -> list[dict[str, object]]:
    client = redis.Redis.from_url(url)
    try:
        return [orjson.loads(m) for m in client.zrange(feed_keys(prefix)[1], 0, -1)]
    finally:
        client.close()


def test_published_revocation_reaches_a_running_subscriber(redis_url: str, prefix: str) -> None:
    with (
        seeded_publisher(redis_url, prefix) as publisher,
        following(redis_url, prefix) as (
            revocations,
            _,
        ),
    ):
        assert verdict(revocations, {"jti": "t1", "sid": "s1"}) == "accepted"
        assert publisher.publish(entry("jti", "t1", 1)) is True
        assert publisher.publish(entry("sid", "s1", 2)) is True
        wait_for(lambda: revocations.cursor == 2, "both entries applied")
        assert verdict(revocations, {"jti": "t1"}) == REVOKED
        assert verdict(revocations, {"jti": "other", "sid": "s1"}) == REVOKED
        assert verdict(revocations, {"jti": "other", "sid": "other"}) == "accepted"


def test_late_subscriber_catches_up_from_the_log(redis_url: str, prefix: str) -> None:
    now = time.time()
    with seeded_publisher(redis_url, prefix) as publisher:
        assert publisher.publish(entry("jti", "t1", 1))
        assert publisher.publish(entry("sid", "s1", 2))
        assert publisher.publish(entry("sub", "alice", 3, not_before=now))
        # Nobody was listening: only the log has them. Ready means the log has been read.
        with following(redis_url, prefix) as (revocations, _):
            assert revocations.cursor == 3
            assert verdict(revocations, {"jti": "t1"}) == REVOKED
            assert verdict(revocations, {"sid": "s1"}) == REVOKED
            assert verdict(revocations, {"sub": "alice", "iat": now - 10}) == REVOKED
            assert verdict(revocations, {"sub": "alice", "iat": now + 10}) == "accepted"


def test_publishing_an_entry_twice_keeps_one_log_member(redis_url: str, prefix: str) -> None:
    with RedisPublisher(redis_url, prefix=prefix) as publisher:
        stored = entry("jti", "t1", 1)
        assert publisher.publish(stored) and publisher.publish(stored)
        assert log_members(redis_url, prefix) == [stored.to_json()]


def test_publish_refuses_an_entry_that_was_not_stored(redis_url: str, prefix: str) -> None:
    with RedisPublisher(redis_url, prefix=prefix) as publisher:
        try:
            publisher.publish(entry("jti", "t1", 0))
        except ValueError as error:
            assert "cursor > 0" in str(error)
        else:
            raise AssertionError("an entry without a cursor was published")


def test_heartbeats_keep_the_set_fresh_and_silence_makes_it_stale(
    redis_url: str, prefix: str
) -> None:
    clock = ManualClock()
    revocations = RevocationSet(max_staleness_seconds=5, monotonic=clock)
    with (
        seeded_publisher(redis_url, prefix) as publisher,
        following(redis_url, prefix, revocations),
    ):
        assert not revocations.is_stale
        clock.advance(6)  # six seconds without a word from the feed
        assert revocations.is_stale
        assert verdict(revocations, {"jti": "t1"}) == STALE
        publisher.heartbeat()
        wait_for(lambda: not revocations.is_stale, "the heartbeat to freshen the set")
        assert verdict(revocations, {"jti": "t1"}) == "accepted"
        clock.advance(6)
        assert verdict(revocations, {"jti": "t1"}) == STALE
        # An entry counts as hearing from the feed too.
        publisher.publish(entry("jti", "t2", 1))
        wait_for(lambda: not revocations.is_stale, "the entry to freshen the set")
        assert verdict(revocations, {"jti": "t2"}) == REVOKED


def test_heartbeat_reports_a_log_that_was_never_seeded(redis_url: str, prefix: str) -> None:
    with RedisPublisher(redis_url, prefix=prefix) as publisher:
        assert publisher.heartbeat() is True
        assert publisher.reseed([]) is True
        assert publisher.heartbeat() is False


def test_reseed_makes_subscribers_read_the_log_again(redis_url: str, prefix: str) -> None:
    with (
        RedisPublisher(redis_url, prefix=prefix) as publisher,
        following(redis_url, prefix) as (
            revocations,
            _,
        ),
    ):
        # Entries the subscriber never saw announced, e.g. written while Redis was empty.
        assert publisher.reseed([entry("sid", "s1", 1), entry("jti", "t1", 2)])
        wait_for(lambda: revocations.cursor == 2, "the reseeded log to be read")
        assert verdict(revocations, {"sid": "s1"}) == REVOKED
        assert verdict(revocations, {"jti": "t1"}) == REVOKED


def test_reseed_keeps_entries_published_after_the_store_was_read(
    redis_url: str, prefix: str
) -> None:
    with RedisPublisher(redis_url, prefix=prefix) as publisher:
        snapshot = [entry("jti", "t1", 1)]  # what the server read from its store...
        late = entry("jti", "t2", 2)
        assert publisher.publish(late)  # ...before this one was stored and published
        assert publisher.reseed(snapshot)
        assert sorted(m["value"] for m in log_members(redis_url, prefix)) == ["t1", "t2"]  # type: ignore[type-var]


def test_prune_drops_only_expired_members(redis_url: str, prefix: str) -> None:
    now = time.time()
    with RedisPublisher(redis_url, prefix=prefix) as publisher:
        assert publisher.publish(Revocation("jti", "expired", now - 1, cursor=1))
        assert publisher.publish(Revocation("jti", "live", now + 60, cursor=2))
        assert publisher.prune(now) == 1
        assert [m["value"] for m in log_members(redis_url, prefix)] == ["live"]
        assert publisher.prune(now) == 0


def test_malformed_messages_are_skipped_and_the_feed_goes_on(redis_url: str, prefix: str) -> None:
    channel = feed_keys(prefix)[0]
    raw = redis.Redis.from_url(redis_url)
    with (
        seeded_publisher(redis_url, prefix) as publisher,
        following(redis_url, prefix) as (
            revocations,
            subscriber,
        ),
    ):
        for junk in (b"not json", b"[1]", b'{"type":"revocation","entry":{"kind":"x"}}', b"{}"):
            raw.publish(channel, junk)
        assert publisher.publish(entry("jti", "t1", 1))
        wait_for(lambda: verdict(revocations, {"jti": "t1"}) == REVOKED, "the good entry")
        assert len(revocations) == 1
        assert subscriber.connected
    raw.close()


def test_publisher_never_raises_while_redis_is_down() -> None:
    # Nothing listens on this port: every call fails fast with a connection error.
    publisher = RedisPublisher(f"redis://127.0.0.1:{free_port()}/0", socket_timeout_seconds=1)
    assert publisher.publish(entry("jti", "t1", 1)) is False
    assert publisher.pending == 1
    assert publisher.heartbeat() is False  # cannot repair anything until Redis is back
    assert publisher.reseed([entry("jti", "t1", 1)]) is False
    assert publisher.prune() == 0
    publisher.close()


def test_a_publish_refused_by_redis_is_retried_by_the_next_call(
    private_redis: PrivateRedis,
) -> None:
    url, prefix = private_redis.url, "jotkit"
    admin = private_redis.client()
    with RedisPublisher(url, prefix=prefix) as publisher:
        assert publisher.reseed([])
        # Redis stays up with its data but refuses writes (out of memory, noeviction).
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        assert publisher.publish(entry("jti", "t1", 1)) is False
        assert publisher.pending == 1
        admin.config_set("maxmemory", 0)
        assert publisher.heartbeat() is False  # the log was not lost: no reseed needed
        assert publisher.pending == 0
        assert [m["value"] for m in log_members(url, prefix)] == ["t1"]
        with following(url, prefix) as (revocations, _):
            assert verdict(revocations, {"jti": "t1"}) == REVOKED
    admin.close()


def test_redis_restart_loses_no_revocation(private_redis: PrivateRedis) -> None:
    url, prefix = private_redis.url, "jotkit"
    store: list[Revocation] = []  # stands in for the auth server's durable store

    def revoke(publisher: RedisPublisher, stored: Revocation) -> bool:
        store.append(stored)
        return publisher.publish(stored)

    with RedisPublisher(url, prefix=prefix, socket_timeout_seconds=1) as publisher:
        assert publisher.reseed(store)
        # Fail-closed with a bound far longer than the outage: only the feed can make it stale.
        bounded = RevocationSet(max_staleness_seconds=600)
        with following(url, prefix, bounded) as (revocations, subscriber):
            assert revoke(publisher, entry("jti", "before", 1))
            wait_for(lambda: revocations.cursor == 1, "the first entry")

            private_redis.kill()
            wait_for(lambda: not subscriber.connected, "the subscriber to notice Redis died")
            # Revoked while Redis is down: stored, not published, and no exception.
            assert revoke(publisher, entry("sid", "during", 2)) is False
            assert verdict(revocations, {"jti": "before"}) == REVOKED

            private_redis.start()  # same port, empty: the log and epoch are gone
            wait_for(lambda: subscriber.connections >= 2, "the subscriber to reconnect")
            # The empty log lacks "during": until the server reseeds it, the set is stale and
            # refuses every token (it used to count itself fresh and accept "during").
            assert not subscriber.seeded
            assert verdict(revocations, {"sid": "during"}) == STALE
            assert verdict(revocations, {"jti": "live"}) == STALE
            # The server's next heartbeat sees the empty Redis and reseeds from its store.
            assert publisher.heartbeat() is True
            assert publisher.reseed(store)
            assert publisher.heartbeat() is False
            wait_for(lambda: subscriber.seeded, "the reseeded log to be read")
            wait_for(lambda: revocations.cursor == 2, "the entry revoked during the outage")
            assert verdict(revocations, {"sid": "during"}) == REVOKED
            assert verdict(revocations, {"jti": "before"}) == REVOKED  # kept through it all
            assert verdict(revocations, {"jti": "live"}) == "accepted"

            assert revoke(publisher, entry("jti", "after", 3))
            wait_for(lambda: revocations.cursor == 3, "an entry published after the restart")
            assert verdict(revocations, {"jti": "after"}) == REVOKED

        # A verifier starting now finds all three in the rebuilt log.
        with following(url, prefix) as (late, _):
            for claims in ({"jti": "before"}, {"sid": "during"}, {"jti": "after"}):
                assert verdict(late, claims) == REVOKED, claims
