"""The store on both engines: SQLite files and the real PostgreSQL server.

PostgreSQL tests run in a schema of their own (conftest's ``postgres_url``); they skip where
PostgreSQL is not reachable, and fail instead under CI=true.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from jotkit.revocation import Revocation
from jotkit.store import Conflict, Presented, Rotation, Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    opened = Store(url)
    opened.migrate()
    yield opened
    opened.close()


def _family(store: Store, token_hash: str = "h0") -> tuple[str, str]:
    user = store.add_user(f"{uuid.uuid4().hex}@example.com", "argon2-hash", now=time.time())
    family = store.create_family(
        user, token_hash=token_hash, now=time.time(), idle_ttl=60, absolute_ttl=600
    )
    return user.id, family.id


def test_emails_are_unique_case_insensitively(store: Store) -> None:
    store.add_user("Ann@Example.com", "hash", now=time.time())
    with pytest.raises(Conflict):
        store.add_user("ann@example.com", "hash", now=time.time())
    assert store.user_by_email("ANN@example.com") is not None


def test_rotation_spends_the_token_and_replay_revokes_the_family(store: Store) -> None:
    _, sid = _family(store)
    now = time.time()
    first = store.rotate(
        Presented(
            "h0",
            "h1",
            sealed_successor=b"sealed h1",
            now=now,
            idle_ttl=60,
            grace=0,
            forget_after=now + 60,
        )
    )
    assert first.outcome == "ok"
    replay = store.rotate(
        Presented(
            "h0",
            "h2",
            sealed_successor=b"sealed h2",
            now=now + 1,
            idle_ttl=60,
            grace=0,
            forget_after=now + 60,
        )
    )
    assert replay.outcome == "reused"
    assert replay.revocation is not None and replay.revocation.value == sid
    assert replay.revocation.cursor > 0
    after = store.rotate(
        Presented(
            "h1",
            "h3",
            sealed_successor=b"sealed h3",
            now=now + 2,
            idle_ttl=60,
            grace=0,
            forget_after=now + 60,
        )
    )
    assert after.outcome == "revoked"


def test_the_previous_token_within_the_grace_gets_the_current_one_sealed(store: Store) -> None:
    _family(store)
    now = time.time()
    store.rotate(
        Presented(
            "h0",
            "h1",
            sealed_successor=b"sealed h1",
            now=now,
            idle_ttl=60,
            grace=5,
            forget_after=now + 60,
        )
    )
    late = store.rotate(
        Presented(
            "h0",
            "h2",
            sealed_successor=b"sealed h2",
            now=now + 1,
            idle_ttl=60,
            grace=5,
            forget_after=now + 60,
        )
    )
    assert late.outcome == "previous" and late.revocation is None
    assert late.sealed_successor == b"sealed h1"
    assert (
        store.rotate(
            Presented(
                "h1",
                "h3",
                sealed_successor=b"sealed h3",
                now=now + 2,
                idle_ttl=60,
                grace=5,
                forget_after=now,
            )
        ).outcome
        == "ok"
    )


def test_an_expired_refresh_token_is_refused(store: Store) -> None:
    _family(store)
    later = time.time() + 61
    assert store.rotate(
        Presented(
            "h0",
            "h1",
            sealed_successor=b"sealed h1",
            now=later,
            idle_ttl=60,
            grace=0,
            forget_after=later,
        )
    ).outcome == ("expired")


@pytest.mark.parametrize("grace", [0, 5])
def test_concurrent_rotations_of_one_token_let_exactly_one_through(
    store: Store, grace: float
) -> None:
    """One wins; with a grace the others wait for it and get its successor, not theft."""
    _, sid = _family(store)
    results: list[Rotation] = []
    barrier = threading.Barrier(8)

    def rotate(index: int) -> None:
        barrier.wait()
        now = time.time()
        result = store.rotate(
            Presented(
                "h0",
                f"next-{index}",
                sealed_successor=f"sealed next-{index}".encode(),
                now=now,
                idle_ttl=60,
                grace=grace,
                forget_after=now + 60,
            )
        )
        results.append(result)

    threads = [threading.Thread(target=rotate, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = [result.outcome for result in results]
    assert outcomes.count("ok") == 1, outcomes
    if grace == 0:
        assert set(outcomes) <= {"ok", "reused", "revoked"}
        return
    assert outcomes.count("previous") == 7, outcomes
    found = store.find_refresh_token("h0")
    assert found is not None and found[3] is not None
    (winner,) = {result.sealed_successor for result in results if result.outcome == "previous"}
    assert winner is not None and store.find_refresh_token(winner.decode()[7:]) is not None
    assert store.family(sid) is not None and store.family(sid).revoked_at is None  # type: ignore[union-attr]


def test_sign_out_everywhere_revokes_each_session_and_sets_a_watermark(store: Store) -> None:
    user_id, sid = _family(store)
    user = store.user_by_id(user_id)
    assert user is not None
    other = store.create_family(
        user, token_hash="other", now=time.time(), idle_ttl=60, absolute_ttl=60
    )
    now = time.time()
    entries = store.revoke_user(user_id, reason="logout_all", now=now, forget_after=now + 60)
    kinds = sorted((e.kind, e.value) for e in entries)
    assert kinds == sorted([("sid", sid), ("sid", other.id), ("sub", user_id)])
    watermark = next(e for e in entries if e.kind == "sub")
    assert watermark.not_before == float(int(now))
    assert store.sessions(user_id, now=now) == []


def test_feed_cursors_increase_and_old_entries_are_pruned(store: Store) -> None:
    now = time.time()
    old = store.add_revocation(Revocation("jti", "old", now - 10), now=now)
    live = store.add_revocation(Revocation("jti", "live", now + 60), now=now)
    newest = store.add_revocation(Revocation("jti", "newest", now - 5), now=now)
    assert old.cursor < live.cursor < newest.cursor
    assert [e.value for e in store.revocations_since(0, now=now)] == ["live"]
    assert [e.value for e in store.revocations_since(live.cursor, now=now)] == []
    store.prune(now=now)
    # The last row survives pruning so that cursors never go back.
    assert store.last_cursor() == newest.cursor
    nxt = store.add_revocation(Revocation("jti", "next", now + 60), now=now)
    assert nxt.cursor > newest.cursor


def test_login_failures_count_within_a_window(store: Store) -> None:
    now = time.time()
    for _ in range(3):
        store.record_failure(["account:a"], now=now, window=60)
    assert store.throttle_status(["account:a"], now=now, window=60) == {"account:a": (3, now + 60)}
    assert store.throttle_status(["account:a"], now=now + 61, window=60) == {}
    store.record_failure(["account:a"], now=now + 61, window=60)
    assert store.throttle_status(["account:a"], now=now + 61, window=60) == {
        "account:a": (1, now + 121)
    }
    store.clear_failures("account:a")
    assert store.throttle_status(["account:a"], now=now + 61, window=60) == {}


def test_migrations_are_idempotent(store: Store) -> None:
    store.migrate()
    store.migrate()
    assert store.ping()


def _first_schema_family(store: Store) -> None:
    """A user and a session with refresh token h0, written with the first schema's columns
    (the store's own inserts name the newest schema's)."""
    now = time.time()
    user_id, sid = uuid.uuid4().hex, uuid.uuid4().hex
    rows = (
        "INSERT INTO users (id, email, password_hash, disabled, scope, created_at, not_before)"
        " VALUES (:user, :email, 'argon2-hash', false, '', :now, 0)",
        "INSERT INTO families (id, user_id, created_at, last_used_at, expires_at, user_agent,"
        " client_address) VALUES (:sid, :user, :now, :now, :now + 600, '', '')",
        "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at)"
        " VALUES ('h0', :sid, :now, :now + 60)",
    )
    values = {"user": user_id, "sid": sid, "email": f"{user_id}@example.com", "now": now}
    with store.engine.begin() as connection:
        for row in rows:
            connection.execute(text(row), values)


def test_sessions_of_the_first_schema_rotate_after_the_upgrade(store: Store) -> None:
    """0002 adds the successor columns, 0003 the DPoP binding; sessions made before them go
    on (and both go back)."""
    from alembic import command
    from alembic.config import Config

    import jotkit.store.engine

    config = Config()
    config.set_main_option("script_location", str(jotkit.store.engine._MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    _first_schema_family(store)
    store.migrate()
    now = time.time()
    presented = functools.partial(Presented, now=now, idle_ttl=60, grace=5, forget_after=now)
    assert store.rotate(presented("h0", "h1", sealed_successor=b"sealed h1")).outcome == "ok"
    assert store.rotate(presented("h0", "h2", b"sealed h2")).outcome == "previous"


def test_an_unreachable_database_raises_a_store_error() -> None:
    from jotkit.store import StoreError

    dead = Store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    assert dead.ping() is False
    with pytest.raises(StoreError):
        dead.user_by_email("a@example.com")


def test_a_session_was_last_used_at_its_newest_refresh(store: Store) -> None:
    user_id, sid = _family(store)
    created = store.sessions(user_id, now=time.time())[0]
    assert created.id == sid and created.last_used_at == created.created_at
    later = created.created_at + 5
    store.rotate(
        Presented(
            "h0",
            "h1",
            sealed_successor=b"sealed h1",
            now=later,
            idle_ttl=60,
            grace=0,
            forget_after=later + 60,
        )
    )
    assert store.sessions(user_id, now=later)[0].last_used_at == later


def test_a_link_lost_at_commit_is_an_error_whose_outcome_is_unknown(postgres_url: str) -> None:
    # The server ends the session while the transaction idles; the COMMIT then finds the
    # connection gone: the client cannot know whether it committed, and must say so.
    from sqlalchemy import text

    from jotkit.store import StoreError

    store = Store(postgres_url)
    store.migrate()
    try:
        with pytest.raises(StoreError) as failed, store._write() as connection:
            connection.execute(text("SET LOCAL idle_in_transaction_session_timeout = '50ms'"))
            time.sleep(0.5)
        assert failed.value.outcome_unknown is True
        with pytest.raises(StoreError) as refused, store._write() as connection:
            connection.execute(text("SELECT 1/0"))  # fails before the commit: nothing written
        assert refused.value.outcome_unknown is False
    finally:
        store.close()


def test_concurrent_first_failures_all_count(store: Store) -> None:
    # Sixteen wrong passwords at once for an account never seen: select-then-insert let two
    # of them insert (a Conflict: 503 for a wrong password) or lose a count.
    key = f"account:{uuid.uuid4().hex}"
    now = time.time()
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def fail() -> None:
        start.wait()
        try:
            store.record_failure([key, "address:x"], now=now, window=60)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fail) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert store.throttle_status([key], now=now, window=60)[key][0] == 16


def test_a_dpop_proof_is_first_used_once_until_it_expires(store: Store) -> None:
    assert store.first_use_of_proof("p" * 64, now=100, expires_at=200) is True
    assert store.first_use_of_proof("p" * 64, now=150, expires_at=250) is False
    assert store.first_use_of_proof("p" * 64, now=201, expires_at=300) is True  # expired
    assert store.first_use_of_proof("q" * 64, now=201, expires_at=300) is True


def test_a_shared_secret_is_made_once(store: Store) -> None:
    first = store.shared_secret("dpop_nonce", now=1)
    assert len(first) == 32
    assert store.shared_secret("dpop_nonce", now=2) == first
    assert store.shared_secret("other", now=2) != first


def test_a_bound_family_rotated_with_another_key_is_revoked(store: Store) -> None:
    user = store.add_user(f"{uuid.uuid4().hex}@example.com", "argon2-hash", now=time.time())
    family = store.create_family(
        user, token_hash="h0", now=time.time(), idle_ttl=60, absolute_ttl=600, dpop_jkt="jkt-a"
    )
    now = time.time()
    presented = functools.partial(Presented, now=now, idle_ttl=60, grace=0, forget_after=now)

    def rotate(*args: Any, **kwargs: Any) -> Rotation:
        return store.rotate(presented(*args, **kwargs))

    assert rotate("h0", "h1", sealed_successor=b"s", dpop_jkt="jkt-a").outcome == "ok"
    stolen = rotate("h1", "h2", sealed_successor=b"s", dpop_jkt="jkt-b")
    assert stolen.outcome == "key_mismatch" and stolen.revocation is not None
    assert rotate("h1", "h2", sealed_successor=b"s", dpop_jkt="jkt-a").outcome == "revoked"
    assert store.family(family.id).revoked_reason == "dpop_key_mismatch"  # type: ignore[union-attr]


def test_an_unbound_family_is_refused_where_bearer_is_not_allowed(store: Store) -> None:
    _family(store)
    now = time.time()
    refused = store.rotate(
        Presented(
            "h0",
            "h1",
            sealed_successor=b"s",
            now=now,
            idle_ttl=60,
            grace=0,
            forget_after=now,
            dpop_jkt="jkt-a",
            bearer_allowed=False,
        )
    )
    assert refused.outcome == "unbound" and refused.revocation is None


def test_a_link_lost_during_the_one_statement_rotation_is_an_outcome_unknown(
    postgres_url: str,
) -> None:
    # PostgreSQL rotates in one autocommit statement: if the connection dies while it runs,
    # the statement may have committed, and the error must say the outcome is unknown.
    from sqlalchemy import create_engine, text

    from jotkit.store import StoreError

    store = Store(postgres_url)
    store.migrate()
    _family(store)
    holder = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    failed: list[BaseException] = []

    def rotate() -> None:
        now = time.time()
        try:
            store.rotate(
                Presented(
                    "h0",
                    "h1",
                    sealed_successor=b"s",
                    now=now,
                    idle_ttl=60,
                    grace=0,
                    forget_after=now,
                )
            )
        except StoreError as exc:
            failed.append(exc)

    try:
        with holder.connect() as connection:
            connection.execute(
                text("SELECT 1 FROM refresh_tokens WHERE token_hash = 'h0' FOR UPDATE")
            )
            mine = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            rotating = threading.Thread(target=rotate)
            rotating.start()
            # The rotation's backend is the one waiting on this connection's row lock.
            deadline = time.monotonic() + 30
            while not connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE :mine = ANY(pg_blocking_pids(pid))"
                ),
                {"mine": mine},
            ).all():
                assert time.monotonic() < deadline, "the rotation never waited on the lock"
                time.sleep(0.01)
            rotating.join(30)
            connection.rollback()
        assert len(failed) == 1 and isinstance(failed[0], StoreError)
        assert failed[0].outcome_unknown is True
    finally:
        holder.dispose()
        store.close()
