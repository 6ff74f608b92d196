"""Every bad input gets a clear JSON error with a stable code and the right status."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jotkit import Key, jwt
from jotkit.jose.dpop import DEFAULT_DPOP_ALGORITHMS
from servers import ServerProcess, start_server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(answer: object, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert body["error"] == code and body["error_description"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "alice@example.com"}, 422, "validation_failed"),
        ({"email": "not-an-email", "password": "x"}, 422, "validation_failed"),
        ({"email": "alice@example.com", "password": 12}, 422, "validation_failed"),
        ([], 422, "validation_failed"),
    ],
)
def test_login_with_malformed_body_is_422(
    server: ServerProcess, body: object, status: int, code: str
) -> None:
    assert_error(server.client.post("/login", json=body), status, code)


def test_login_with_invalid_json_is_400(server: ServerProcess) -> None:
    answer = server.client.post(
        "/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(answer, 400, "invalid_json")


def test_wrong_password_and_unknown_email_get_the_same_401(server: ServerProcess) -> None:
    wrong = server.client.post("/login", json={"email": server.email, "password": "nope"})
    unknown = server.client.post("/login", json={"email": "bob@example.com", "password": "nope"})
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(unknown, 401, "invalid_credentials")
    assert wrong.json() == unknown.json()


def test_failed_logins_are_throttled_per_account_with_retry_after(server: ServerProcess) -> None:
    for _ in range(5):
        server.client.post("/login", json={"email": server.email, "password": "nope"})
    throttled = server.client.post(
        "/login", json={"email": server.email, "password": server.password}
    )
    assert_error(throttled, 429, "too_many_attempts")
    assert 0 < int(throttled.headers["retry-after"]) <= 901


def _forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_failed_logins_are_throttled_per_client_address(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "3"})
    try:
        # With no trusted proxy, X-Forwarded-For is the client's word: a new one per attempt
        # must not buy a new allowance.
        for index in range(3):
            server.client.post(
                "/login",
                json={"email": f"u{index}@example.com", "password": "x"},
                headers=_forwarded(f"203.0.113.{index}"),
            )
        assert_error(
            server.client.post(
                "/login",
                json={"email": "other@example.com", "password": "x"},
                headers=_forwarded("203.0.113.99"),
            ),
            429,
            "too_many_attempts",
        )
    finally:
        server.stop()


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(tmp_path: Path) -> None:
    env = {"JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "3", "JOTKIT_TRUSTED_PROXIES": "127.0.0.0/8"}
    server = start_server(tmp_path, env=env)
    try:
        for index in range(3):
            server.client.post(
                "/login",
                json={"email": f"u{index}@example.com", "password": "x"},
                headers=_forwarded("203.0.113.7"),
            )
        attacker = server.client.post(
            "/login",
            json={"email": server.email, "password": server.password},
            headers=_forwarded("203.0.113.7"),
        )
        assert_error(attacker, 429, "too_many_attempts")
        # Everyone else behind the same proxy still logs in.
        neighbour = server.client.post(
            "/login",
            json={"email": server.email, "password": server.password},
            headers=_forwarded("203.0.113.8"),
        )
        assert neighbour.status_code == 200, neighbour.text
        assert '"address":"203.0.113.7"' in server.log()
    finally:
        server.stop()


def test_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="JOTKIT_TRUSTED_PROXIES"):
        start_server(tmp_path, users={}, env={"JOTKIT_TRUSTED_PROXIES": "proxy.example.com"})


def test_disabled_user_cannot_log_in_or_refresh(server: ServerProcess) -> None:
    pair = server.login()
    assert server.cli("users", "disable", server.email).returncode == 0
    assert_error(
        server.client.post("/login", json={"email": server.email, "password": server.password}),
        401,
        "invalid_credentials",
    )
    refreshed = server.client.post("/token/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_error(refreshed, 401, "invalid_grant")
    # Disabling revoked every session in the store; the server syncs it into its feed.
    deadline = time.monotonic() + 10
    while server.client.get("/me", headers=bearer(pair["access_token"])).status_code == 200:
        assert time.monotonic() < deadline, "the disabled user's access token still works"
        time.sleep(0.1)


def test_refresh_without_or_with_unknown_token(server: ServerProcess) -> None:
    assert_error(server.client.post("/token/refresh", json={}), 400, "invalid_request")
    assert_error(server.client.post("/token/refresh"), 400, "invalid_request")
    unknown = server.client.post("/token/refresh", json={"refresh_token": "x" * 43})
    assert_error(unknown, 401, "invalid_grant")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"refresh_token": 12}, 400, "invalid_request"),
        ({"refresh_token": ""}, 400, "invalid_request"),
        ({"refresh_token": "x" * 513}, 400, "invalid_request"),
        ({"refresh_token": ["x"]}, 400, "invalid_request"),
        ([], 400, "invalid_request"),
        ("x", 400, "invalid_request"),
        ({"grant_type": "password", "refresh_token": "x" * 43}, 400, "unsupported_grant_type"),
    ],
)
def test_refresh_with_malformed_body(
    server: ServerProcess, body: object, status: int, code: str
) -> None:
    assert_error(server.client.post("/token/refresh", json=body), status, code)
    broken = server.client.post(
        "/token/refresh",
        content=b'{"refresh_token": ',
        headers={"Content-Type": "application/json"},
    )
    assert_error(broken, 400, "invalid_json")


def test_refresh_takes_an_rfc6749_form(server: ServerProcess) -> None:
    # Discovery names /token/refresh the token endpoint, so an OAuth client's refresh works.
    pair = server.login()
    form = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
    rotated = server.client.post("/token/refresh", data=form)
    assert rotated.status_code == 200 and rotated.json()["refresh_token"] != pair["refresh_token"]
    replay = server.client.post("/token/refresh", data=form)
    assert_error(replay, 401, "invalid_grant")
    other = server.client.post("/token/refresh", data={**form, "grant_type": "password"})
    assert_error(other, 400, "unsupported_grant_type")


@pytest.mark.parametrize("header", [None, "Basic abc"])
def test_me_without_bearer_credentials_is_401_with_a_bare_challenge(
    server: ServerProcess, header: str | None
) -> None:
    # RFC 6750 §3.1: no error code in the challenge when the request had no credentials.
    answer = server.client.get("/me", headers={"Authorization": header} if header else {})
    assert_error(answer, 401, "missing_token")
    # ...and the server's endpoints take DPoP too (RFC 9449 §7.1).
    algs = " ".join(DEFAULT_DPOP_ALGORITHMS)
    assert answer.headers["www-authenticate"] == (
        f'Bearer realm="jotkit", DPoP realm="jotkit", algs="{algs}"'
    )


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "bearer  x", "Bearer a,b"])
def test_me_with_a_malformed_authorization_header_is_400(
    server: ServerProcess, header: str
) -> None:
    assert_error(
        server.client.get("/me", headers={"Authorization": header}), 400, "invalid_request"
    )


def _forged(alg: str = "ES256") -> str:
    now = int(time.time())
    claims = {"iss": "x", "sub": "s", "aud": "jotkit", "exp": now + 60, "iat": now}
    return jwt.sign(claims, Key.generate(alg))


def test_me_rejects_tokens_it_did_not_sign(server: ServerProcess) -> None:
    for token in (_forged(), _forged("HS256"), "eyJhbGciOiJub25lIn0.e30.", "garbage"):
        answer = server.client.get("/me", headers=bearer(token))
        assert_error(answer, 401, "invalid_token")
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_me_rejects_a_tampered_token(server: ServerProcess) -> None:
    header, payload, signature = server.login()["access_token"].split(".")
    tampered = f"{header}.{payload[:-2]}AA.{signature}"
    answer = server.client.get("/me", headers=bearer(tampered))
    assert_error(answer, 401, "invalid_token")


def test_unknown_route_and_wrong_method_are_json_errors(server: ServerProcess) -> None:
    assert_error(server.client.get("/no/such/thing"), 404, "not_found")
    assert_error(server.client.put("/login", json={}), 405, "method_not_allowed")


def test_feed_rejects_a_negative_cursor(server: ServerProcess) -> None:
    assert_error(server.client.get("/revocations", params={"since": -1}), 422, "validation_failed")
    assert_error(server.client.get("/revocations", params={"wait": 99}), 422, "validation_failed")


def test_registration_is_closed_without_the_admin_token(server: ServerProcess) -> None:
    answer = server.client.post("/users", json={"email": "bob@example.com", "password": "p" * 12})
    assert_error(answer, 403, "registration_closed")


def test_registration_with_the_admin_token(tmp_path: Path) -> None:
    admin = "a" * 40
    server = start_server(tmp_path, env={"JOTKIT_ADMIN_TOKEN": admin})
    try:
        new = {"email": "bob@example.com", "password": "bob's long password"}
        created = server.client.post("/users", json=new, headers=bearer(admin))
        assert created.status_code == 201 and created.json()["email"] == "bob@example.com"
        assert_error(server.client.post("/users", json=new, headers=bearer(admin)), 409, "conflict")
        short = {"email": "carol@example.com", "password": "short"}
        assert_error(
            server.client.post("/users", json=short, headers=bearer(admin)),
            422,
            "validation_failed",
        )
        assert server.login("bob@example.com", "bob's long password")["access_token"]
    finally:
        server.stop()


def test_open_registration(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"JOTKIT_REGISTRATION": "open"})
    try:
        new = {"email": "Dave@Example.com", "password": "dave's long password"}
        assert server.client.post("/users", json=new).status_code == 201
        assert server.login("dave@example.com", "dave's long password")
    finally:
        server.stop()


def test_a_bad_setting_stops_the_server_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="JOTKIT_HS256_SECRET"):
        start_server(tmp_path, users={}, env={"JOTKIT_ALGORITHM": "HS256"})


def test_the_revocation_feed_can_require_a_token(tmp_path: Path) -> None:
    feed_token = "f" * 40
    server = start_server(tmp_path, env={"JOTKIT_FEED_TOKEN": feed_token})
    try:
        assert_error(server.client.get("/revocations"), 401, "invalid_client")
        wrong = server.client.get("/revocations", headers=bearer("g" * 40))
        assert_error(wrong, 401, "invalid_client")
        assert server.client.get("/revocations", headers=bearer(feed_token)).status_code == 200
    finally:
        server.stop()


def _chunks(total: int, size: int = 16384) -> Iterator[bytes]:
    """A body sent with Transfer-Encoding: chunked (no Content-Length to refuse it by)."""
    for start in range(0, total, size):
        yield b"a" * min(size, total - start)


@pytest.mark.parametrize("path", ["/login", "/token/refresh", "/revoke"])
def test_an_oversized_body_is_413_before_it_is_read(server: ServerProcess, path: str) -> None:
    declared = server.client.post(
        path, content=b"a" * (65536 + 1), headers={"content-type": "application/json"}
    )
    assert_error(declared, 413, "request_too_large")
    chunked = server.client.post(
        path, content=_chunks(8 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert_error(chunked, 413, "request_too_large")
    # Nothing broke: the next request is served as usual.
    login = server.client.post("/login", json={"email": server.email, "password": server.password})
    assert login.status_code == 200, login.text


def test_a_body_under_the_limit_reaches_the_route(server: ServerProcess) -> None:
    padded = b'{"email": "%s", "password": "nope"%s}' % (server.email.encode(), b" " * 60000)
    big_but_allowed = server.client.post(
        "/login", content=padded, headers={"content-type": "application/json"}
    )
    assert_error(big_but_allowed, 401, "invalid_credentials")
    small_chunks = server.client.post(
        "/login",
        content=iter([b'{"email": "', server.email.encode(), b'", "password": "nope"}']),
        headers={"content-type": "application/json"},
    )
    assert_error(small_chunks, 401, "invalid_credentials")


def test_the_body_limit_is_a_setting(tmp_path: Path) -> None:
    (tmp_path / "zero").mkdir()
    (tmp_path / "small").mkdir()
    with pytest.raises(RuntimeError, match="JOTKIT_MAX_BODY_BYTES"):
        start_server(tmp_path / "zero", users={}, env={"JOTKIT_MAX_BODY_BYTES": "0"})
    small = start_server(tmp_path / "small", env={"JOTKIT_MAX_BODY_BYTES": "1024"})
    try:
        login = {"email": "alice@example.com", "password": "nope"}
        assert_error(small.client.post("/login", json=login), 401, "invalid_credentials")
        padded = {**login, "password": "x" * 1024}
        assert_error(small.client.post("/login", json=padded), 413, "request_too_large")
    finally:
        small.stop()


def test_a_broken_multipart_body_is_a_json_error_and_logs_as_json(server: ServerProcess) -> None:
    broken = server.client.post(
        "/revoke",
        content=b"--xx\r\n{garbage",
        headers={"Content-Type": "multipart/form-data; boundary=xx"},
    )
    assert_error(broken, 400, "invalid_request")
    # python-multipart warns about it; that warning is a JSON line like every other.
    lines = [line for line in server.log().splitlines() if not line.startswith("jotkit serving")]
    assert any('"logger":"python_multipart' in line for line in lines)
    for line in lines:
        assert isinstance(json.loads(line), dict), line
