"""DPoP at the guard (RFC 9449 §4.3, §7): one refused proof per rule, over real HTTP.

Every rule runs against a FastAPI dependency (ASGI), a Flask view decorator (WSGI) and Django,
each served by a real server; a proof that breaks a rule must be refused with its own code.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from _apps import fastapi_app, flask_app, serve_asgi, serve_wsgi, starlette_app
from _django_app import django_app
from _issuer import make_token

from jotkit import Key
from jotkit.guard import DPoPError, DPoPNonces, Guard
from jotkit.jose import JoseError, jws
from jotkit.jose.b64 import b64encode
from jotkit.jose.dpop import access_token_hash, make_proof
from jotkit.revocation.replay import RedisReplayCache

ISSUER = "https://auth.example.test"


@pytest.fixture(scope="module")
def issuer_key() -> Key:
    return Key.generate("ES256", kid="k1")


@pytest.fixture(scope="module")
def client_key() -> Key:
    return Key.generate("ES256")


@pytest.fixture(scope="module")
def guard(issuer_key: Key) -> Guard:
    return Guard(issuer=ISSUER, audience="jotkit", keys=issuer_key.public())


@pytest.fixture(scope="module", params=["fastapi", "starlette", "flask", "django"])
def service(request: pytest.FixtureRequest, guard: Guard) -> Iterator[str]:
    """The URL of a protected endpoint; the proofs must name it."""
    if request.param == "fastapi":
        with serve_asgi(fastapi_app(guard)) as url:
            yield url + "/me"
    elif request.param == "starlette":
        with serve_asgi(starlette_app(guard)) as url:
            yield url + "/whoami"
    elif request.param == "flask":
        with serve_wsgi(flask_app(guard)) as url:
            yield url + "/me"
    else:
        with serve_wsgi(django_app(guard)) as url:
            yield url + "/me"


@pytest.fixture(scope="module")
def bound_token(issuer_key: Key, client_key: Key) -> str:
    return make_token(issuer_key, ISSUER, cnf={"jkt": client_key.thumbprint()})


def call(url: str, token: str, proof: str | None, scheme: str = "DPoP") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return httpx.get(url, headers=headers)


def refused(answer: httpx.Response, code: str, error: str = "invalid_dpop_proof") -> None:
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == code
    assert answer.json()["error"] == error
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith("DPoP ")
    assert f'error="{error}"' in challenge
    assert 'algs="ES256 ' in challenge


def forge(key: Key, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A proof with exactly these header members and claims, signed by ``key``."""
    return jws.sign(orjson.dumps(claims), key, header={"kid": None, **header})


def claims_for(url: str, token: str, **overrides: Any) -> dict[str, Any]:
    claims = {
        "jti": uuid.uuid4().hex,
        "htm": "GET",
        "htu": url,
        "iat": int(time.time()),
        "ath": access_token_hash(token),
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def public_jwk(key: Key) -> dict[str, Any]:
    return key.public().to_jwk()


def test_valid_proof_is_accepted(service: str, bound_token: str, client_key: Key) -> None:
    proof = make_proof(client_key, "GET", service, access_token=bound_token)
    answer = call(service, bound_token, proof)
    assert answer.status_code == 200, answer.text
    assert answer.json()["sub"] == "user-1"


def test_query_and_fragment_are_ignored(service: str, bound_token: str, client_key: Key) -> None:
    proof = forge(
        client_key,
        {"typ": "dpop+jwt", "jwk": public_jwk(client_key)},
        claims_for(service, bound_token, htu=service + "?page=2#top"),
    )
    answer = httpx.get(
        service + "?other=1",
        headers={"Authorization": f"DPoP {bound_token}", "DPoP": proof},
    )
    assert answer.status_code == 200, answer.text


def test_replayed_proof_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    proof = make_proof(client_key, "GET", service, access_token=bound_token)
    assert call(service, bound_token, proof).status_code == 200
    refused(call(service, bound_token, proof), "ERR_DPOP_REPLAYED")


def test_missing_proof_is_refused(service: str, bound_token: str) -> None:
    refused(call(service, bound_token, None), "ERR_DPOP_MISSING")


def test_bound_token_sent_as_bearer_is_refused(
    service: str, bound_token: str, client_key: Key
) -> None:
    proof = make_proof(client_key, "GET", service, access_token=bound_token)
    refused(
        call(service, bound_token, proof, scheme="Bearer"),
        "ERR_DPOP_BOUND_TOKEN_AS_BEARER",
        error="invalid_token",
    )


def test_unbound_token_with_dpop_scheme_is_refused(
    service: str, issuer_key: Key, client_key: Key
) -> None:
    token = make_token(issuer_key, ISSUER)
    proof = make_proof(client_key, "GET", service, access_token=token)
    refused(call(service, token, proof), "ERR_DPOP_TOKEN_NOT_BOUND", error="invalid_token")


def test_wrong_typ_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    proof = forge(
        client_key, {"typ": "JWT", "jwk": public_jwk(client_key)}, claims_for(service, bound_token)
    )
    refused(call(service, bound_token, proof), "ERR_DPOP_TYP")


def test_alg_none_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk(client_key)}
    claims = claims_for(service, bound_token)
    proof = f"{b64encode(orjson.dumps(header))}.{b64encode(orjson.dumps(claims))}."
    refused(call(service, bound_token, proof), "ERR_DPOP_ALG")


