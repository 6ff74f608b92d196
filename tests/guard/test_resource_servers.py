"""Revocation reaches every resource server: real processes, real HTTP, a real redis-server.

One ``jotkit serve`` publishes its revocation feed to a private redis-server; the examples
serve as resource servers: FastAPI following the feed over Redis, Flask over the HTTP
long-poll, and Flask over Redis too. Each scenario logs a fresh user in, checks that every
resource server accepts the tokens, revokes, and waits (with a deadline, not a speed
requirement) until every resource server refuses the affected tokens with ERR_JWT_REVOKED,
while the unaffected ones stay accepted. The last scenario kills Redis mid-test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from servers import (
    PrivateRedis,
    ResourceServer,
    ServerProcess,
    launch,
    require_service,
    start_server,
    wait_up,
)

ADMIN_TOKEN = "resource-servers-admin-" + "b" * 32
# A deadline for what must happen, not a speed requirement: the machine is shared.
DEADLINE_SECONDS = 60.0


@dataclass
class Stack:
    """The auth server, its private Redis and the resource servers that trust it."""

    auth: ServerProcess
    redis: PrivateRedis
    services: list[ResourceServer]
    directory: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # One stack for the module: every scenario logs in a user of its own, so their
    # revocations cannot touch each other's tokens.
    require_service("Redis", "127.0.0.1", 6379)
    directory = tmp_path_factory.mktemp("resource-servers")
    redis = PrivateRedis(directory)  # skips (fails under CI=true) without redis-server
    redis.start()
    started: list[ResourceServer] = []
    auth: ServerProcess | None = None
    try:
        auth = start_server(
            directory,
            users={},
            env={
                "JOTKIT_REDIS_URL": redis.url,
                "JOTKIT_ADMIN_TOKEN": ADMIN_TOKEN,
                "JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
            },
        )
        for example, redis_url in (
            ("fastapi", redis.url),
            ("flask", None),
            ("flask", redis.url),
        ):
            started.append(launch(example, auth.url, directory, redis_url=redis_url))
        for service in started:
            wait_up(service)
        yield Stack(auth, redis, started, directory)
    finally:
        for service in started:
            service.stop()
        if auth is not None:
            auth.stop()
        redis.kill()


@dataclass
class Login:
    """One session of a user: its token pair and its sid."""

    access_token: str
    refresh_token: str
    sid: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def new_user(auth: ServerProcess) -> tuple[str, str]:
    """A user no other scenario has: (email, password)."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = "correct horse battery"
    created = auth.client.post(
        "/users",
        json={"email": email, "password": password},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert created.status_code == 201, created.text
    return email, password


def login(auth: ServerProcess, user: tuple[str, str]) -> Login:
    pair = auth.login(*user)
    return session_of(auth, pair["access_token"], pair["refresh_token"])


def session_of(auth: ServerProcess, access_token: str, refresh_token: str) -> Login:
    me = auth.client.get("/me", headers={"Authorization": f"Bearer {access_token}"})
    assert me.status_code == 200, me.text
    return Login(access_token, refresh_token, me.json()["sid"])


def answer(service: ResourceServer, session: Login) -> httpx.Response:
    return httpx.get(service.url + "/me", headers=session.headers, timeout=10)


def assert_accepted(services: Sequence[ResourceServer], *sessions: Login) -> None:
    """Every service answers 200 to every session's access token, now."""
    for service in services:
        for session in sessions:
            got = answer(service, session)
            assert got.status_code == 200, f"{service.name} refused a live token: {got.text}"


def assert_revoked_everywhere(services: Sequence[ResourceServer], *sessions: Login) -> None:
    """Every service ends up refusing every session's access token as revoked (401)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    for service in services:
        for session in sessions:
            while (got := answer(service, session)).status_code != 401:
                # 200 means "not there yet"; anything else (503 stale, 500) is a failure too.
                assert time.monotonic() < deadline, (
                    f"{service.name} still answers {got.status_code} {got.text} to a revoked "
                    f"token after {DEADLINE_SECONDS:g} s:\n{service.log()[-3000:]}"
                )
                time.sleep(0.05)
            assert got.json()["code"] == "ERR_JWT_REVOKED", (service.name, got.text)
            assert 'error="invalid_token"' in got.headers["www-authenticate"]


@pytest.mark.parametrize("how", ["delete_session", "revoke_refresh_token"])
def test_revoking_a_session_is_refused_by_every_resource_server(stack: Stack, how: str) -> None:
    user = new_user(stack.auth)
    laptop, phone = login(stack.auth, user), login(stack.auth, user)
    assert_accepted(stack.services, laptop, phone)

    if how == "delete_session":  # signed out from the other device
        gone = stack.auth.client.delete(f"/sessions/{laptop.sid}", headers=phone.headers)
        assert gone.status_code == 204, gone.text
    else:  # RFC 7009 on the refresh token: its whole family dies, access tokens included
        gone = stack.auth.client.post(
            "/revoke", data={"token": laptop.refresh_token, "token_type_hint": "refresh_token"}
        )
        assert gone.status_code == 200, gone.text

    assert_revoked_everywhere(stack.services, laptop)
    assert_accepted(stack.services, phone)  # only that session


def test_logout_everywhere_is_refused_by_every_resource_server(stack: Stack) -> None:
    user, bystander = new_user(stack.auth), new_user(stack.auth)
    sessions = [login(stack.auth, user) for _ in range(3)]
    other = login(stack.auth, bystander)
    assert_accepted(stack.services, *sessions, other)

    out = stack.auth.client.post("/logout/all", headers=sessions[0].headers)
    assert out.status_code == 200, out.text
    assert out.json()["revoked_sessions"] == 3

    assert_revoked_everywhere(stack.services, *sessions)
    # The watermark is the user's alone, and only for tokens issued before it.
    assert_accepted(stack.services, other, login(stack.auth, user))


def test_a_replayed_refresh_token_kills_its_family_on_every_resource_server(
    stack: Stack,
) -> None:
    user = new_user(stack.auth)
    first = login(stack.auth, user)
    rotated = stack.auth.client.post("/token/refresh", json={"refresh_token": first.refresh_token})
    assert rotated.status_code == 200, rotated.text
    pair = rotated.json()
    current = session_of(stack.auth, pair["access_token"], pair["refresh_token"])
    assert current.sid == first.sid
    bystander = login(stack.auth, user)  # another session of the same user
    assert_accepted(stack.services, current, bystander)

    # The spent refresh token comes back (a thief's copy): theft detection revokes the family.
    replay = stack.auth.client.post("/token/refresh", json={"refresh_token": first.refresh_token})
    assert replay.status_code == 401, replay.text
    assert replay.json()["error"] == "invalid_grant"

    assert_revoked_everywhere(stack.services, current, first)
    refused = stack.auth.client.post(
        "/token/refresh", json={"refresh_token": current.refresh_token}
    )
    assert refused.status_code == 401, refused.text
    assert_accepted(stack.services, bystander)


def test_a_redis_restart_loses_no_revocation(stack: Stack) -> None:
    # Kept last in the module: it takes Redis down (and brings it back).
    user = new_user(stack.auth)
    before, during, survivor = (login(stack.auth, user) for _ in range(3))
    assert_accepted(stack.services, before, during, survivor)
    revoke = stack.auth.client.delete
    assert revoke(f"/sessions/{before.sid}", headers=survivor.headers).status_code == 204
    assert_revoked_everywhere(stack.services, before)

    stack.redis.kill()  # SIGKILL, no persistence: the log and its epoch key are gone
    try:
        # The auth server stores the revocation durably although it cannot publish it.
        assert revoke(f"/sessions/{during.sid}", headers=survivor.headers).status_code == 204
        over_http = [s for s in stack.services if s.name.endswith("HTTP")]
        over_redis = [s for s in stack.services if s.name.endswith("Redis")]
        assert_revoked_everywhere(over_http, during)  # the HTTP feed does not need Redis
        # Redis-fed servers cannot know yet (nothing carries it to them); still serving.
        assert_accepted(over_redis, during)
    finally:
        stack.redis.start()  # same port, empty

    # The auth server's heartbeat finds the epoch key missing and reseeds the log from its
    # store; the subscribers reconnect, re-read it, and keep what they had.
    assert_revoked_everywhere(stack.services, before, during)
    assert_accepted(stack.services, survivor)
    # A resource server started after the restart knows nothing but the reseeded log, so it
    # refusing both proves the log holds the pre-outage revocation again, not just memory.
    newcomer = launch("fastapi", stack.auth.url, stack.directory, redis_url=stack.redis.url)
    try:
        wait_up(newcomer)
        assert_revoked_everywhere([newcomer], before, during)
        assert_accepted([newcomer], survivor)
    finally:
        newcomer.stop()
