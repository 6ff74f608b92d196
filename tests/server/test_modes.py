"""Cookie mode with CSRF, key rotation mid-flight, HS256 mode, keys encrypted at rest."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jotkit import KeySet, jwt
from servers import JOTKIT, ServerProcess, start_server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_cookie_mode_sets_httponly_cookies_and_requires_csrf(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, env={"JOTKIT_COOKIE_MODE": "true", "JOTKIT_COOKIE_SECURE": "false"}
    )
    try:
        answer = server.client.post(
            "/login", json={"email": server.email, "password": server.password}
        )
        assert answer.status_code == 200
        cookies = {c.split("=", 1)[0]: c for c in answer.headers.get_list("set-cookie")}
        assert "HttpOnly" in cookies["jotkit_access"] and "Path=/" in cookies["jotkit_access"]
        assert (
            "HttpOnly" in cookies["jotkit_refresh"] and "Path=/token" in cookies["jotkit_refresh"]
        )
        assert "HttpOnly" not in cookies["jotkit_csrf"]  # the page must read it to echo it
        assert all("SameSite=strict" in c for c in cookies.values())
        csrf = answer.json()["csrf_token"]
        jar = {
            "jotkit_access": answer.cookies["jotkit_access"],
            "jotkit_csrf": answer.cookies["jotkit_csrf"],
        }
        with httpx.Client(base_url=server.url, cookies=jar) as browser:
            assert browser.get("/me").status_code == 200  # safe method: no CSRF token needed
            refused = browser.post("/logout")
            assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
            wrong = browser.post("/logout", headers={"X-CSRF-Token": "guess"})
            assert wrong.status_code == 403
            # An empty Authorization header still means "the cookie": still CSRF-checked.
            for path in ("/logout", "/logout/all"):
                empty = browser.post(path, headers={"Authorization": ""})
                assert empty.status_code == 403 and empty.json()["error"] == "csrf_failed"
            assert browser.get("/me").status_code == 200  # the session survived those
        refresh_jar = {
            "jotkit_refresh": answer.cookies["jotkit_refresh"],
            "jotkit_csrf": answer.cookies["jotkit_csrf"],
        }
        with httpx.Client(base_url=server.url, cookies=refresh_jar) as browser:
            assert browser.post("/token/refresh", json={}).status_code == 403
            assert browser.post("/token/refresh").status_code == 403  # no body: the cookie
            # No body at all is how a cookie client asks; the cookie is the token.
            rotated = browser.post("/token/refresh", headers={"X-CSRF-Token": csrf})
            assert rotated.status_code == 200
        new_jar = {
            "jotkit_access": rotated.cookies["jotkit_access"],
            "jotkit_csrf": rotated.cookies["jotkit_csrf"],
        }
        with httpx.Client(base_url=server.url, cookies=new_jar) as browser:
            out = browser.post("/logout", headers={"X-CSRF-Token": rotated.json()["csrf_token"]})
            assert out.status_code == 204
            assert "jotkit_access=" in out.headers["set-cookie"]  # cleared
            assert browser.get("/me").status_code == 401
        # Bearer stays available in cookie mode.
        pair = server.login()
        assert server.client.get("/me", headers=bearer(pair["access_token"])).status_code == 200
    finally:
        server.stop()


def _wait_for(condition: object, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_key_rotation_mid_flight_keeps_every_token_valid(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        old = server.login()
        old_kid = jwt.peek(old["access_token"])[0]["kid"]
        rotated = server.cli("keys", "rotate", "--publish-ahead", "2", "--emergency")
        assert rotated.returncode == 0, rotated.stderr

        def jwks_kids() -> set[str]:
            return {k["kid"] for k in server.client.get("/.well-known/jwks.json").json()["keys"]}

        # The new key is published before it signs anything.
        _wait_for(lambda: len(jwks_kids()) == 2, "new key not published")
        new_kid = (jwks_kids() - {old_kid}).pop()

        def signs_with_new_key() -> bool:
            return jwt.peek(server.login()["access_token"])[0]["kid"] == new_kid

        _wait_for(signs_with_new_key, "new key never started signing")
        new = server.login()
        keys = KeySet.from_jwks(server.client.get("/.well-known/jwks.json").json())
        for pair in (old, new):
            assert server.client.get("/me", headers=bearer(pair["access_token"])).status_code == 200
            jwt.verify(pair["access_token"], keys, issuer=server.url, audience="jotkit")
        # The retired key stays published until its tokens have expired.
        assert old_kid in jwks_kids()
        listing = server.cli("keys", "list")
        assert old_kid in listing.stdout and "removed after" in listing.stdout
    finally:
        server.stop()


def test_hs256_mode_signs_with_the_shared_secret_and_publishes_nothing(tmp_path: Path) -> None:
    secret = "s" * 48
    server = start_server(
        tmp_path, env={"JOTKIT_ALGORITHM": "HS256", "JOTKIT_HS256_SECRET": secret}
    )
    try:
        pair = server.login()
        assert jwt.peek(pair["access_token"])[0]["alg"] == "HS256"
        assert server.client.get("/.well-known/jwks.json").json() == {"keys": []}
        assert server.client.get("/me", headers=bearer(pair["access_token"])).status_code == 200
    finally:
        server.stop()


def test_private_keys_are_encrypted_at_rest_with_a_master_key(tmp_path: Path) -> None:
    master = "m" * 40
    # A fixed issuer: the restarted server listens on another port.
    env = {"JOTKIT_MASTER_KEY": master, "JOTKIT_ISSUER": "https://auth.test"}
    server = start_server(tmp_path, env=env)
    try:
        pair = server.login()
    finally:
        server.stop()
    database = tmp_path / "jotkit.db"
    stored = sqlite3.connect(database).execute("SELECT private_jwk FROM signing_keys").fetchall()
    assert stored and all(row[0].startswith("aesgcm:") for row in stored)
    # Without the master key the server refuses to start rather than sign with nothing.
    without = {k: v for k, v in server.env.items() if k != "JOTKIT_MASTER_KEY"}
    refused = subprocess.run(
        [JOTKIT, "keys", "rotate"], capture_output=True, text=True, env=without, timeout=60
    )
    assert refused.returncode == 1
    assert "JOTKIT_MASTER_KEY" in refused.stderr and "Traceback" not in refused.stderr
    with pytest.raises(RuntimeError, match=r"ERR_CONFIG.*JOTKIT_MASTER_KEY"):
        start_server(tmp_path, users={}, env={"JOTKIT_MASTER_KEY": ""})
    # With it, a restart loads the same key: old tokens still verify.
    again = start_server(tmp_path, users={}, env=env)
    try:
        assert again.client.get("/me", headers=bearer(pair["access_token"])).status_code == 200
    finally:
        again.stop()


def test_the_embedded_database_file_is_private(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    server.stop()
    mode = stat.S_IMODE(os.stat(tmp_path / "jotkit.db").st_mode)
    assert mode == 0o600


@pytest.fixture
def two_instances(
    tmp_path: Path, postgres_url: str
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two `jotkit serve` on one PostgreSQL database (the second has no users of its own)."""
    env = {"JOTKIT_ISSUER": "https://auth.test", "JOTKIT_DATABASE_URL": postgres_url}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = start_server(tmp_path / "a", database_url=postgres_url, env=env)
    second = start_server(tmp_path / "b", users={}, database_url=postgres_url, env=env)
    yield first, second
    first.stop()
    second.stop()


