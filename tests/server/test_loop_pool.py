"""The event loop's PostgreSQL connections (store/loop.py), on the real server.

What the refresh path relies on: a database that is down fails the statement at once with a
store error (the server's 503), not after a pool timeout; a connection the server dropped is
replaced; a statement cancelled midway or cut off never leaves its connection for the next one;
and no more than ``size`` connections are open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from jotkit.store import Conflict, Presented, Rotation, Store, StoreError
from jotkit.store.engine import POOL_TIMEOUT_SECONDS
from jotkit.store.loop import LoopConnections
from servers import PG_URL


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    opened = Store(postgres_url, pool_connections=2)
    opened.migrate()
    opened.open_on_loop()
    yield opened
    opened.close()


def _pool(store: Store) -> LoopConnections:
    assert store.on_loop is not None
    return store.on_loop


async def _backend_pid(pool: LoopConnections) -> int:
    row = await pool.fetch_one("SELECT pg_backend_pid()", {})
    assert row is not None
    return int(row[0])


def _terminate(pid: int) -> None:
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_sqlite_keeps_its_statements_off_the_loop(tmp_path: object) -> None:
    embedded = Store(f"sqlite:///{tmp_path}/jotkit.db")
    embedded.open_on_loop()
    assert embedded.on_loop is None


def test_a_statement_runs_in_the_stores_schema(store: Store) -> None:
    async def scenario() -> None:
        pool = _pool(store)
        # The store's tables are found: the connection has the store's search path.
        assert await pool.fetch_one("SELECT count(*) FROM users", {}) == (0,)
        assert await pool.fetch_one("SELECT %(n)s::int + 1", {"n": 41}) == (42,)
        await store.close_on_loop()

    asyncio.run(scenario())


def test_a_database_that_is_down_fails_at_once_with_a_store_error() -> None:
    dead = Store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    dead.open_on_loop()

    async def scenario() -> float:
        started = time.monotonic()
        with pytest.raises(StoreError) as refused:
            await _pool(dead).fetch_one("SELECT 1", {})
        assert "cannot connect to the database" in str(refused.value)
        assert refused.value.outcome_unknown is False  # nothing was sent: nothing written
        return time.monotonic() - started

    # A bound on behaviour, not a speed test: waiting out the pool timeout is the bug.
    assert asyncio.run(scenario()) < POOL_TIMEOUT_SECONDS


def test_a_connection_dropped_while_idle_is_replaced_after_the_ping(store: Store) -> None:
    async def scenario() -> None:
        pool = _pool(store)
        first = await _backend_pid(pool)
        _terminate(first)
        pool.ping_idle_seconds = 0.0  # "idle long enough"
        assert await _backend_pid(pool) != first  # pinged, found dead, replaced
        await store.close_on_loop()

    asyncio.run(scenario())


def test_a_session_the_server_ended_is_noticed_before_use_without_a_ping(store: Store) -> None:
    # A PostgreSQL shutdown ends every idle session: the next request must not send its
    # statement into the closed link (an "outcome unknown" 503 for a change never sent).
    async def scenario() -> None:
        pool = _pool(store)
        first = await _backend_pid(pool)
        await asyncio.to_thread(_terminate, first)
        await asyncio.sleep(0.2)  # the FATAL message and the close reach the client
        assert await _backend_pid(pool) != first  # used a moment ago, so not pinged
        await store.close_on_loop()

    asyncio.run(scenario())


def test_a_link_cut_during_the_statement_is_an_unknown_outcome_and_is_not_reused(
    store: Store,
) -> None:
    async def scenario() -> None:
        pool = _pool(store)
        victim = await _backend_pid(pool)
        sleeping = asyncio.create_task(pool.fetch_one("SELECT pg_sleep(5)", {}))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(_terminate, victim)
        with pytest.raises(StoreError) as cut:
            await sleeping
        assert cut.value.outcome_unknown is True  # it may have committed before the cut
        assert await _backend_pid(pool) != victim
        await store.close_on_loop()

    asyncio.run(scenario())


def _running(query: str) -> int:
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = :q"),
            {"q": query},
        ).scalar_one()
    admin.dispose()
    return int(count)


def test_a_cancelled_statement_is_cancelled_in_the_server_too(store: Store) -> None:
    # A request cancelled mid-statement (shutdown, a client gone) must neither leave the
    # statement running nor hand its connection, mid-statement, to the next caller.
    async def scenario() -> None:
        pool = _pool(store)
        sleeping = asyncio.create_task(pool.fetch_one("SELECT pg_sleep(30)", {}))
        await asyncio.sleep(0.3)
        assert await asyncio.to_thread(_running, "SELECT pg_sleep(30)") == 1
        sleeping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeping
        assert await asyncio.to_thread(_running, "SELECT pg_sleep(30)") == 0
        assert await pool.fetch_one("SELECT 7", {}) == (7,)
        await store.close_on_loop()

    asyncio.run(scenario())


def test_no_more_than_size_connections_are_open(store: Store) -> None:
    async def scenario() -> set[int]:
        pool = _pool(store)
        rows = await asyncio.gather(
            *(pool.fetch_one("SELECT pg_backend_pid() FROM pg_sleep(0.1)", {}) for _ in range(8))
        )
        await store.close_on_loop()
        return {row[0] for row in rows if row is not None}

    assert len(asyncio.run(scenario())) <= 2  # the store's pool_connections


def test_a_constraint_violation_is_a_conflict_and_other_errors_a_store_error(
    store: Store,
) -> None:
    insert = (
        "INSERT INTO users (id, email, password_hash, disabled, scope, created_at, not_before) "
        "VALUES ('u1', 'a@example.com', 'x', false, '', 0, 0)"
    )

    async def scenario() -> None:
        pool = _pool(store)
        await pool.fetch_one(insert, {})
        # Its own transaction, committed: another connection (the thread pool's) sees it.
        assert await asyncio.to_thread(store.user_count) == 1
        with pytest.raises(Conflict):
            await pool.fetch_one(insert, {})
        with pytest.raises(StoreError) as failed:
            await pool.fetch_one("SELECT 1 / 0", {})
        assert failed.value.outcome_unknown is False  # PostgreSQL answered: nothing committed
        assert await pool.fetch_one("SELECT 1", {}) == (1,)  # the connection is still good
        await store.close_on_loop()

    asyncio.run(scenario())


def test_the_rotation_on_the_loop_settles_the_common_case_and_leaves_the_rest(
    store: Store,
) -> None:
    # Concurrent rotations of one token: exactly one spends it, the others match nothing and
    # are left to judge (the general path), which sees the spend as the one before them.
    user = store.add_user("ann@example.com", "hash", now=time.time())
    family = store.create_family(
        user, token_hash="h0", now=time.time(), idle_ttl=60, absolute_ttl=600
    )
    now = time.time()

    def presented(successor: str) -> Presented:
        return Presented(
            "h0", successor, b"sealed", now=now, idle_ttl=60, grace=0, forget_after=now + 60
        )

    async def scenario() -> list[Rotation | None]:
        rotations = await asyncio.gather(
            *(store.rotate_on_loop(presented(f"h{index}")) for index in range(1, 9))
        )
        await store.close_on_loop()
        return rotations

    rotations = asyncio.run(scenario())
    winners = [rotation for rotation in rotations if rotation is not None]
    assert len(winners) == 1 and winners[0].outcome == "ok"
    assert winners[0].family is not None and winners[0].family.id == family.id
    assert winners[0].user == user
    assert store.judge(presented("h9")).outcome == "reused"  # grace 0: a replay is theft
