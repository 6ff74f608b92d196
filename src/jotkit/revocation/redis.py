"""The revocation feed over Redis: the auth server publishes, every verifier subscribes.

Keys (``prefix`` defaults to ``jotkit``):

- channel ``{prefix}:revocations`` carries JSON messages ``{"type": "revocation", "entry":
  {...}}``, ``{"type": "heartbeat", "now": ...}`` and ``{"type": "reseed"}``;
- sorted set ``{prefix}:revocations:log`` (score = cursor, member = entry JSON) is the catch-up
  log a subscriber reads after (re)connecting;
- key ``{prefix}:revocations:epoch`` marks that the log was seeded from the server's store. A
  Redis restart without persistence loses it; the server sees that through ``heartbeat()`` and
  calls ``reseed()``;
- sorted set ``{prefix}:revocations:expiry`` (score = ``forget_after``, same members) is the
  publisher's own index for ``prune()``; subscribers never read it.

Pub/sub delivers at most once and only to connected subscribers, so a subscriber subscribes
first and reads the log second: whatever is published during the read arrives on the channel,
whatever was published before is in the log. Applying an entry twice is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, cast

import orjson

from jotkit.extras import require_extra
from jotkit.revocation.entries import Revocation, RevocationSet
from jotkit.revocation.transport import FeedFollower

require_extra("the Redis revocation feed", "'jotkit[redis]'", "redis")

# These imports need the extra checked above.
import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

__all__ = ["RedisPublisher", "RedisSubscriber", "feed_keys"]

logger = logging.getLogger("jotkit.revocation")

# Anything Redis can fail with: down, timing out, refusing writes (OOM, read-only replica,
# NOAUTH). None of it may escape publish(): the store holds the durable copy.
_UNAVAILABLE = (redis.RedisError, OSError)
# Entries per command when (re)writing or reading the log, so no single reply is huge.
_CHUNK = 1000


def feed_keys(prefix: str) -> tuple[str, str, str, str]:
    """The channel, log, epoch and expiry-index key names for ``prefix``."""
    channel = f"{prefix}:revocations"
    return channel, f"{channel}:log", f"{channel}:epoch", f"{channel}:expiry"


def _member(entry: Revocation) -> bytes:
    # Sorted keys: one entry is always the same log member, so re-adding it is a no-op.
    return orjson.dumps(entry.to_json(), option=orjson.OPT_SORT_KEYS)


class RedisPublisher:
    """Writes the auth server's revocations to the Redis feed (synchronous redis-py client).

    ``publish`` is called after an entry is committed to the server's store (which is the
    durable copy), so it never raises when Redis is down: it returns False, logs, and keeps the
    entry to retry on the next call that reaches Redis. Call ``reseed(store live entries)`` at
    startup and whenever ``heartbeat()`` returns True, and ``prune()`` now and then.
    Safe to call from several threads.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "jotkit",
        socket_timeout_seconds: float = 2.0,
        max_pending: int = 10_000,
    ) -> None:
        """Connect lazily to ``url`` (``redis://host:port/db``); nothing is sent yet."""
        self.prefix = prefix
        self.channel, self.log_key, self.epoch_key, self.expiry_key = feed_keys(prefix)
        # One immediate retry: after a Redis restart the pooled connection is dead, and the
        # first command on it should reconnect instead of failing.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_seconds,
            socket_connect_timeout=socket_timeout_seconds,
            retry=Retry(NoBackoff(), 1),
        )
        self._lock = threading.Lock()
        # Entries whose publish failed, by cursor: flushed by the next call that reaches Redis.
        self._pending: dict[int, Revocation] = {}
        self._max_pending = max_pending
        # Set when _pending overflowed: only a reseed from the store can repair the log then.
        self._lost = False

    def _take_pending(self) -> list[Revocation]:
        with self._lock:
            return list(self._pending.values())

    def _settle(self, flushed: Iterable[Revocation]) -> None:
        with self._lock:
            for entry in flushed:
                self._pending.pop(entry.cursor, None)

    def _remember(self, entry: Revocation) -> None:
        with self._lock:
            if len(self._pending) < self._max_pending:
                self._pending[entry.cursor] = entry
            else:
                self._lost = True

    def _queue_entry(self, pipe: Any, entry: Revocation) -> None:
        member = _member(entry)
        pipe.zadd(self.log_key, {member: entry.cursor})
        pipe.zadd(self.expiry_key, {member: entry.forget_after})
        pipe.publish(
            self.channel,
            b'{"type":"revocation","entry":' + member + b"}",
        )

    def publish(self, entry: Revocation) -> bool:
        """Add ``entry`` to the log and announce it, in one round trip; False if Redis is down.

        The entry must come from the store (``cursor`` > 0): subscribers order and resume
        by cursor.
        """
        if entry.cursor <= 0:
            raise ValueError("publish a stored revocation entry (cursor > 0), not a draft")
        pending = self._take_pending()
        pipe = self._client.pipeline(transaction=False)
        for old in pending:
            self._queue_entry(pipe, old)
        self._queue_entry(pipe, entry)
        try:
            pipe.execute()
        except _UNAVAILABLE as error:
            self._remember(entry)
            logger.warning(
                "revocation %s:%s (cursor %d) not published to Redis: %s; "
                "kept for retry, the store has it",
                entry.kind,
                entry.value,
                entry.cursor,
                error,
            )
            return False
        self._settle(pending)
        return True

    def heartbeat(self, now: float | None = None) -> bool:
        """Tell subscribers the feed is alive; True when the log needs ``reseed()``.

        The log needs a reseed when its epoch key is missing (Redis restarted and lost its
        data, or the log was never seeded) or when more publishes failed than could be kept
        for retry. Returns False when Redis is unreachable: nothing can be repaired until it
        is back, and the first heartbeat that reaches it will tell.
        """
        pending = self._take_pending()
        pipe = self._client.pipeline(transaction=False)
        for old in pending:
            self._queue_entry(pipe, old)
        now = time.time() if now is None else now
        pipe.publish(self.channel, orjson.dumps({"type": "heartbeat", "now": now}))
        pipe.exists(self.epoch_key)
        try:
            results = pipe.execute()
        except _UNAVAILABLE as error:
            logger.warning("revocation heartbeat not sent to Redis: %s", error)
            return False
        self._settle(pending)
        with self._lock:
            lost = self._lost
        return lost or not results[-1]

    def reseed(self, live_entries: Iterable[Revocation], now: float | None = None) -> bool:
        """Fill the log from the server's store, mark it seeded, tell subscribers to re-read it.

        Entries are added to whatever the log holds rather than replacing it: an entry
        published after the server read its store must not be wiped by this call. Expired
        members go through ``prune()``. Returns False (and logs) when Redis is down.
        """
        now = time.time() if now is None else now
        with self._lock:
            pending = list(self._pending.values())
            lost = self._lost
        pipe = self._client.pipeline(transaction=True)
        count = 0
        for entry in [*pending, *live_entries]:
            member = _member(entry)
            pipe.zadd(self.log_key, {member: entry.cursor})
            pipe.zadd(self.expiry_key, {member: entry.forget_after})
            count += 1
        pipe.set(self.epoch_key, orjson.dumps({"seeded_at": now, "entries": count}))
        pipe.publish(self.channel, b'{"type":"reseed"}')
        try:
            pipe.execute()
        except _UNAVAILABLE as error:
            logger.warning("revocation log not reseeded in Redis: %s", error)
            return False
        self._settle(pending)
        if lost:
            with self._lock:
                self._lost = False
        logger.info("revocation log reseeded in Redis with %d entries", count)
        return True

    def prune(self, now: float | None = None) -> int:
        """Drop log members whose ``forget_after`` has passed; returns how many (0 if down)."""
        now = time.time() if now is None else now
        dropped = 0
        try:
            while True:
                # Same rule as RevocationSet.prune: forget when forget_after < now.
                members = self._client.zrangebyscore(
                    self.expiry_key, "-inf", f"({now!r}", start=0, num=_CHUNK
                )
                if not members:
                    return dropped
                pipe = self._client.pipeline(transaction=True)
                pipe.zrem(self.log_key, *members)
                pipe.zrem(self.expiry_key, *members)
                pipe.execute()
                dropped += len(members)
        except _UNAVAILABLE as error:
            logger.warning("revocation log not pruned in Redis: %s", error)
            return dropped

    @property
    def pending(self) -> int:
        """How many entries failed to publish and wait for the next call that reaches Redis."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Close the connection pool; entries still pending are left to the next reseed."""
        self._client.close()

    def __enter__(self) -> RedisPublisher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class RedisSubscriber(FeedFollower):
    """Keeps a ``RevocationSet`` up to date from the Redis feed, in a background thread.

    On every (re)connection: subscribe to the channel, then read the whole log, then apply
    messages as they come. Every message marks the set ``heard()``, so without the server's
    heartbeats the set goes stale (and, fail-closed, refuses tokens) - which is also what a
    verifier cut off from Redis should do. Verification itself never touches the network.

    The log is read whole, not from the set's cursor: with several auth-server instances (or a
    publish retried after an error) entries can reach the log out of cursor order, and a range
    above the highest cursor seen would miss one that landed below it. The log holds only live
    entries, so it is no bigger than the set itself.
    """

    def __init__(
        self,
        url: str,
        revocations: RevocationSet,
        *,
        prefix: str = "jotkit",
        backoff_initial_seconds: float = 0.1,
        backoff_max_seconds: float = 5.0,
        health_check_seconds: int = 10,
        prune_interval_seconds: float = 60.0,
    ) -> None:
        """Prepare to follow the feed at ``url``; call ``start()`` to begin."""
        super().__init__(
            revocations,
            thread_name=f"jotkit-revocations-redis-{prefix}",
            backoff_initial_seconds=backoff_initial_seconds,
            backoff_max_seconds=backoff_max_seconds,
            prune_interval_seconds=prune_interval_seconds,
        )
        self.url = url
        self.channel, self.log_key, self.epoch_key, _ = feed_keys(prefix)
        self.health_check_seconds = health_check_seconds
        #: How many times a connection was established and the log read (1 after start).
        self.connections = 0
        self._reread = False
        #: The log was seeded from the auth server's store (its epoch key exists). A log
        #: without it (Redis restarted empty, and the server has not reseeded it yet) lacks
        #: what was revoked before: nothing it says, heartbeats included, makes the set fresh.
        self.seeded = False
        self._pubsub: Any = None

    def _run(self) -> None:
        failures = 0
        while not self._closed.is_set():
            client = redis.Redis.from_url(
                self.url,
                socket_connect_timeout=5.0,
                socket_keepalive=True,
                health_check_interval=self.health_check_seconds,
                # No silent reconnect inside redis-py: a lost connection must come back out
                # here so the log is read again, or what was published meanwhile is missed.
                retry=Retry(NoBackoff(), 0),
            )
            pubsub = client.pubsub()
            connections = self.connections
            try:
                self._follow(client, pubsub)
            except _UNAVAILABLE as error:
                if self.connections > connections:
                    failures = 0  # it was up: a new outage starts with a short backoff
                if self._ready.is_set() or failures == 0:
                    logger.warning("revocation feed: lost Redis (%s); reconnecting", error)
                self._ready.clear()
                delay = self._backoff_seconds(failures)
                failures += 1
                self._closed.wait(delay)
            except Exception:
                # A bug must not silently end the feed: log it, back off, start over.
                logger.exception("revocation feed: unexpected error; reconnecting")
                self._ready.clear()
                self._closed.wait(self.backoff_max_seconds)
            finally:
                self._ready.clear()
                try:
                    pubsub.close()
                    client.close()
                except Exception:  # noqa: S110 - closing a dead connection may fail; no matter
                    pass

    def _follow(self, client: redis.Redis, pubsub: Any) -> None:
        pubsub.subscribe(self.channel)
        # Wait for the subscription to be confirmed: only then is reading the log safe.
        while not self._closed.is_set():
            message = pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "subscribe":
                break
        else:
            return
        # Any reconnect redis-py makes on its own must trigger a new read of the log.
        pubsub.connection.register_connect_callback(self._mark_reread)
        self._read_log(client)
        self.connections += 1
        self._ready.set()
        while not self._closed.is_set():
            if self._reread:
                self._read_log(client)
            message = pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "message":
                self._on_message(client, message["data"])
            self._prune_if_due()

    def _mark_reread(self, _connection: object) -> None:
        self._reread = True

    def _read_log(self, client: redis.Redis) -> None:
        self._reread = False
        # The epoch first: set in the same transaction as a reseed's entries, so if it is
        # there, the log read after it holds everything the store had.
        seeded = bool(client.exists(self.epoch_key))
        low = "-inf"
        applied = 0
        while True:
            page = cast(
                "list[tuple[bytes, float]]",
                client.zrangebyscore(
                    self.log_key, low, "+inf", start=0, num=_CHUNK, withscores=True
                ),
            )
            for member, _ in page:
                applied += self._apply(member)
            if len(page) < _CHUNK:
                break
            # Equal scores are the same stored entry, so paging past the last score is exact.
            low = f"({int(page[-1][1])}"
        if seeded:
            self.revocations.heard()
        self.seeded = seeded
        if not seeded:
            # Until the server's reseed message arrives (and this log is read again), the set
            # may lack entries revoked while Redis was down: stale, so fail-closed refuses.
            self.revocations.unheard()
            logger.warning("revocation feed: the Redis log is not seeded; waiting for a reseed")
        logger.debug("revocation feed: read %d entries from the Redis log", applied)

    def _apply(self, raw: bytes | dict[str, Any]) -> int:
        try:
            document = orjson.loads(raw) if isinstance(raw, bytes | str) else raw
            entry = Revocation.from_json(document)
        except (ValueError, TypeError, AttributeError) as error:
            logger.warning("revocation feed: skipped a malformed entry: %s", error)
            return 0
        self.revocations.add(entry)
        return 1

    def _on_message(self, client: redis.Redis, data: bytes) -> None:
        try:
            message = orjson.loads(data)
            kind = message.get("type")
        except (ValueError, AttributeError):
            logger.warning("revocation feed: skipped a malformed message")
            return
        if kind == "revocation":
            entry = message.get("entry")
            # A malformed entry is not a sign of a healthy feed: it does not count as heard.
            if not isinstance(entry, dict) or not self._apply(entry):
                return
        elif kind == "reseed":
            self._read_log(client)
        elif kind != "heartbeat":
            logger.warning("revocation feed: skipped a message of unknown type %r", kind)
            return
        if self.seeded:
            self.revocations.heard()