def test_two_servers_on_one_postgresql_share_sessions_and_revocations(
    two_instances: tuple[ServerProcess, ServerProcess],
) -> None:
    """Scale-out: any instance refreshes any session; a logout on one reaches the other."""
    first, second = two_instances
    pair = first.login()
    assert second.client.get("/me", headers=bearer(pair["access_token"])).status_code == 200
    rotated = second.client.post("/token/refresh", json={"refresh_token": pair["refresh_token"]})
    assert rotated.status_code == 200
    # The replay lands on the other instance: still detected, family revoked.
    replay = first.client.post("/token/refresh", json={"refresh_token": pair["refresh_token"]})
    assert replay.status_code == 401
    new_access = rotated.json()["access_token"]
    _wait_for(
        lambda: second.client.get("/me", headers=bearer(new_access)).status_code == 401,
        "the revocation written by one instance never reached the other",
    )
    feed = second.client.get("/revocations").json()
    assert any(entry["kind"] == "sid" for entry in feed["entries"])


def test_an_instance_misses_no_revocation_the_other_stored_just_before_its_own(
    two_instances: tuple[ServerProcess, ServerProcess],
) -> None:
    """B stores entry N-1, A stores N within the same sync interval: A's own N must not move
    its cursor past N-1, or A's guard and every feed client following A would never see it."""
    first, second = two_instances
    for _ in range(5):
        on_first, on_second = first.login(), second.login()
        second.client.post("/logout", headers=bearer(on_second["access_token"]))
        first.client.post("/logout", headers=bearer(on_first["access_token"]))
        sid = jwt.peek(on_second["access_token"])[1]["sid"]
        feed = first.client.get("/revocations", params={"since": 0}).json()
        assert any(entry["value"] == sid for entry in feed["entries"]), "feed skipped it"
        me = first.client.get("/me", headers=bearer(on_second["access_token"]))
        assert me.status_code == 401
