"""The PostgreSQL pool: a connection is pinged only after an idle spell, and a dead one found
so is replaced without failing the caller.

Pinging every checkout cost a round trip on every refresh (8 round trips per refresh before,
5 now); the ping kept for idle connections is what saves a request from a connection the
server or a proxy dropped meanwhile.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from jotkit.store import Store, StoreError
from jotkit.store import engine as engine_module
from servers import PG_URL


def _backend_pid(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def _store(url: str) -> Store:
    store = Store(url, pool_connections=1)
    store.migrate()
    return store


def test_a_connection_dropped_while_idle_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(postgres_url)
    try:
        first = _backend_pid(store)
        _terminate(first)
        monkeypatch.setattr(engine_module, "PING_IDLE_SECONDS", 0.0)  # "idle long enough"
        assert store.user_count() == 0  # pinged, found dead, replaced: the caller never knew
        assert _backend_pid(store) != first
    finally:
        store.close()


def test_a_connection_in_steady_use_is_not_pinged(postgres_url: str) -> None:
    store = _store(postgres_url)
    try:
        # Used a moment ago, so not pinged: a connection dropped in between fails that one
        # request (as a store error, never a traceback), and the pool replaces it for the next.
        _terminate(_backend_pid(store))
        with pytest.raises(StoreError):
            store.user_count()
        assert store.user_count() == 0
    finally:
        store.close()
