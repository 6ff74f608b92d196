"""Refresh storms across the reference deployment: nginx, two instances, one PostgreSQL.

Each storm sends 1,000 refreshes at once through nginx: 200 sessions, five requests each.
Half the sessions are "races" (five clients present the same refresh token at once: parallel
tabs, retries), half are "thefts" (four clients present the current token while a fifth
replays one two rotations old). Every answer must be one of those docs/lifecycle.md
documents, the database must never hold two live refresh tokens for one session, and nothing
answers 5xx. The same storms run with reuse_grace_seconds = 0 and with a grace window.

A second test kills one instance with SIGKILL in the middle of a storm of sessions that each
refresh in a chain, retrying on a 5xx or a broken connection as a client must when it
cannot know whether its refresh was made.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from _deployment import Deployment, start_deployment
from sqlalchemy import create_engine, text

from jotkit import jwt
from servers import DEADLINE_SECONDS, postgres_schema

SESSIONS_PER_KIND = 100
CLIENTS_PER_SESSION = 5
GRACE_SECONDS = 30.0  # far longer than a storm takes, even on a loaded machine
CHAIN_SESSIONS = 60
CHAIN_LENGTH = 6


@dataclass
class Stack:
    deployment: Deployment
    grace: float
    email: str
    password: str = "correct horse battery"


@pytest.fixture(
    scope="module",
    params=[0.0, GRACE_SECONDS],
    ids=["grace-0", "grace-30"],
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    grace = float(request.param)
    with postgres_schema() as database_url:
        deployment = start_deployment(
            tmp_path_factory.mktemp("storms"),
            database_url,
            env={"JOTKIT_REUSE_GRACE_SECONDS": str(grace)},
        )
        try:
            email = f"storm-{uuid.uuid4().hex[:8]}@example.com"
            deployment.add_user(email)
            yield Stack(deployment, grace, email)
        finally:
            deployment.stop()


def _sid(pair: dict[str, Any]) -> str:
    return str(jwt.peek(pair["access_token"])[1]["sid"])


async def _logins(stack: Stack, count: int) -> list[dict[str, Any]]:
    """``count`` sessions of the stack's user, logged in through nginx."""
    limit = asyncio.Semaphore(16)
    credentials = {"email": stack.email, "password": stack.password}
    async with httpx.AsyncClient(base_url=stack.deployment.url, timeout=60) as client:

        async def login() -> dict[str, Any]:
            async with limit:
                answer = await client.post("/login", json=credentials)
            assert answer.status_code == 200, answer.text
            return answer.json()  # type: ignore[no-any-return]

        return await asyncio.gather(*(login() for _ in range(count)))


async def _refresh_in_order(url: str, token: str, times: int) -> list[str]:
    """Refresh ``times`` times in a chain; the refresh tokens, oldest first."""
    tokens = [token]
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for _ in range(times):
            answer = await client.post("/token/refresh", json={"refresh_token": tokens[-1]})
            assert answer.status_code == 200, answer.text
            tokens.append(answer.json()["refresh_token"])
    return tokens


@dataclass
class Session:
    kind: str
    sid: str
    presented: list[str]
    thief: int | None = None
    answers: list[httpx.Response] = field(default_factory=list)

    def granted(self) -> list[dict[str, Any]]:
        return [answer.json() for answer in self.answers if answer.status_code == 200]


async def _storm(url: str, sessions: list[Session]) -> None:
    """Every presentation of every session at once, through nginx."""
    total = sum(len(session.presented) for session in sessions)
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        answers = await asyncio.gather(
            *(
                client.post("/token/refresh", json={"refresh_token": token})
                for session in sessions
                for token in session.presented
            )
        )
    position = 0
    for session in sessions:
        session.answers = answers[position : position + len(session.presented)]
        position += len(session.presented)


