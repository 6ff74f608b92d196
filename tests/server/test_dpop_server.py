"""DPoP at the auth server (RFC 9449 §4.3, §5, §7, §8) over real HTTP to ``jotkit serve``.

One refused proof per rule at each of /login, /token/refresh (400 invalid_dpop_proof, the
token endpoints) and /me (401 with a DPoP challenge, a protected resource); the session
binding (another key or no proof at refresh is theft); required mode; server nonces shared by
two instances on one database, and their rotation; replays across two instances.
"""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from jotkit import Key, jwt
from jotkit.jose import jws
from jotkit.jose.dpop import access_token_hash, make_proof
from servers import (
    DEADLINE_SECONDS,
    DEFAULT_USERS,
    PrivateRedis,
    ServerProcess,
    postgres_schema,
    start_server,
)

INTROSPECTION_SECRET = "introspection-secret-" + "s" * 32
QUIET_THROTTLE = {"JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000"}
CREDENTIALS = {"email": "alice@example.com", "password": DEFAULT_USERS["alice@example.com"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path_factory.mktemp("dpop-server"),
        env={**QUIET_THROTTLE, "JOTKIT_INTROSPECTION_SECRET": INTROSPECTION_SECRET},
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client_key() -> Key:
    return Key.generate("ES256")


@pytest.fixture(scope="module")
def other_key() -> Key:
    return Key.generate("ES256")


def url_of(server: ServerProcess, path: str) -> str:
    """The public URL a proof must name: the issuer and the path."""
    return server.issuer + path


def login(
    server: ServerProcess, key: Key | None = None, *, nonce: str | None = None
) -> httpx.Response:
    headers = {}
    if key is not None:
        headers["DPoP"] = make_proof(key, "POST", url_of(server, "/login"), nonce=nonce)
    return server.client.post("/login", json=CREDENTIALS, headers=headers)


def refresh(server: ServerProcess, token: str, proofs: list[str]) -> httpx.Response:
    return server.client.post(
        "/token/refresh",
        json={"refresh_token": token},
        headers=[("DPoP", proof) for proof in proofs],
    )


def me(
    server: ServerProcess, token: str, proofs: list[str], scheme: str = "DPoP"
) -> httpx.Response:
    return server.client.get(
        "/me", headers=[("Authorization", f"{scheme} {token}"), *(("DPoP", p) for p in proofs)]
    )


def bound_pair(server: ServerProcess, key: Key) -> dict[str, Any]:
    answer = login(server, key)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def forge(key: Key, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A proof with exactly these header members and claims, signed by ``key``."""
    return jws.sign(orjson.dumps(claims), key, header={"kid": None, **header})


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


# -- one refused proof per rule, at each endpoint ---------------------------------------------


@dataclass
class Endpoint:
    """How to send a proof to one endpoint, and what a refusal looks like there."""

    name: str
    method: str
    path: str
    status: int


ENDPOINTS = [
    Endpoint("login", "POST", "/login", 400),
    Endpoint("refresh", "POST", "/token/refresh", 400),
    Endpoint("me", "GET", "/me", 401),
]


@pytest.fixture(params=ENDPOINTS, ids=lambda endpoint: endpoint.name)
def endpoint(request: pytest.FixtureRequest) -> Endpoint:
    return request.param  # type: ignore[no-any-return]


def refused(
    answer: httpx.Response, endpoint: Endpoint, code: str, error: str = "invalid_dpop_proof"
) -> None:
    assert answer.status_code == endpoint.status, answer.text
    body = answer.json()
    assert (body["error"], body["code"]) == (error, code), body
    if endpoint.name == "me":
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith("DPoP ") and f'error="{error}"' in challenge, challenge
        assert 'algs="ES256 ' in challenge


def send_for(
    server: ServerProcess,
    endpoint: Endpoint,
    key: Key,
    make: Callable[[dict[str, Any]], str],
    **claim_overrides: Any,
) -> httpx.Response:
    """Send ``make(claims)`` to ``endpoint``: for /me the token comes first, then the proof
    (its ath needs the token)."""
    htu = claim_overrides.pop("htu", url_of(server, endpoint.path))
    base = {
        "jti": uuid.uuid4().hex,
        "htm": endpoint.method,
        "htu": htu,
        "iat": int(time.time()),
    }
    if endpoint.name == "login":
        claims = {**base, **claim_overrides}
        return server.client.post(
            "/login", json=CREDENTIALS, headers={"DPoP": make(_clean(claims))}
        )
    pair = bound_pair(server, key)
    if endpoint.name == "refresh":
        claims = {**base, **claim_overrides}
        return refresh(server, pair["refresh_token"], [make(_clean(claims))])
    claims = {**base, "ath": access_token_hash(pair["access_token"]), **claim_overrides}
    return me(server, pair["access_token"], [make(_clean(claims))])


def _clean(claims: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in claims.items() if value is not None}


def test_wrong_typ_is_refused(server: ServerProcess, endpoint: Endpoint, client_key: Key) -> None:
    header = {"typ": "JWT", "jwk": client_key.public().to_jwk()}
    answer = send_for(server, endpoint, client_key, lambda c: forge(client_key, header, c))
    refused(answer, endpoint, "ERR_DPOP_TYP")


def test_alg_none_is_refused(server: ServerProcess, endpoint: Endpoint, client_key: Key) -> None:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": client_key.public().to_jwk()}
    answer = send_for(server, endpoint, client_key, lambda c: f"{b64(header)}.{b64(c)}.")
    refused(answer, endpoint, "ERR_DPOP_ALG")


def test_alg_hs256_is_refused(server: ServerProcess, endpoint: Endpoint, client_key: Key) -> None:
    secret = Key.from_secret(b"k" * 32)
    header = {"typ": "dpop+jwt", "jwk": client_key.public().to_jwk()}
    answer = send_for(server, endpoint, client_key, lambda c: forge(secret, header, c))
    refused(answer, endpoint, "ERR_DPOP_ALG")


def test_private_key_in_jwk_is_refused(
    server: ServerProcess, endpoint: Endpoint, client_key: Key
) -> None:
    header = {"typ": "dpop+jwt", "jwk": client_key.to_jwk(private=True)}
    answer = send_for(server, endpoint, client_key, lambda c: forge(client_key, header, c))
    refused(answer, endpoint, "ERR_DPOP_JWK_PRIVATE")


def test_bad_signature_is_refused(
    server: ServerProcess, endpoint: Endpoint, client_key: Key, other_key: Key
) -> None:
    header = {"typ": "dpop+jwt", "jwk": client_key.public().to_jwk()}  # signed by another
    answer = send_for(server, endpoint, client_key, lambda c: forge(other_key, header, c))
    refused(answer, endpoint, "ERR_DPOP_SIGNATURE")


def _proof_by(key: Key) -> Callable[[dict[str, Any]], str]:
    header = {"typ": "dpop+jwt", "jwk": key.public().to_jwk()}
    return lambda claims: forge(key, header, claims)


def test_wrong_htm_is_refused(server: ServerProcess, endpoint: Endpoint, client_key: Key) -> None:
    other = "GET" if endpoint.method == "POST" else "POST"
    answer = send_for(server, endpoint, client_key, _proof_by(client_key), htm=other)
    refused(answer, endpoint, "ERR_DPOP_HTM")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda u: u.replace("http://", "https://"), id="scheme"),
        pytest.param(lambda u: u.replace("127.0.0.1", "localhost"), id="host"),
        pytest.param(lambda u: u.replace("127.0.0.1:", "127.0.0.1:1"), id="port"),
        pytest.param(lambda u: u + "x", id="path"),
    ],
)
def test_htu_of_another_url_is_refused(
    server: ServerProcess, endpoint: Endpoint, client_key: Key, change: Callable[[str], str]
) -> None:
    htu = change(url_of(server, endpoint.path))
    assert htu != url_of(server, endpoint.path)
    answer = send_for(server, endpoint, client_key, _proof_by(client_key), htu=htu)
    refused(answer, endpoint, "ERR_DPOP_HTU")


def test_htu_query_and_fragment_are_ignored(
    server: ServerProcess, endpoint: Endpoint, client_key: Key
) -> None:
    # RFC 9449 §4.3 step 9: compared without query and fragment; the default port is implied.
    htu = url_of(server, endpoint.path) + "?page=2#top"
    answer = send_for(server, endpoint, client_key, _proof_by(client_key), htu=htu)
    assert answer.status_code == 200, answer.text


def test_iat_too_old_is_refused(server: ServerProcess, endpoint: Endpoint, client_key: Key) -> None:
    old = int(time.time()) - 3600
    answer = send_for(server, endpoint, client_key, _proof_by(client_key), iat=old)
    refused(answer, endpoint, "ERR_DPOP_IAT_TOO_OLD")


def test_iat_in_the_future_is_refused(
    server: ServerProcess, endpoint: Endpoint, client_key: Key
) -> None:
    ahead = int(time.time()) + 3600
    answer = send_for(server, endpoint, client_key, _proof_by(client_key), iat=ahead)
    refused(answer, endpoint, "ERR_DPOP_IAT_IN_FUTURE")


def test_missing_jti_is_refused(server: ServerProcess, endpoint: Endpoint, client_key: Key) -> None:
    answer = send_for(server, endpoint, client_key, _proof_by(client_key), jti=None)
    refused(answer, endpoint, "ERR_DPOP_JTI")


def test_replayed_jti_is_refused(
    server: ServerProcess, endpoint: Endpoint, client_key: Key
) -> None:
    jti = uuid.uuid4().hex
    first = send_for(
        server, endpoint, client_key, _proof_by(client_key), jti=jti, iat=int(time.time())
    )
    assert first.status_code == 200, first.text
    # A new proof (new iat) with the same jti by the same key: a replay whatever else changed.
    again = send_for(
        server, endpoint, client_key, _proof_by(client_key), jti=jti, iat=int(time.time()) - 1
    )
    refused(again, endpoint, "ERR_DPOP_REPLAYED")


def test_two_dpop_headers_are_refused(
    server: ServerProcess, endpoint: Endpoint, client_key: Key
) -> None:
    url = url_of(server, endpoint.path)
    if endpoint.name == "me":
        token = bound_pair(server, client_key)["access_token"]
        proofs = [make_proof(client_key, "GET", url, access_token=token) for _ in range(2)]
        refused(me(server, token, proofs), endpoint, "ERR_DPOP_MULTIPLE")
        return
    proofs = [make_proof(client_key, "POST", url) for _ in range(2)]
    if endpoint.name == "login":
        answer = server.client.post(
            "/login", json=CREDENTIALS, headers=[("DPoP", p) for p in proofs]
        )
    else:
        answer = refresh(server, bound_pair(server, client_key)["refresh_token"], proofs)
    refused(answer, endpoint, "ERR_DPOP_MULTIPLE")


def test_garbage_proof_is_refused(
    server: ServerProcess, endpoint: Endpoint, client_key: Key
) -> None:
    answer = send_for(server, endpoint, client_key, lambda _claims: "not.a-proof")
    refused(answer, endpoint, "ERR_DPOP_MALFORMED")


# -- /me: ath, the key, the scheme --------------------------------------------------------------


ME = ENDPOINTS[2]


def test_me_accepts_a_bound_token_with_its_proof(server: ServerProcess, client_key: Key) -> None:
    token = bound_pair(server, client_key)["access_token"]
    proof = make_proof(client_key, "GET", url_of(server, "/me"), access_token=token)
    answer = me(server, token, [proof])
    assert answer.status_code == 200, answer.text
    assert answer.json()["sid"]


def test_me_refuses_a_proof_without_ath(server: ServerProcess, client_key: Key) -> None:
    answer = send_for(server, ME, client_key, _proof_by(client_key), ath=None)
    refused(answer, ME, "ERR_DPOP_ATH")


def test_me_refuses_an_ath_of_another_token(server: ServerProcess, client_key: Key) -> None:
    answer = send_for(server, ME, client_key, _proof_by(client_key), ath=access_token_hash("x"))
    refused(answer, ME, "ERR_DPOP_ATH")


def test_me_refuses_a_proof_by_another_key(
    server: ServerProcess, client_key: Key, other_key: Key
) -> None:
    token = bound_pair(server, client_key)["access_token"]
    proof = make_proof(other_key, "GET", url_of(server, "/me"), access_token=token)
    refused(me(server, token, [proof]), ME, "ERR_DPOP_JKT_MISMATCH")


def test_me_refuses_a_proofless_dpop_request(server: ServerProcess, client_key: Key) -> None:
    token = bound_pair(server, client_key)["access_token"]
    refused(me(server, token, []), ME, "ERR_DPOP_MISSING")


def test_me_refuses_a_bound_token_sent_as_bearer(server: ServerProcess, client_key: Key) -> None:
    token = bound_pair(server, client_key)["access_token"]
    proof = make_proof(client_key, "GET", url_of(server, "/me"), access_token=token)
    answer = me(server, token, [proof], scheme="Bearer")
    refused(answer, ME, "ERR_DPOP_BOUND_TOKEN_AS_BEARER", error="invalid_token")


def test_me_refuses_a_bearer_token_sent_as_dpop(server: ServerProcess, client_key: Key) -> None:
    token = server.login()["access_token"]
    proof = make_proof(client_key, "GET", url_of(server, "/me"), access_token=token)
    refused(me(server, token, [proof]), ME, "ERR_DPOP_TOKEN_NOT_BOUND", error="invalid_token")


# -- issuing and binding ----------------------------------------------------------------------


def test_login_with_a_proof_issues_a_bound_token(server: ServerProcess, client_key: Key) -> None:
    pair = bound_pair(server, client_key)
    assert pair["token_type"] == "DPoP"
    claims = jwt.peek(pair["access_token"])[1]
    assert claims["cnf"] == {"jkt": client_key.thumbprint()}


def test_refresh_of_a_bound_session_stays_bound(server: ServerProcess, client_key: Key) -> None:
    pair = bound_pair(server, client_key)
    for _ in range(2):
        proof = make_proof(client_key, "POST", url_of(server, "/token/refresh"))
        answer = refresh(server, pair["refresh_token"], [proof])
        assert answer.status_code == 200, answer.text
        pair = answer.json()
        assert pair["token_type"] == "DPoP"
        claims = jwt.peek(pair["access_token"])[1]
        assert claims["cnf"] == {"jkt": client_key.thumbprint()}


def _assert_session_revoked(server: ServerProcess, pair: dict[str, Any], key: Key) -> None:
    """The family is dead: its refresh token (with the right key) and its access token."""
    proof = make_proof(key, "POST", url_of(server, "/token/refresh"))
    answer = refresh(server, pair["refresh_token"], [proof])
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_grant", answer.text
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:  # the feed reaches the server's own guard within feed_poll_seconds
        token = pair["access_token"]
        proof = make_proof(key, "GET", url_of(server, "/me"), access_token=token)
        answer = me(server, token, [proof])
        if answer.status_code == 401:
            assert answer.json()["code"] == "ERR_JWT_REVOKED", answer.text
            return
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.05)


def test_refresh_with_another_key_revokes_the_session(
    server: ServerProcess, client_key: Key, other_key: Key
) -> None:
    pair = bound_pair(server, client_key)
    thief = make_proof(other_key, "POST", url_of(server, "/token/refresh"))
    answer = refresh(server, pair["refresh_token"], [thief])
    assert answer.status_code == 400, answer.text
    assert (answer.json()["error"], answer.json()["code"]) == (
        "invalid_dpop_proof",
        "ERR_DPOP_JKT_MISMATCH",
    )
    assert "revoked" in answer.json()["error_description"]
    _assert_session_revoked(server, pair, client_key)


def test_refresh_without_a_proof_revokes_a_bound_session(
    server: ServerProcess, client_key: Key
) -> None:
    pair = bound_pair(server, client_key)
    answer = refresh(server, pair["refresh_token"], [])
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "ERR_DPOP_MISSING"
    _assert_session_revoked(server, pair, client_key)


def test_refresh_of_a_bearer_session_with_a_proof_stays_bearer(
    server: ServerProcess, client_key: Key
) -> None:
    pair = server.login()
    assert pair["token_type"] == "Bearer"
    proof = make_proof(client_key, "POST", url_of(server, "/token/refresh"))
    answer = refresh(server, pair["refresh_token"], [proof])
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"
    assert "cnf" not in jwt.peek(answer.json()["access_token"])[1]


def test_discovery_advertises_the_dpop_algorithms(server: ServerProcess) -> None:
    document = server.client.get("/.well-known/oauth-authorization-server").json()
    assert "ES256" in document["dpop_signing_alg_values_supported"]
    assert "none" not in document["dpop_signing_alg_values_supported"]
    assert not any(alg.startswith("HS") for alg in document["dpop_signing_alg_values_supported"])


def test_introspection_shows_the_binding(server: ServerProcess, client_key: Key) -> None:
    pair = bound_pair(server, client_key)
    auth = {"Authorization": f"Bearer {INTROSPECTION_SECRET}"}
    access = server.client.post("/introspect", data={"token": pair["access_token"]}, headers=auth)
    assert access.json()["active"] is True
    assert access.json()["token_type"] == "DPoP"
    assert access.json()["cnf"] == {"jkt": client_key.thumbprint()}
    refresh_state = server.client.post(
        "/introspect", data={"token": pair["refresh_token"]}, headers=auth
    ).json()
    assert refresh_state["cnf"] == {"jkt": client_key.thumbprint()}


# -- required mode ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def required_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path_factory.mktemp("dpop-required"), env={**QUIET_THROTTLE, "JOTKIT_DPOP": "required"}
    )
    yield running
    running.stop()


def test_required_mode_refuses_a_login_without_a_proof(required_server: ServerProcess) -> None:
    answer = login(required_server)
    assert answer.status_code == 400, answer.text
    assert (answer.json()["error"], answer.json()["code"]) == (
        "invalid_dpop_proof",
        "ERR_DPOP_MISSING",
    )


def test_required_mode_refuses_a_refresh_without_a_proof(
    required_server: ServerProcess, client_key: Key
) -> None:
    pair = bound_pair(required_server, client_key)
    answer = refresh(required_server, pair["refresh_token"], [])
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "ERR_DPOP_MISSING"


def test_required_mode_issues_bound_pairs(required_server: ServerProcess, client_key: Key) -> None:
    pair = bound_pair(required_server, client_key)
    proof = make_proof(client_key, "POST", url_of(required_server, "/token/refresh"))
    answer = refresh(required_server, pair["refresh_token"], [proof])
    assert answer.status_code == 200 and answer.json()["token_type"] == "DPoP", answer.text


# -- nonces and replays across instances --------------------------------------------------------


def _pair_of_instances(
    directory: Path, database_url: str, env: dict[str, str]
) -> tuple[ServerProcess, ServerProcess]:
    """Two ``jotkit serve`` on one database, with one issuer (what a load balancer fronts)."""
    (directory / "a").mkdir()
    (directory / "b").mkdir()
    common = {**QUIET_THROTTLE, "JOTKIT_ISSUER": "https://auth.example.test", **env}
    first = start_server(directory / "a", database_url=database_url, env=common)
    second = start_server(directory / "b", database_url=database_url, env=common, users={})
    return first, second


@pytest.fixture(scope="module")
def nonce_instances(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    directory = tmp_path_factory.mktemp("dpop-nonces")
    pair = _pair_of_instances(
        directory, f"sqlite:///{directory / 'shared.db'}", {"JOTKIT_DPOP_NONCE": "true"}
    )
    yield pair
    for running in pair:
        running.stop()


def test_a_proof_without_a_nonce_gets_use_dpop_nonce(
    nonce_instances: tuple[ServerProcess, ServerProcess], client_key: Key
) -> None:
    first, _ = nonce_instances
    answer = login(first, client_key)
    assert answer.status_code == 400, answer.text
    assert (answer.json()["error"], answer.json()["code"]) == ("use_dpop_nonce", "ERR_DPOP_NONCE")
    assert answer.headers["DPoP-Nonce"]


def test_a_nonce_from_one_instance_works_at_the_other(
    nonce_instances: tuple[ServerProcess, ServerProcess], client_key: Key
) -> None:
    first, second = nonce_instances
    nonce = login(first, client_key).headers["DPoP-Nonce"]
    answer = login(second, client_key, nonce=nonce)
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    fresh = answer.headers["DPoP-Nonce"]
    # The refresh at the first instance, with the nonce the second handed out.
    proof = make_proof(client_key, "POST", url_of(first, "/token/refresh"), nonce=fresh)
    answer = refresh(first, answer.json()["refresh_token"], [proof])
    assert answer.status_code == 200, answer.text
    assert answer.headers["DPoP-Nonce"]


def test_a_forged_nonce_is_refused(
    nonce_instances: tuple[ServerProcess, ServerProcess], client_key: Key
) -> None:
    first, _ = nonce_instances
    real = login(first, client_key).headers["DPoP-Nonce"]
    window, _, mac = real.partition(".")
    forged = f"{window}.{'A' * len(mac)}"
    answer = login(first, client_key, nonce=forged)
    assert answer.status_code == 400 and answer.json()["error"] == "use_dpop_nonce", answer.text


def test_a_proof_replayed_at_another_instance_is_refused_sqlite(
    nonce_instances: tuple[ServerProcess, ServerProcess], client_key: Key
) -> None:
    first, second = nonce_instances
    nonce = login(first, client_key).headers["DPoP-Nonce"]
    proof = make_proof(client_key, "POST", url_of(first, "/login"), nonce=nonce)
    assert first.client.post("/login", json=CREDENTIALS, headers={"DPoP": proof}).status_code == 200
    again = second.client.post("/login", json=CREDENTIALS, headers={"DPoP": proof})
    assert again.status_code == 400, again.text
    assert again.json()["code"] == "ERR_DPOP_REPLAYED"


@pytest.mark.parametrize("backend", ["postgresql", "redis"])
def test_a_proof_replayed_at_another_instance_is_refused(
    backend: str, tmp_path: Path, client_key: Key
) -> None:
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if backend == "redis":
            redis_server = PrivateRedis(tmp_path)
            redis_server.start()
            stack.callback(redis_server.kill)
            env["JOTKIT_REDIS_URL"] = redis_server.url
            database_url = f"sqlite:///{tmp_path / 'shared.db'}"
        else:
            database_url = stack.enter_context(postgres_schema())
        first, second = _pair_of_instances(tmp_path, database_url, env)
        stack.callback(first.stop)
        stack.callback(second.stop)
        token = bound_pair(first, client_key)["access_token"]
        for method, path, extra in (
            ("POST", "/login", {}),
            ("GET", "/me", {"access_token": token}),
        ):
            proof = make_proof(client_key, method, url_of(first, path), **extra)
            if path == "/login":
                used = first.client.post(path, json=CREDENTIALS, headers={"DPoP": proof})
                replayed = second.client.post(path, json=CREDENTIALS, headers={"DPoP": proof})
            else:
                used = me(first, token, [proof])
                replayed = me(second, token, [proof])
            assert used.status_code == 200, used.text
            assert replayed.status_code in (400, 401), replayed.text
            assert replayed.json()["code"] == "ERR_DPOP_REPLAYED"


@pytest.fixture(scope="module")
def rotating_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path_factory.mktemp("dpop-rotation"),
        env={**QUIET_THROTTLE, "JOTKIT_DPOP_NONCE": "true", "JOTKIT_DPOP_NONCE_SECONDS": "1"},
    )
    yield running
    running.stop()


def _window(nonce: str) -> int:
    return int(nonce.partition(".")[0])


def test_a_nonce_two_windows_old_is_refused(
    rotating_server: ServerProcess, client_key: Key
) -> None:
    old = login(rotating_server, client_key).headers["DPoP-Nonce"]
    deadline = time.monotonic() + DEADLINE_SECONDS
    current = old
    while _window(current) < _window(old) + 2:  # the server's nonce has moved on twice
        assert time.monotonic() < deadline, "the nonce never rotated"
        time.sleep(0.2)
        current = login(rotating_server, client_key).headers["DPoP-Nonce"]
    answer = login(rotating_server, client_key, nonce=old)
    assert answer.status_code == 400, answer.text
    assert (answer.json()["error"], answer.json()["code"]) == ("use_dpop_nonce", "ERR_DPOP_NONCE")
    assert _window(answer.headers["DPoP-Nonce"]) >= _window(old) + 2
