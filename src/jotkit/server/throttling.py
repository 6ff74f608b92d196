"""Login throttling counters: failed logins per key (``account:<email>``, ``address:<ip>``)
in fixed windows of ``login_window_seconds``, kept in the store or, with ``redis_url``, in Redis.

Both are shared by every instance (and every ``--workers`` process) on one database or Redis,
so a client throttled by one instance is throttled by all. Redis takes the writes of a
password-guessing flood off the database.

In Redis, key ``{prefix}:login-failures:{key}`` holds the count; the first failure of a window
sets its expiry, in one Lua script with the increment (atomic: no count without an expiry, no
lost increment). When Redis does not answer, the counters fall back to the store's for
``_REDIS_RETRY_SECONDS``, then Redis is tried again: logins go on and stay throttled, by the
database's counts. Failures counted on one side are not seen by the other, so across each
switch a key may get up to one more window's allowance (documented in docs/server.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from jotkit.extras import require_extra
from jotkit.server.metrics import Metrics
from jotkit.store import Store

__all__ = ["LoginCounters", "RedisCounters", "StoreCounters"]

log = logging.getLogger("jotkit.server")

# After a Redis error, the store counts for this long before Redis is tried again, so that a
# Redis that times out does not add its timeout to every login.
_REDIS_RETRY_SECONDS = 5.0

# KEYS: the counters; ARGV[1]: the window in ms. PTTL < 0 also repairs a key left without an
# expiry (written by hand): a counter must never outlive its window for ever.
_COUNT_FAILURE = """
for _, key in ipairs(KEYS) do
  local failures = redis.call('INCR', key)
  if failures == 1 or redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
  end
end
return 1
"""


class LoginCounters(Protocol):
    """Where failed logins are counted."""

    def status(self, keys: Sequence[str], *, now: float) -> dict[str, tuple[int, float]]:
        """(failures, when the window ends) of each key with failures in its window."""

    def record_failure(self, keys: Sequence[str], *, now: float) -> None:
        """Count one failed login against each key."""

    def clear(self, key: str, *, now: float) -> None:
        """Forget a key's failures (after a successful login)."""

    def close(self) -> None:
        """Release connections (at shutdown)."""


class StoreCounters:
    """The counters in the store's ``login_failures`` table."""

    def __init__(self, store: Store, *, window_seconds: float) -> None:
        """Count in ``store`` over windows of ``window_seconds``."""
        self._store = store
        self._window = window_seconds

    def status(self, keys: Sequence[str], *, now: float) -> dict[str, tuple[int, float]]:
        """(failures, when the window ends) of each key with failures in its window."""
        return self._store.throttle_status(keys, now=now, window=self._window)

    def record_failure(self, keys: Sequence[str], *, now: float) -> None:
        """Count one failed login against each key."""
        self._store.record_failure(keys, now=now, window=self._window)

    def clear(self, key: str, *, now: float) -> None:
        """Forget a key's failures (after a successful login)."""
        self._store.clear_failures(key)

    def close(self) -> None:
        """Nothing to release: the store is closed with the service."""


class RedisCounters:
    """The counters in Redis, falling back to ``fallback`` while Redis does not answer."""

    def __init__(
        self,
        url: str,
        fallback: LoginCounters,
        metrics: Metrics,
        *,
        window_seconds: float,
        prefix: str = "jotkit",
        timeout_seconds: float = 0.5,
    ) -> None:
        """Connect lazily to ``url``; nothing is sent yet."""
        require_extra("login throttling in Redis", "'jotkit[redis]'", "redis")
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._unavailable = (redis.RedisError, OSError)
        # One immediate retry: after a Redis restart the pooled connection is dead, and the
        # first command on it should reconnect instead of failing.
        self._client: Any = redis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 1),
        )
        self._count_failure = self._client.register_script(_COUNT_FAILURE)
        self._fallback = fallback
        self._metrics = metrics
        self._window_ms = int(window_seconds * 1000)
        self._prefix = f"{prefix}:login-failures:"
        self._down_until = 0.0  # monotonic; while in the future, the fallback counts

    def _redis_up(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, error: BaseException) -> None:
        if self._redis_up():
            log.warning(
                "redis login throttling unavailable (%s): counting in the database for %g s",
                type(error).__name__,
                _REDIS_RETRY_SECONDS,
            )
        self._down_until = time.monotonic() + _REDIS_RETRY_SECONDS
        self._metrics.inc("jotkit_login_throttle_fallbacks_total")

    def status(self, keys: Sequence[str], *, now: float) -> dict[str, tuple[int, float]]:
        """(failures, when the window ends) of each key with failures in its window."""
        if self._redis_up():
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.get(self._prefix + key)
                pipe.pttl(self._prefix + key)
            try:
                replies = pipe.execute()
            except self._unavailable as error:
                self._failed(error)
            else:
                found = {}
                for key, count, ttl_ms in zip(keys, replies[::2], replies[1::2], strict=True):
                    if count is not None:
                        ends = now + (ttl_ms / 1000 if ttl_ms >= 0 else self._window_ms / 1000)
                        found[key] = (int(count), ends)
                return found
        return self._fallback.status(keys, now=now)

    def record_failure(self, keys: Sequence[str], *, now: float) -> None:
        """Count one failed login against each key."""
        if self._redis_up():
            try:
                self._count_failure(keys=[self._prefix + k for k in keys], args=[self._window_ms])
                return
            except self._unavailable as error:
                self._failed(error)
        self._fallback.record_failure(keys, now=now)

    def clear(self, key: str, *, now: float) -> None:
        """Forget a key's failures (after a successful login)."""
        if self._redis_up():
            try:
                self._client.delete(self._prefix + key)
                return
            except self._unavailable as error:
                self._failed(error)
        self._fallback.clear(key, now=now)

    def close(self) -> None:
        """Release the Redis connections."""
        self._client.close()