def _family_rows(database_url: str) -> dict[str, tuple[Any, Any, int]]:
    """sid -> (revoked_at, revoked_reason, live refresh tokens), read from the database."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT f.id, f.revoked_at, f.revoked_reason,"
                    " count(*) FILTER (WHERE t.spent_at IS NULL)"
                    " FROM families f JOIN refresh_tokens t ON t.family_id = f.id"
                    " GROUP BY f.id, f.revoked_at, f.revoked_reason"
                )
            ).all()
    finally:
        engine.dispose()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def _statuses(url: str, tokens: list[str]) -> list[int]:
    """The status of one refresh of each token, sent 32 at a time through nginx."""

    async def run() -> list[int]:
        limit = asyncio.Semaphore(32)
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:

            async def one(token: str) -> int:
                async with limit:
                    answer = await client.post("/token/refresh", json={"refresh_token": token})
                return answer.status_code

            return await asyncio.gather(*(one(token) for token in tokens))

    return asyncio.run(run())


def _assert_no_second_live_token(families: dict[str, tuple[Any, Any, int]]) -> None:
    doubled = {sid: row for sid, row in families.items() if row[2] > 1}
    assert not doubled, f"sessions with two live refresh tokens: {doubled}"


def test_refresh_storm_has_exactly_the_documented_outcomes(stack: Stack) -> None:
    url = stack.deployment.url
    logins = asyncio.run(_logins(stack, 2 * SESSIONS_PER_KIND))
    sessions: list[Session] = []
    for pair in logins[:SESSIONS_PER_KIND]:
        sessions.append(Session("race", _sid(pair), [pair["refresh_token"]] * CLIENTS_PER_SESSION))

    async def thefts() -> list[list[str]]:
        chains = (_refresh_in_order(url, p["refresh_token"], 2) for p in logins[SESSIONS_PER_KIND:])
        return await asyncio.gather(*chains)

    for pair, chain in zip(logins[SESSIONS_PER_KIND:], asyncio.run(thefts()), strict=True):
        # Four clients present the live token; one replays the token two rotations back:
        # older than the previous token, so theft whatever the grace.
        presented = [chain[2]] * (CLIENTS_PER_SESSION - 1)
        thief = CLIENTS_PER_SESSION // 2
        presented.insert(thief, chain[0])
        sessions.append(Session("theft", _sid(pair), presented, thief))

    asyncio.run(_storm(url, sessions))

    statuses = [answer.status_code for session in sessions for answer in session.answers]
    assert len(statuses) == 2 * SESSIONS_PER_KIND * CLIENTS_PER_SESSION
    server_errors = [
        (answer.status_code, answer.text[:200])
        for session in sessions
        for answer in session.answers
        if answer.status_code >= 500
    ]
    assert not server_errors, f"{len(server_errors)} answers 5xx: {server_errors[:5]}"
    for session in sessions:
        for answer in session.answers:
            assert answer.status_code in (200, 401), answer.text
            if answer.status_code == 401:
                assert answer.json()["error"] == "invalid_grant", answer.text
        assert all(_sid(pair) == session.sid for pair in session.granted())

    families = _family_rows(stack.deployment.database_url)
    _assert_no_second_live_token(families)
    dead: list[str] = []
    alive: list[str] = []
    for session in sessions:
        revoked_at, reason, live = families[session.sid]
        granted = session.granted()
        if session.kind == "theft":
            assert session.answers[session.thief].status_code == 401
            assert revoked_at is not None and reason == "reuse", (session.sid, reason)
        elif stack.grace == 0:
            # Of five presentations of one token exactly one wins; each other one presents a
            # spent token, which is a replay: the whole session is revoked.
            assert len(granted) == 1, [a.text for a in session.answers]
            assert revoked_at is not None and reason == "reuse"
        else:
            # The previous token, presented again within the grace, gets a valid pair of the
            # same session and the session's current refresh token: five answers, five pairs,
            # one refresh token, one session, still alive.
            assert len(granted) == CLIENTS_PER_SESSION, [a.text for a in session.answers]
            assert len({pair["refresh_token"] for pair in granted}) == 1
            assert revoked_at is None and live == 1, (revoked_at, reason, live)
        if revoked_at is not None:  # nothing a revoked session was given still refreshes
            dead.extend(pair["refresh_token"] for pair in granted)
        elif granted:  # a live session goes on refreshing, on either instance
            alive.append(granted[-1]["refresh_token"])
    assert set(_statuses(url, dead)) <= {401}
    assert set(_statuses(url, alive)) <= {200}
    if stack.grace > 0:
        assert len(alive) == SESSIONS_PER_KIND
    _assert_no_second_live_token(_family_rows(stack.deployment.database_url))


@dataclass
class Chain:
    """One legitimate client: refreshes in a chain, retrying what it cannot know the outcome of."""

    token: str
    sid: str
    refreshed: int = 0
    retries: int = 0
    final_status: int | None = None
    final_body: str = ""


RETRYABLE = (502, 503, 504)


async def _run_chain(client: httpx.AsyncClient, chain: Chain, done: list[int]) -> None:
    deadline = time.monotonic() + 2 * DEADLINE_SECONDS
    while chain.refreshed < CHAIN_LENGTH:
        try:
            answer = await client.post("/token/refresh", json={"refresh_token": chain.token})
        except httpx.TransportError:
            answer = None
        if answer is None or answer.status_code in RETRYABLE:
            # The outcome is unknown: the instance may have rotated the token before it died.
            # A client retries with the same token (it has no other).
            chain.retries += 1
            assert time.monotonic() < deadline, "retries never succeeded"
            await asyncio.sleep(0.1)
            continue
        chain.final_status = answer.status_code
        chain.final_body = answer.text
        if answer.status_code != 200:
            return
        assert _sid(answer.json()) == chain.sid
        chain.token = answer.json()["refresh_token"]
        chain.refreshed += 1
        done[0] += 1


async def _storm_with_a_kill(deployment: Deployment, chains: list[Chain]) -> int:
    """Run every chain; SIGKILL instance 0 once a third of the refreshes are done.
    Returns the number of refreshes done before the kill."""
    done = [0]
    limits = httpx.Limits(max_connections=len(chains), max_keepalive_connections=len(chains))
    async with httpx.AsyncClient(base_url=deployment.url, timeout=60, limits=limits) as client:
        tasks = [asyncio.create_task(_run_chain(client, chain, done)) for chain in chains]
        deadline = time.monotonic() + 2 * DEADLINE_SECONDS
        while done[0] < len(chains) * CHAIN_LENGTH // 3:
            assert time.monotonic() < deadline, "the storm never got going"
            assert not any(task.done() and task.exception() for task in tasks)
            await asyncio.sleep(0.01)
        killed_at = done[0]
        await asyncio.to_thread(deployment.kill_instance, 0)
        await asyncio.gather(*tasks)
    return killed_at


def test_kill_9_of_one_instance_mid_storm(stack: Stack) -> None:
    deployment = stack.deployment
    chains = [
        Chain(pair["refresh_token"], _sid(pair))
        for pair in asyncio.run(_logins(stack, CHAIN_SESSIONS))
    ]
    try:
        killed_at = asyncio.run(_storm_with_a_kill(deployment, chains))
        # Once instance 0 is dead, nginx sends everything to instance 1 and it all succeeds.
        after = asyncio.run(_logins(stack, 4))
        assert len(after) == 4
    finally:
        deployment.start_instance(0)
    assert 0 < killed_at < CHAIN_SESSIONS * CHAIN_LENGTH
    families = _family_rows(deployment.database_url)
    _assert_no_second_live_token(families)
    lost = [chain for chain in chains if chain.refreshed < CHAIN_LENGTH]
    for chain in lost:
        # The only way a client may lose its session: it retried a refresh that the killed
        # instance had made, and without a grace that retry is a replay.
        assert chain.final_status == 401, chain.final_body
        assert families[chain.sid][1] == "reuse", families[chain.sid]
        assert chain.retries > 0
    if stack.grace > 0:
        assert not lost, [(chain.sid, chain.final_body) for chain in lost]
        # Every session goes on, on either instance.
        assert set(_statuses(deployment.url, [chain.token for chain in chains])) == {200}
