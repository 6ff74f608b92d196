"""Key rotation rules: publish before signing, keep until every token signed has expired."""

from __future__ import annotations

import time
from pathlib import Path

from jotkit.server.keyring import Keyring
from jotkit.server.settings import load_settings
from jotkit.store import Store
from servers import start_server


def _keyring(tmp_path: Path, **overrides: object) -> tuple[Keyring, Store]:
    settings = load_settings(
        environ={}, overrides={"database_url": f"sqlite:///{tmp_path / 'k.db'}", **overrides}
    )
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
