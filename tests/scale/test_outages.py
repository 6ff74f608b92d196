"""The reference deployment while Redis or PostgreSQL is down, and after it comes back.

nginx and two ``jotkit serve`` instances run on a PostgreSQL cluster and a redis-server of
the test's own (so stopping them disturbs nobody), with two resource servers from examples/:
one follows the revocation feed over Redis and fails closed once it has been silent for
STALENESS_SECONDS, one follows the HTTP long-poll through nginx.

- Redis down for 10 s: logins and refreshes go on; the Redis-fed verifier refuses every
  token (503) once its feed is stale, the HTTP-fed one keeps verifying and refuses the
  sessions logged out meanwhile; after Redis returns, both refuse every one of those
  sessions (0 revocations lost) and accept the live ones again.
- PostgreSQL down: logins and refreshes answer 503 with a JSON body that says the database
  is unavailable; verifiers go on; once PostgreSQL is back, the same running instances
  serve again by themselves.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from _deployment import Deployment, PrivatePostgres, start_deployment

from jotkit.store.engine import POOL_TIMEOUT_SECONDS
from servers import DEADLINE_SECONDS, ResourceServer, launch, wait_up

STALENESS_SECONDS = 3.0
REDIS_OUTAGE_SECONDS = 10.0


@dataclass
class Stack:
    deployment: Deployment
    postgres: PrivatePostgres
    over_redis: ResourceServer
    over_http: ResourceServer
    email: str
    password: str = "correct horse battery"

    def login(self) -> dict[str, str]:
        answer = self.post("/login", {"email": self.email, "password": self.password})
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def refresh(self, refresh_token: str) -> httpx.Response:
        return self.post("/token/refresh", {"refresh_token": refresh_token})

    def post(self, path: str, body: dict[str, str]) -> httpx.Response:
        return httpx.post(self.deployment.url + path, json=body, timeout=60)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("outages")
    postgres = PrivatePostgres()
    services: list[ResourceServer] = []
    try:
        postgres.start()
        deployment = start_deployment(directory, postgres.url)
        try:
            # Over Redis a heartbeat comes every second, so a short bound shows the policy
            # within the outage; the HTTP feed's long poll answers every 25 s when nothing
            # happens, so that verifier keeps the example's 60 s.
            bound = {"JOTKIT_MAX_STALENESS_SECONDS": str(STALENESS_SECONDS)}
            issuer, redis_url = deployment.url, deployment.redis.url
            services.append(launch("fastapi", issuer, directory, redis_url=redis_url, env=bound))
            services.append(launch("fastapi", issuer, directory, redis_url=None))
            for service in services:
                wait_up(service)
                _wait_for(lambda s=service: _ready(s), f"{service.name} never loaded its feed")
            email = f"outage-{uuid.uuid4().hex[:8]}@example.com"
            deployment.add_user(email)
            yield Stack(deployment, postgres, services[0], services[1], email)
        finally:
            for service in services:
                service.stop()
            deployment.stop()
    finally:
        postgres.remove()


def _ready(service: ResourceServer) -> bool:
    return httpx.get(service.url + "/readyz", timeout=10).status_code == 200


def _wait_for(condition: object, message: str) -> None:
    """Poll ``condition()`` until true; a deadline for what must happen, not a speed test."""
    deadline = time.monotonic() + 2 * DEADLINE_SECONDS
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def _me(service: ResourceServer, access_token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {access_token}"}
    return httpx.get(service.url + "/me", headers=headers, timeout=10)


def test_redis_outage(stack: Stack) -> None:
    services = (stack.over_redis, stack.over_http)
    live = stack.login()
    doomed = [stack.login() for _ in range(5)]  # logged out while Redis is down
    for service in services:
        for pair in (live, *doomed):
            assert _me(service, pair["access_token"]).status_code == 200

    stack.deployment.redis.kill()
    down_since = time.monotonic()
    # The Redis-fed verifier can no longer know about revocations: past its bound it fails
    # closed (503) on every token, a live one too.
    _wait_for(
        lambda: _me(stack.over_redis, live["access_token"]).status_code == 503,
        "the Redis-fed verifier never went stale",
    )
    stale = _me(stack.over_redis, live["access_token"])
    assert stale.json()["code"] == "ERR_REVOCATION_FEED_STALE", stale.text
    for pair in doomed:
        logout = httpx.post(
            stack.deployment.url + "/logout",
            headers={"Authorization": f"Bearer {pair['access_token']}"},
            timeout=60,
        )
        assert logout.status_code == 204, logout.text

    # Logins and refreshes go on for the whole outage; the HTTP feed carries the logouts.
    token = live["refresh_token"]
    rounds = 0
    while time.monotonic() - down_since < REDIS_OUTAGE_SECONDS or rounds < 3:
        stack.login()
        refreshed = stack.refresh(token)
        assert refreshed.status_code == 200, refreshed.text
        token = refreshed.json()["refresh_token"]
        assert _me(stack.over_redis, live["access_token"]).status_code == 503
        assert _me(stack.over_http, live["access_token"]).status_code == 200
        rounds += 1
        time.sleep(0.2)
    for pair in doomed:
        refused = _me(stack.over_http, pair["access_token"])
        assert refused.status_code == 401 and refused.json()["code"] == "ERR_JWT_REVOKED"
        assert _me(stack.over_redis, pair["access_token"]).status_code == 503

    stack.deployment.redis.start()  # empty, as after a crash: the instances reseed it
    _wait_for(
        lambda: _me(stack.over_redis, live["access_token"]).status_code == 200,
        "the Redis-fed verifier never recovered",
    )
    for service in services:
        for pair in doomed:  # 0 revocations lost: every logout of the outage is known
            _wait_for(
                lambda s=service, p=pair: _me(s, p["access_token"]).status_code == 401,
                f"{service.name} lost a revocation made while Redis was down",
            )
    assert stack.refresh(token).status_code == 200


def test_postgres_outage(stack: Stack) -> None:
    pair = stack.login()
    stack.postgres.stop()
    try:
        started = time.monotonic()
        refused = stack.refresh(pair["refresh_token"])
        # At once, with the connect's error: not after waiting out a pool's timeout.
        assert time.monotonic() - started < POOL_TIMEOUT_SECONDS
        for answer in (
            stack.post("/login", {"email": stack.email, "password": stack.password}),
            refused,
        ):
            assert answer.status_code == 503, answer.text
            assert answer.json() == {
                "error": "unavailable",
                "error_description": "the database is unavailable; nothing was changed",
            }
        assert httpx.get(stack.deployment.url + "/readyz", timeout=60).status_code == 503
        # Verification needs no database: both verifiers go on accepting the live session.
        for service in (stack.over_redis, stack.over_http):
            assert _me(service, pair["access_token"]).status_code == 200
    finally:
        stack.postgres.start()
    # The same instances, not restarted, serve again once the database is back.
    _wait_for(
        lambda: stack.refresh(pair["refresh_token"]).status_code == 200,
        "refresh never recovered after PostgreSQL came back",
    )
    stack.login()
    assert httpx.get(stack.deployment.url + "/readyz", timeout=60).status_code == 200
