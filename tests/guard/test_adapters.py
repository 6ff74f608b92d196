"""The ASGI and WSGI adapters over real HTTP: uvicorn and werkzeug servers, httpx clients."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from _apps import fastapi_app, flask_app, serve_asgi, serve_wsgi, starlette_app, wsgi_app
from _django_app import django_app
from _issuer import make_token

from jotkit import Key
from jotkit.guard import Guard
from jotkit.jose.dpop import DEFAULT_DPOP_ALGORITHMS
from jotkit.revocation import Revocation, RevocationSet

ISSUER = "https://auth.example.test"


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> Key:
    return Key.generate("ES256", kid="k1")


@pytest.fixture(scope="module")
def feed_clock() -> Monotonic:
    return Monotonic()


@pytest.fixture(scope="module")
def revocations(feed_clock: Monotonic) -> RevocationSet:
    revocations = RevocationSet(max_staleness_seconds=60, monotonic=feed_clock)
    revocations.heard()  # as its feed would after the first catch-up
    return revocations


@pytest.fixture(scope="module")
def guard(key: Key, revocations: RevocationSet) -> Guard:
    return Guard(issuer=ISSUER, audience="jotkit", keys=key.public(), revocation=revocations)


@pytest.fixture(scope="module", params=["fastapi", "flask", "django", "drf"])
def protected(request: pytest.FixtureRequest, guard: Guard) -> Iterator[str]:
    """The base URL of a service whose /me and /admin are protected by a decorator/dependency
    (Django: guard_required; DRF: GuardAuthentication and scopes_required, under /api)."""
    if request.param == "fastapi":
        with serve_asgi(fastapi_app(guard)) as url:
            yield url
    elif request.param == "flask":
        with serve_wsgi(flask_app(guard)) as url:
            yield url
    else:
        with serve_wsgi(django_app(guard)) as url:
            yield url + ("/api" if request.param == "drf" else "")


@pytest.fixture(scope="module", params=["asgi", "wsgi", "django"])
def wrapped(request: pytest.FixtureRequest, guard: Guard) -> Iterator[str]:
    """The base URL of an app wrapped whole by the middleware (/whoami guarded, /healthz not)."""
    if request.param == "asgi":
        with serve_asgi(starlette_app(guard)) as url:
            yield url
    elif request.param == "wsgi":
        with serve_wsgi(wsgi_app(guard)) as url:
            yield url
    else:
        with serve_wsgi(django_app(guard, middleware=True)) as url:
            yield url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# No credentials: both schemes the guard takes (RFC 6750 §3.1, RFC 9449 §7.1).
BOTH_CHALLENGES = (
    f'Bearer realm="{ISSUER}", DPoP realm="{ISSUER}", algs="{" ".join(DEFAULT_DPOP_ALGORITHMS)}"'
)


def test_valid_token_reaches_the_view(protected: str, key: Key) -> None:
    answer = httpx.get(protected + "/me", headers=bearer(make_token(key, ISSUER)))
    assert answer.status_code == 200
    assert answer.json() == {"sub": "user-1", "scope": ["read", "write"]}


def test_no_credentials_is_bare_401_challenge(protected: str) -> None:
    answer = httpx.get(protected + "/me")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == BOTH_CHALLENGES
    assert answer.json()["error"] == "missing_token"


def test_expired_token_is_401_invalid_token(protected: str, key: Key) -> None:
    token = make_token(key, ISSUER, exp=int(time.time()) - 10)
    answer = httpx.get(protected + "/me", headers=bearer(token))
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert answer.json()["code"] == "ERR_JWT_EXPIRED"
    assert answer.headers["Cache-Control"] == "no-store"


def test_malformed_header_is_400_invalid_request(protected: str) -> None:
    answer = httpx.get(protected + "/me", headers={"Authorization": "Bearer a,b"})
    assert answer.status_code == 400
    assert 'error="invalid_request"' in answer.headers["WWW-Authenticate"]


def test_missing_scope_is_403_insufficient_scope(protected: str, key: Key) -> None:
    answer = httpx.get(protected + "/admin", headers=bearer(make_token(key, ISSUER)))
    assert answer.status_code == 403
    assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
    assert 'scope="admin"' in answer.headers["WWW-Authenticate"]
    assert answer.json()["scope"] == "admin"


def test_revoked_session_is_401(protected: str, key: Key, revocations: RevocationSet) -> None:
    sid = uuid.uuid4().hex  # the revocation set is shared by the module's services
    token = make_token(key, ISSUER, sid=sid)
    assert httpx.get(protected + "/me", headers=bearer(token)).status_code == 200
    revocations.add(Revocation("sid", sid, time.time() + 600))
    answer = httpx.get(protected + "/me", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json()["code"] == "ERR_JWT_REVOKED"


def test_stale_feed_is_503_until_heard_again(
    protected: str, key: Key, revocations: RevocationSet, feed_clock: Monotonic
) -> None:
    token = make_token(key, ISSUER)
    feed_clock.now += 61
    try:
        answer = httpx.get(protected + "/me", headers=bearer(token))
        assert answer.status_code == 503
        assert answer.json()["code"] == "ERR_REVOCATION_FEED_STALE"
        assert "Retry-After" in answer.headers
    finally:
        revocations.heard()
    assert httpx.get(protected + "/me", headers=bearer(token)).status_code == 200


GARBAGE = [
    "Bearer x",
    "Bearer a.b.c",
    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "Bearer " + "A" * 20000,
    "Bearer ....",
    "Basic Zm9vOmJhcg==",
]


@pytest.mark.parametrize("header", GARBAGE)
def test_garbage_is_never_a_500(protected: str, header: str) -> None:
    answer = httpx.get(protected + "/me", headers={"Authorization": header})
    assert answer.status_code in (400, 401)
    assert answer.json()["error"]


def test_middleware_puts_claims_on_the_request(wrapped: str, key: Key) -> None:
    answer = httpx.get(wrapped + "/whoami", headers=bearer(make_token(key, ISSUER)))
    assert answer.status_code == 200
    assert answer.json() == {"sub": "user-1"}


def test_middleware_refuses_before_the_app(wrapped: str) -> None:
    answer = httpx.get(wrapped + "/whoami", headers={"Authorization": "Bearer a.b.c"})
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_token"


def test_middleware_exempt_path_needs_no_token(wrapped: str) -> None:
    assert httpx.get(wrapped + "/healthz").status_code == 200


def test_asgi_middleware_refuses_repeated_authorization(guard: Guard, key: Key) -> None:
    token = make_token(key, ISSUER)
    with serve_asgi(starlette_app(guard)) as url:
        answer = httpx.get(
            url + "/whoami",
            headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
        )
    assert answer.status_code == 400


def test_fastapi_without_error_handler_keeps_status_and_challenge(guard: Guard) -> None:
    with serve_asgi(fastapi_app(guard, with_handler=False)) as url:
        answer = httpx.get(url + "/me")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == BOTH_CHALLENGES
    assert "detail" in answer.json()


def test_cookie_mode_over_http(key: Key, guard: Guard) -> None:
    module_guard = guard
    guard = Guard(issuer=ISSUER, audience="jotkit", keys=key.public(), cookie_name="at")
    token = make_token(key, ISSUER)
    with serve_asgi(fastapi_app(guard)) as url:
        answer = httpx.get(url + "/me", cookies={"at": token})
    assert answer.status_code == 200
    with serve_wsgi(flask_app(guard)) as url:
        answer = httpx.get(url + "/me", cookies={"at": token})
    assert answer.status_code == 200
    try:
        with serve_wsgi(django_app(guard)) as url:
            answer = httpx.get(url + "/me", cookies={"at": token})
    finally:
        django_app(module_guard)  # Django's settings are global: give them back
    assert answer.status_code == 200


def test_django_test_client_cases(guard: Guard, key: Key) -> None:
    """The same cases through Django's own test client, plain views and DRF views."""
    from django.test import Client

    django_app(guard)  # points the settings at this module's guard
    client = Client()
    token = make_token(key, ISSUER)
    for prefix in ("", "/api"):
        ok = client.get(prefix + "/me", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.content
        assert ok.json() == {"sub": "user-1", "scope": ["read", "write"]}
        missing = client.get(prefix + "/me")
        assert missing.status_code == 401
        assert missing["WWW-Authenticate"] == BOTH_CHALLENGES
        bad = client.get(prefix + "/me", headers={"Authorization": "Bearer a.b.c"})
        assert bad.status_code == 401
        assert bad.json()["error"] == "invalid_token"
        assert 'error="invalid_token"' in bad["WWW-Authenticate"]
        scope = client.get(prefix + "/admin", headers={"Authorization": f"Bearer {token}"})
        assert scope.status_code == 403
        assert scope.json()["code"] == "ERR_GUARD_INSUFFICIENT_SCOPE"
        assert scope["Cache-Control"] == "no-store"
