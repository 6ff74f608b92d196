"""The token lifecycle end to end, over real HTTP against a real ``jotkit serve``."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx

from jotkit import KeySet, jwt
from servers import ServerProcess, start_server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_returns_an_rfc9068_access_token_and_an_opaque_refresh_token(
    server: ServerProcess,
) -> None:
    pair = server.login()
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 900
    assert pair["refresh_token"].count(".") == 0 and len(pair["refresh_token"]) >= 43
    jwks = KeySet.from_jwks(server.client.get("/.well-known/jwks.json").json())
    claims = jwt.verify(
        pair["access_token"], jwks, issuer=server.url, audience="jotkit", typ="at+jwt"
    )
    assert set(claims) >= {"iss", "sub", "aud", "exp", "iat", "jti", "sid", "scope", "client_id"}
    assert claims["exp"] - claims["iat"] == 900
    assert "email" not in claims  # nothing personal unless configured
    header, _ = jwt.peek(pair["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"] in jwks


def test_me_answers_the_token_subject(server: ServerProcess) -> None:
    pair = server.login()
    me = server.client.get("/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json()["sub"] == jwt.peek(pair["access_token"])[1]["sub"]


def test_refresh_rotates_and_a_replayed_refresh_token_revokes_the_family(
    server: ServerProcess,
) -> None:
    first = server.login()
    second = server.client.post("/token/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert server.client.get("/me", headers=bearer(rotated["access_token"])).status_code == 200

    replay = server.client.post("/token/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_grant"
    assert "already used" in replay.json()["error_description"]
    # The whole family died: the new refresh token and both access tokens of the session.
    again = server.client.post("/token/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert again.status_code == 401
    for token in (first["access_token"], rotated["access_token"]):
        me = server.client.get("/me", headers=bearer(token))
        assert me.status_code == 401
        assert 'error="invalid_token"' in me.headers["www-authenticate"]
        assert me.json()["code"] == "ERR_JWT_REVOKED"
    assert "refresh_reuse_detected" in server.log()


def test_two_concurrent_refreshes_with_one_token_exactly_one_succeeds(
    server: ServerProcess,
) -> None:
    pair = server.login()
    statuses: list[int] = []
    start = threading.Barrier(2)

    def refresh() -> None:
        with httpx.Client(base_url=server.url) as client:
            start.wait()
            answer = client.post("/token/refresh", json={"refresh_token": pair["refresh_token"]})
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 401]


def test_logout_kills_the_session_and_its_access_token(server: ServerProcess) -> None:
    pair = server.login()
    other = server.login()
    assert server.client.post("/logout", headers=bearer(pair["access_token"])).status_code == 204
    assert server.client.get("/me", headers=bearer(pair["access_token"])).status_code == 401
    refreshed = server.client.post("/token/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401
    # Another device of the same user is untouched.
    assert server.client.get("/me", headers=bearer(other["access_token"])).status_code == 200


def test_logout_all_signs_out_every_session(server: ServerProcess) -> None:
    pairs = [server.login() for _ in range(3)]
    answer = server.client.post("/logout/all", headers=bearer(pairs[0]["access_token"]))
    assert answer.status_code == 200 and answer.json()["revoked_sessions"] == 3
    for pair in pairs:
        assert server.client.get("/me", headers=bearer(pair["access_token"])).status_code == 401
        refreshed = server.client.post(
            "/token/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 401
    # Logging in again afterwards works at once.
    fresh = server.login()
    assert server.client.get("/me", headers=bearer(fresh["access_token"])).status_code == 200


def test_sessions_lists_devices_and_delete_signs_one_out(server: ServerProcess) -> None:
    mine = server.login()
    laptop = server.login()
    listed = server.client.get("/sessions", headers=bearer(mine["access_token"])).json()
    sids = {s["sid"]: s for s in listed["sessions"]}
    laptop_sid = jwt.peek(laptop["access_token"])[1]["sid"]
    assert len(sids) == 2 and sids[jwt.peek(mine["access_token"])[1]["sid"]]["current"]
    deleted = server.client.delete(f"/sessions/{laptop_sid}", headers=bearer(mine["access_token"]))
    assert deleted.status_code == 204
    assert server.client.get("/me", headers=bearer(laptop["access_token"])).status_code == 401
    assert server.client.get("/me", headers=bearer(mine["access_token"])).status_code == 200
    missing = server.client.delete("/sessions/nope", headers=bearer(mine["access_token"]))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_rfc7009_revoke_of_an_access_token_kills_only_that_token(server: ServerProcess) -> None:
    pair = server.login()
    answer = server.client.post("/revoke", data={"token": pair["access_token"]})
    assert answer.status_code == 200
    assert server.client.get("/me", headers=bearer(pair["access_token"])).status_code == 401
    # The session lives on: a refresh yields a working access token.
    refreshed = server.client.post("/token/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    new = refreshed.json()["access_token"]
    assert server.client.get("/me", headers=bearer(new)).status_code == 200


def test_rfc7009_revoke_of_a_refresh_token_ends_its_session(server: ServerProcess) -> None:
    pair = server.login()
    answer = server.client.post(
        "/revoke", data={"token": pair["refresh_token"], "token_type_hint": "refresh_token"}
    )
    assert answer.status_code == 200
    assert server.client.get("/me", headers=bearer(pair["access_token"])).status_code == 401
    refreshed = server.client.post("/token/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401


def test_rfc7009_revoke_of_garbage_is_still_200(server: ServerProcess) -> None:
    assert server.client.post("/revoke", data={"token": "not-a-token"}).status_code == 200
    missing = server.client.post("/revoke", data={})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_rfc7662_introspection(tmp_path: Path) -> None:
    secret = "i" * 40
    server = start_server(tmp_path, env={"JOTKIT_INTROSPECTION_SECRET": secret})
    try:
        pair = server.login()
        auth = {"Authorization": f"Bearer {secret}"}
        access = server.client.post(
            "/introspect", data={"token": pair["access_token"]}, headers=auth
        )
        assert access.json()["active"] is True
        assert access.json()["token_type"] == "access_token"
        refresh = server.client.post(
            "/introspect", json={"token": pair["refresh_token"]}, headers=auth
        ).json()
        assert (
            refresh["active"] is True and refresh["sid"] == jwt.peek(pair["access_token"])[1]["sid"]
        )
        # A hint orders the search and never narrows it (RFC 7662 §2.1).
        for token, kind in (
            (pair["access_token"], "refresh_token"),
            (pair["refresh_token"], "access_token"),
        ):
            hinted = server.client.post(
                "/introspect", data={"token": token, "token_type_hint": kind}, headers=auth
            ).json()
            assert hinted["active"] is True and hinted["token_type"] != kind
        junk = server.client.post("/introspect", data={"token": "x.y.z"}, headers=auth)
        assert junk.json() == {"active": False}
        unauthorized = server.client.post("/introspect", data={"token": pair["access_token"]})
        assert unauthorized.status_code == 401 and unauthorized.json()["error"] == "invalid_client"
        server.client.post("/logout", headers=bearer(pair["access_token"]))
        after = server.client.post(
            "/introspect", data={"token": pair["access_token"]}, headers=auth
        )
        assert after.json() == {"active": False}
    finally:
        server.stop()


def test_discovery_and_jwks_let_standard_clients_find_the_keys(server: ServerProcess) -> None:
    config = server.client.get("/.well-known/oauth-authorization-server")
    assert config.status_code == 200
    document = config.json()
    assert document["issuer"] == server.url
    assert document["jwks_uri"] == f"{server.url}/.well-known/jwks.json"
    jwks = server.client.get("/.well-known/jwks.json")
    assert "max-age=" in jwks.headers["cache-control"]
    assert all("d" not in key for key in jwks.json()["keys"])  # public halves only


def test_health_readiness_metrics_and_openapi(server: ServerProcess) -> None:
    server.login()
    assert server.client.get("/healthz").json() == {"status": "ok"}
    assert server.client.get("/readyz").status_code == 200
    metrics = server.client.get("/metrics").text
    assert re.search(r"^jotkit_logins_total [1-9]", metrics, re.MULTILINE)
    assert "jotkit_verify_seconds_count" in metrics
    # What start-up built is frozen out of full collections (their pauses were the tail).
    frozen = re.search(r"^jotkit_gc_frozen_objects (\d+)$", metrics, re.MULTILINE)
    assert frozen is not None and int(frozen[1]) > 10_000
    assert re.search(r"^jotkit_gc_full_collections \d+$", metrics, re.MULTILINE)
    openapi = server.client.get("/openapi.json").json()
    assert {"/login", "/token/refresh", "/revoke", "/introspect"} <= set(openapi["paths"])


def test_audit_log_holds_no_secrets(server: ServerProcess) -> None:
    pair = server.login()
    server.client.post("/login", json={"email": server.email, "password": "wrong pass"})
    server.client.post("/logout", headers=bearer(pair["access_token"]))
    log = server.log()
    assert '"event":"login"' in log and '"event":"login_failed"' in log
    for secret in (
        "correct horse battery",
        "wrong pass",
        pair["refresh_token"],
        pair["access_token"],
    ):
        assert secret not in log
    assert server.email not in log