def test_hs256_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    secret = Key.from_secret(b"s" * 32)
    proof = forge(
        secret, {"typ": "dpop+jwt", "jwk": public_jwk(client_key)}, claims_for(service, bound_token)
    )
    refused(call(service, bound_token, proof), "ERR_DPOP_ALG")


def test_private_key_in_jwk_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    proof = forge(
        client_key,
        {"typ": "dpop+jwt", "jwk": client_key.to_jwk(private=True)},
        claims_for(service, bound_token),
    )
    refused(call(service, bound_token, proof), "ERR_DPOP_JWK_PRIVATE")


def test_bad_signature_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    good = make_proof(client_key, "GET", service, access_token=bound_token)
    other = make_proof(client_key, "GET", service, access_token=bound_token)
    proof = good.rpartition(".")[0] + "." + other.rpartition(".")[2]
    refused(call(service, bound_token, proof), "ERR_DPOP_SIGNATURE")


def test_wrong_htm_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    proof = make_proof(client_key, "POST", service, access_token=bound_token)
    refused(call(service, bound_token, proof), "ERR_DPOP_HTM")


@pytest.mark.parametrize(
    "change",
    [
        lambda url: url.replace("http://", "https://"),
        lambda url: url.replace("127.0.0.1", "localhost"),
        lambda url: re.sub(r":(\d+)/", lambda port: f":{int(port.group(1)) + 1}/", url),
        lambda url: url + "/other",
    ],
    ids=["scheme", "host", "port", "path"],
)
def test_htu_of_another_url_is_refused(
    service: str, bound_token: str, client_key: Key, change: Any
) -> None:
    proof = make_proof(client_key, "GET", change(service), access_token=bound_token)
    refused(call(service, bound_token, proof), "ERR_DPOP_HTU")


def test_old_iat_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    proof = make_proof(client_key, "GET", service, access_token=bound_token, now=time.time() - 120)
    refused(call(service, bound_token, proof), "ERR_DPOP_IAT_TOO_OLD")


def test_future_iat_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    proof = make_proof(client_key, "GET", service, access_token=bound_token, now=time.time() + 60)
    refused(call(service, bound_token, proof), "ERR_DPOP_IAT_IN_FUTURE")


def test_missing_ath_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    proof = make_proof(client_key, "GET", service)
    refused(call(service, bound_token, proof), "ERR_DPOP_ATH")


def test_ath_of_another_token_is_refused(service: str, bound_token: str, client_key: Key) -> None:
    proof = make_proof(client_key, "GET", service, access_token=bound_token + "x")
    refused(call(service, bound_token, proof), "ERR_DPOP_ATH")


def test_proof_by_another_key_is_refused(service: str, bound_token: str) -> None:
    thief = Key.generate("ES256")
    proof = make_proof(thief, "GET", service, access_token=bound_token)
    refused(call(service, bound_token, proof), "ERR_DPOP_JKT_MISMATCH")


def test_two_proofs_are_refused(service: str, bound_token: str, client_key: Key) -> None:
    proof = make_proof(client_key, "GET", service, access_token=bound_token)
    answer = httpx.get(
        service,
        headers=[("Authorization", f"DPoP {bound_token}"), ("DPoP", proof), ("DPoP", proof)],
    )
    refused(answer, "ERR_DPOP_MULTIPLE")


