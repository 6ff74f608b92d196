"""Key rotation rules: publish before signing, keep until every token signed has expired."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jotkit.server.app import build_service
from jotkit.server.errors import ApiError
from jotkit.server.keyring import Keyring
from jotkit.server.settings import load_settings
from jotkit.store import Store
from servers import start_server


def _keyring(tmp_path: Path, **overrides: object) -> tuple[Keyring, Store]:
    overrides = {"database_url": f"sqlite:///{tmp_path / 'k.db'}", **overrides}
    settings = load_settings(environ={}, overrides=overrides)
    store = Store(settings.database_url)
    store.migrate()
    keyring = Keyring(settings, store)
    return keyring, store


def test_first_start_creates_one_key_that_signs_at_once(tmp_path: Path) -> None:
    keyring, store = _keyring(tmp_path)
    now = time.time()
    keyring.load(now=now)
    (record,) = keyring.records()
    assert keyring.signing_key(now=now).kid == record.kid
    keyring.load(now=now + 5)  # a restart reuses it
    assert [r.kid for r in keyring.records()] == [record.kid]
    store.close()


def test_a_rotated_key_is_published_first_and_the_old_one_kept_until_its_tokens_expire(
    tmp_path: Path,
) -> None:
    keyring, store = _keyring(tmp_path, access_ttl_seconds=900, clock_skew_seconds=60)
    now = 1_000_000.0
    keyring.load(now=now)
    old = keyring.records()[0]
    new = keyring.rotate(now=now + 10, publish_ahead=600)
    published = {key.kid for key in keyring.verification_keys}
    assert published == {old.kid, new.kid}
    # Until the new key activates, the old one signs; afterwards the new one does.
    assert keyring.signing_key(now=now + 609).kid == old.kid
    assert keyring.signing_key(now=now + 610).kid == new.kid
    retired = next(r for r in keyring.records() if r.kid == old.kid)
    assert retired.retired_at == now + 610
    assert retired.remove_after == now + 610 + 900 + 60
    # Pruning before that keeps it; after it, the old key is gone from the JWKS.
    store.prune(now=now + 610 + 900)
    keyring.reload()
    assert {k.kid for k in keyring.verification_keys} == {old.kid, new.kid}
    store.prune(now=now + 610 + 961)
    keyring.reload()
    assert {k.kid for k in keyring.verification_keys} == {new.kid}
    store.close()


def test_rotation_is_due_on_schedule_only(tmp_path: Path) -> None:
    keyring, store = _keyring(tmp_path, key_rotation_days=1)
    now = 2_000_000.0
    keyring.load(now=now)
    assert not keyring.rotation_due(now=now + 86399)
    assert keyring.rotation_due(now=now + 86400)
    keyring.rotate(now=now + 86400)
    assert not keyring.rotation_due(now=now + 86401)  # a pending key is not rotated again
    store.close()


def test_rotation_days_zero_means_never(tmp_path: Path) -> None:
    # The documented "0: never" must load (it was refused as "must be positive").
    keyring, store = _keyring(tmp_path, key_rotation_days=0)
    now = 2_000_000.0
    keyring.load(now=now)
    assert not keyring.rotation_due(now=now + 10 * 365 * 86400)
    store.close()


def test_the_server_rotates_on_its_schedule(tmp_path: Path) -> None:
    # 0.00003 days = 2.6 s: the server's upkeep (every 5 s) sees the key is due and rotates.
    server = start_server(
        tmp_path,
        env={"JOTKIT_KEY_ROTATION_DAYS": "0.00003", "JOTKIT_KEY_PUBLISH_AHEAD_SECONDS": "3600"},
    )
    try:
        deadline = time.monotonic() + 30
        while len(server.client.get("/.well-known/jwks.json").json()["keys"]) < 2:
            assert time.monotonic() < deadline, "no scheduled rotation"
            time.sleep(0.25)
        assert "jotkit_key_rotations_total 1" in server.client.get("/metrics").text
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'k.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_a_keyring_that_missed_a_rotation_does_not_add_a_second_key(
    tmp_path: Path, database_url: str
) -> None:
    first, first_store = _keyring(tmp_path, database_url=database_url)
    second, second_store = _keyring(tmp_path, database_url=database_url)
    now = time.time()
    first.load(now=now)
    second.load(now=now)
    (initial,) = second.records()
    rotated = first.rotate(now=now + 1, publish_ahead=0)
    assert rotated is not None
    # `second` decides on what it read before the rotation: its key must not be added.
    assert second.rotate(now=now + 2, publish_ahead=0) is None
    assert [r.kid for r in second.records()] == [initial.kid, rotated.kid]
    assert second.signing_key(now=now + 3).kid == rotated.kid
    # Having read the newest key, it rotates as usual.
    assert second.rotate(now=now + 4, publish_ahead=0) is not None
    assert len(first_store.signing_keys()) == 3
    first_store.close()
    second_store.close()


def test_instances_rotating_at_once_add_one_key(tmp_path: Path, postgres_url: str) -> None:
    """Eight keyrings that all saw the same newest key race to rotate on PostgreSQL."""
    rings = [_keyring(tmp_path, database_url=postgres_url) for _ in range(8)]
    now = time.time()
    for keyring, _ in rings:
        keyring.load(now=now)
    start = threading.Barrier(len(rings))
    results: list[object] = []

    def rotate(keyring: Keyring) -> None:
        start.wait()
        results.append(keyring.rotate(now=now + 1, publish_ahead=0))

    threads = [threading.Thread(target=rotate, args=(keyring,)) for keyring, _ in rings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == len(rings)
    assert sum(result is not None for result in results) == 1
    assert len(rings[0][1].signing_keys()) == 2
    for _, store in rings:
        store.close()


def test_with_no_active_key_login_and_refresh_refuse_and_spend_nothing(tmp_path: Path) -> None:
    # A clock set back before every key's activation: the service must ask for the signing
    # key before it writes, so the refresh token survives and no orphan session is made.
    db = tmp_path / "k.db"
    settings = load_settings(
        environ={},
        overrides={
            "database_url": f"sqlite:///{db}",
            "argon2_time_cost": 1,
            "argon2_memory_kib": 8,
            "argon2_parallelism": 1,
        },
    )
    service = build_service(settings)
    user = service.add_user("a@example.com", "correct horse")
    pair = service.login("a@example.com", "correct horse", address="t", user_agent="t")

    def set_activation(when: float) -> None:
        with sqlite3.connect(db) as connection:
            connection.execute("UPDATE signing_keys SET activates_at = ?", (when,))
        service.keyring.reload()

    set_activation(time.time() + 3600)
    with pytest.raises(ApiError) as refused:
        service.refresh(pair.refresh_token, address="t")
    assert refused.value.code == "unavailable"
    with pytest.raises(ApiError):
        service.login("a@example.com", "correct horse", address="t", user_agent="t")
    assert len(service.sessions(user.id)) == 1
    set_activation(0)
    assert service.refresh(pair.refresh_token, address="t").sid == pair.sid  # still unspent
    service.store.close()


def _rotate_in_a_process(url: str, now: float, start: Any, results: Any) -> None:
    keyring, store = _keyring(Path("."), database_url=url)
    keyring.load(now=now)
    start.wait()
    results.put(keyring.rotate(now=now + 1, publish_ahead=0) is not None)
    store.close()


def test_processes_rotating_at_once_on_sqlite_add_one_key(tmp_path: Path) -> None:
    """Eight processes (``--workers`` on one SQLite file) that all saw the same newest key: the
    check and the insert run under one BEGIN IMMEDIATE, so exactly one of them adds a key."""
    url = f"sqlite:///{tmp_path / 'k.db'}"
    first, store = _keyring(tmp_path, database_url=url)
    now = time.time()
    first.load(now=now)
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(8), context.Queue()
    workers = [
        context.Process(target=_rotate_in_a_process, args=(url, now, start, results))
        for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    added = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(60)
    assert added.count(True) == 1
    assert len(store.signing_keys()) == 2
    store.close()
