"""Replay caches (RFC 9449 §11.1 jti tracking): memory bound and TTL, Redis SET NX PX."""

from __future__ import annotations

import uuid

import pytest
import redis

from jotkit.revocation.replay import MemoryReplayCache, RedisReplayCache, ReplayCacheUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_memory_cache_refuses_a_second_use_until_the_ttl() -> None:
    clock = Clock()
    cache = MemoryReplayCache(clock=clock)
    assert cache.first_use("a", 60)
    assert not cache.first_use("a", 60)
    clock.now = 61
    assert cache.first_use("a", 60)


def test_memory_cache_is_bounded_and_drops_expired_first() -> None:
    clock = Clock()
    cache = MemoryReplayCache(max_entries=3, clock=clock)
    for name in ("a", "b", "c", "d"):
        assert cache.first_use(name, 60)
    assert len(cache) == 3
    clock.now = 61
    assert cache.first_use("e", 60)
    assert len(cache) == 1  # a, b, c, d had expired: all dropped on the way


def test_memory_cache_prunes_expired_entries_at_most_every_second_and_when_full() -> None:
    clock = Clock()
    cache = MemoryReplayCache(max_entries=4, clock=clock)

    def use(name: str, at: float) -> bool:
        clock.now = at
        return cache.first_use(name, 1)

    assert use("a", 0)  # prunes (nothing); the next prune is due at 1.0
    assert use("b", 0.5)
    assert use("c", 1.2)  # due: "a" (expired at 1.0) dropped
    assert len(cache) == 2
    assert use("d", 1.6)  # not due before 2.2: "b" (expired at 1.5) stays, harmlessly...
    assert len(cache) == 3
    assert use("b", 1.7)  # ...a jti past its window is accepted again, as it must be
    assert not use("b", 1.8)
    assert use("e", 1.8)
    assert len(cache) == 4
    assert use("f", 1.9)  # full: prunes at once, the oldest live entry ("c") goes
    assert len(cache) == 4
    assert use("c", 1.95)


def _redis() -> redis.Redis:
    return redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=2)


def _redis_up() -> bool:
    try:
        return bool(_redis().ping())
    except (redis.RedisError, OSError):
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_redis_cache_sets_once_with_expiry() -> None:
    prefix = f"test:replay:{uuid.uuid4().hex}"
    one = RedisReplayCache("redis://127.0.0.1:6379/0", prefix=prefix)
    two = RedisReplayCache(client=_redis(), prefix=prefix)
    assert one.first_use("jti-1", 65)
    assert not two.first_use("jti-1", 65)
    ttl_ms = _redis().pttl(f"{prefix}:jti-1")
    assert 60_000 < ttl_ms <= 65_000


def test_redis_down_fails_closed() -> None:
    cache = RedisReplayCache("redis://127.0.0.1:1/0", socket_timeout_seconds=0.5)
    with pytest.raises(ReplayCacheUnavailable):
        cache.first_use("jti", 60)