# -- several processes: the Redis replay cache -------------------------------------------------


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
@pytest.mark.parametrize("shared", [True, False], ids=["redis", "memory"])
def test_proof_replayed_to_another_guard(
    issuer_key: Key, client_key: Key, bound_token: str, shared: bool
) -> None:
    """Two guards behind one public URL: with Redis, a proof used at one is refused by the
    other; with their own memory caches (the control), the replay gets through."""
    public = "https://api.example.test"
    prefix = f"test:dpop:{uuid.uuid4().hex}"

    def make_guard() -> Guard:
        replay = RedisReplayCache("redis://127.0.0.1:6379/0", prefix=prefix) if shared else None
        return Guard(
            issuer=ISSUER,
            audience="jotkit",
            keys=issuer_key.public(),
            public_url=public,
            dpop_replay=replay,
        )

    with serve_asgi(fastapi_app(make_guard())) as one, serve_wsgi(flask_app(make_guard())) as two:
        proof = make_proof(client_key, "GET", public + "/me", access_token=bound_token)
        assert call(one + "/me", bound_token, proof).status_code == 200
        answer = call(two + "/me", bound_token, proof)
        if shared:
            refused(answer, "ERR_DPOP_REPLAYED")
        else:
            assert answer.status_code == 200


# -- the guard called directly ------------------------------------------------------------------


def test_guard_without_the_request_url_refuses_dpop(
    guard: Guard, bound_token: str, client_key: Key
) -> None:
    proof = make_proof(client_key, "GET", "https://api.example.test/me", access_token=bound_token)
    with pytest.raises(DPoPError) as caught:
        guard.authenticate(f"DPoP {bound_token}", dpop=proof)
    assert caught.value.code == "ERR_DPOP_HTU"


def test_bound_token_in_a_cookie_is_refused(issuer_key: Key, bound_token: str) -> None:
    cookie_guard = Guard(
        issuer=ISSUER, audience="jotkit", keys=issuer_key.public(), cookie_name="at"
    )
    with pytest.raises(DPoPError) as caught:
        cookie_guard.authenticate(None, {"at": bound_token})
    assert caught.value.code == "ERR_DPOP_BOUND_TOKEN_AS_BEARER"


def test_public_url_must_be_http(issuer_key: Key) -> None:
    with pytest.raises(ValueError, match="public_url"):
        Guard(issuer=ISSUER, audience="jotkit", keys=issuer_key.public(), public_url="api.test")


def test_cnf_without_jkt_is_an_invalid_token(guard: Guard, issuer_key: Key) -> None:
    token = make_token(issuer_key, ISSUER, cnf={"x5t#S256": "abc"})
    with pytest.raises(JoseError) as caught:
        guard.authenticate(f"Bearer {token}")
    assert caught.value.code == "ERR_JWT_INVALID_CNF"


def test_replay_cache_from_a_redis_url(issuer_key: Key) -> None:
    guard = Guard(
        issuer=ISSUER, audience="jotkit", keys=issuer_key.public(), dpop_replay="redis://h:1/0"
    )
    assert isinstance(guard.dpop_replay, RedisReplayCache)  # connects on first use only


def test_guard_nonces_challenge_and_accept(issuer_key: Key, client_key: Key) -> None:
    """RFC 9449 §9: a proof without the resource server's nonce gets use_dpop_nonce and the
    nonce in DPoP-Nonce; the retry with it passes."""
    nonces = DPoPNonces(b"r" * 32)
    guard = Guard(issuer=ISSUER, audience="jotkit", keys=issuer_key.public(), dpop_nonces=nonces)
    token = make_token(issuer_key, ISSUER, cnf={"jkt": client_key.thumbprint()})
    with serve_asgi(fastapi_app(guard)) as base:
        url = base + "/me"
        answer = call(url, token, make_proof(client_key, "GET", url, access_token=token))
        refused(answer, "ERR_DPOP_NONCE", error="use_dpop_nonce")
        nonce = answer.headers["DPoP-Nonce"]
        retry = make_proof(client_key, "GET", url, access_token=token, nonce=nonce)
        assert call(url, token, retry).status_code == 200
