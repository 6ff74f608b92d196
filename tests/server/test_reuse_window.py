"""The reuse window (``reuse_grace_seconds``) over real HTTP, on SQLite and PostgreSQL.

The rule (docs/lifecycle.md, "The reuse window"): within the grace, the refresh token just
before the current one may be presented again and gets the family's current refresh token with
a new access token; outside it, or any older token, is theft. Concurrent refreshes of one token
all succeed under row-lock contention, and a family never has two live refresh tokens.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from jotkit import jwt
from jotkit.server.service import hash_refresh_token
from servers import (
    DEADLINE_SECONDS,
    DEFAULT_USERS,
    ServerProcess,
    postgres_schema,
    start_server,
)

WIDE_GRACE_SECONDS = 30  # wide enough that a loaded machine cannot push a retry out of it
SHORT_GRACE_SECONDS = 1


class Deployment:
    """One database and a ``jotkit serve`` on it for each grace the tests use."""

    def __init__(self, backend: str, database_url: str, directory: Path) -> None:
        self.backend = backend
        self.database_url = database_url
        self.engine: Engine = create_engine(database_url)
        graces: list[float] = [WIDE_GRACE_SECONDS, SHORT_GRACE_SECONDS, 0]
        self._servers = {
            grace: self._start(directory / f"grace-{grace}", grace) for grace in graces
        }
        self._started = list(self._servers.values())

    def server(self, grace: float) -> ServerProcess:
        """The shared server with that ``reuse_grace_seconds``."""
        return self._servers[grace]

    def detach(self, grace: float) -> ServerProcess:
        """The shared server with that grace, given to no later test (it may be killed)."""
        return self._servers.pop(grace)

    def _start(self, directory: Path, grace: float) -> ServerProcess:
        directory.mkdir()
        return start_server(
            directory,
            users=DEFAULT_USERS if grace == WIDE_GRACE_SECONDS else {},  # one store: added once
            database_url=self.database_url,
            env={
                "JOTKIT_ISSUER": "https://auth.test",
                "JOTKIT_REUSE_GRACE_SECONDS": str(grace),
                "JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
            },
        )

    def live_refresh_tokens(self, sid: str) -> int:
        """How many refresh tokens of the family could still be spent (not spent, not revoked)."""
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT count(*) FROM refresh_tokens t JOIN families f"
                        " ON f.id = t.family_id WHERE f.id = :sid"
                        " AND t.spent_at IS NULL AND f.revoked_at IS NULL"
                    ),
                    {"sid": sid},
                ).scalar_one()
            )

    def revoked_reason(self, sid: str) -> str | None:
        with self.engine.connect() as connection:
            reason = connection.execute(
                text("SELECT revoked_reason FROM families WHERE id = :sid"), {"sid": sid}
            ).scalar_one()
        return reason  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def holding_the_row(self, refresh_token_hash: str, waiters: int) -> Iterator[None]:
        """A third transaction holds the token's rows while the block runs; it lets go once
        ``waiters`` requests wait on it (PostgreSQL) or after 0.5 s (SQLite: one writer)."""
        if self.backend == "sqlite":
            writer = sqlite3.connect(self.engine.url.database or "", isolation_level=None)
            writer.execute("BEGIN IMMEDIATE")  # SQLite locks the database, not a row
            try:
                yield
                time.sleep(0.5)
            finally:
                writer.execute("ROLLBACK")
                writer.close()
            return
        with self.engine.connect() as holder:
            holder.execute(
                text(
                    "SELECT 1 FROM refresh_tokens t JOIN families f ON f.id = t.family_id"
                    " WHERE t.token_hash = :hash FOR UPDATE"
                ),
                {"hash": refresh_token_hash},
            )
            yield
            deadline = time.monotonic() + DEADLINE_SECONDS
            while self._lock_waiters() < waiters and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            holder.rollback()

    def _lock_waiters(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query ILIKE '%refresh_tokens%'"
                    )
                ).scalar_one()
            )

    def close(self) -> None:
        for started in self._started:
            started.stop()
        self.engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp(f"reuse-window-{request.param}")
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{directory / 'jotkit.db'}"
            if request.param == "sqlite"
            else stack.enter_context(postgres_schema())
        )
        opened = Deployment(request.param, url, directory)
        stack.callback(opened.close)
        yield opened


def sid_of(pair: dict[str, str]) -> str:
    return str(jwt.peek(pair["access_token"])[1]["sid"])


def refresh(server: ServerProcess, token: str) -> httpx.Response:
    return refresh_with(server.client, token)


def refresh_concurrently(server: ServerProcess, token: str, k: int) -> list[httpx.Response]:
    """``k`` clients, each on its own connection, present ``token`` at the same moment."""
    barrier = threading.Barrier(k)

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            client.get("/healthz")  # connected before the barrier, so the posts start together
            barrier.wait()
            return refresh_with(client, token)

    with ThreadPoolExecutor(k) as pool:
        return list(pool.map(one, range(k)))


def refresh_with(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/token/refresh", json={"refresh_token": token})


def family_problems(
    deployment: Deployment, server: ServerProcess, k: int, *, locked: bool = False
) -> list[str]:
    """Log in, then ``k`` concurrent refreshes of that refresh token (while a third
    transaction holds its rows, if ``locked``): what went wrong, [] if nothing."""
    pair = server.login()
    sid = sid_of(pair)
    holding = (
        deployment.holding_the_row(hash_refresh_token(pair["refresh_token"]), k)
        if locked
        else contextlib.nullcontext()
    )
    with ThreadPoolExecutor(1) as background:
        with holding:
            fired = background.submit(refresh_concurrently, server, pair["refresh_token"], k)
        answers = fired.result()
    refused = [f"{a.status_code} {a.text}" for a in answers if a.status_code != 200]
    if refused:
        return refused
    successors = {answer.json()["refresh_token"] for answer in answers}
    if {sid_of(answer.json()) for answer in answers} != {sid} or len(successors) != 1:
        return [f"answers from other families or distinct refresh tokens: {successors}"]
    live = deployment.live_refresh_tokens(sid)
    if live != 1:
        return [f"{live} live refresh tokens in the family"]
    onward = refresh(server, successors.pop())
    return [] if onward.status_code == 200 else [f"the next refresh: {onward.text}"]


@pytest.mark.parametrize(("k", "families"), [(2, 6), (10, 3)])
def test_concurrent_refreshes_of_one_token_within_the_grace_all_succeed(
    deployment: Deployment, k: int, families: int
) -> None:
    """Parallel tabs: every one gets the family's one current refresh token, none is theft."""
    server = deployment.server(WIDE_GRACE_SECONDS)
    problems = [family_problems(deployment, server, k) for _ in range(families)]
    lost = [found for found in problems if found]
    assert not lost, f"k={k}: {len(lost)} of {families} families failed, first: {lost[0]}"
    metrics = server.client.get("/metrics").text
    assert "jotkit_refresh_previous_total 0\n" not in metrics


@pytest.mark.parametrize(("k", "families"), [(2, 3), (10, 2)])
def test_concurrent_refreshes_waiting_on_a_row_lock_all_succeed(
    deployment: Deployment, k: int, families: int
) -> None:
    """A third transaction holds the rows: the refreshes wait for it, then for each other."""
    server = deployment.server(WIDE_GRACE_SECONDS)
    problems = [family_problems(deployment, server, k, locked=True) for _ in range(families)]
    lost = [found for found in problems if found]
    assert not lost, f"k={k}: {len(lost)} of {families} families failed, first: {lost[0]}"


def test_without_a_grace_concurrent_refreshes_have_one_winner_and_revoke_the_family(
    deployment: Deployment,
) -> None:
    """grace 0: the old rule, unchanged. Any second presentation is theft."""
    server = deployment.server(0)
    for _ in range(3):
        pair = server.login()
        answers = refresh_concurrently(server, pair["refresh_token"], 4)
        assert sorted(answer.status_code for answer in answers) == [200, 401, 401, 401]
        assert deployment.revoked_reason(sid_of(pair)) == "reuse"
        assert deployment.live_refresh_tokens(sid_of(pair)) == 0


def test_a_token_older_than_the_previous_one_is_theft(deployment: Deployment) -> None:
    server = deployment.server(WIDE_GRACE_SECONDS)
    first = server.login()
    second = refresh(server, first["refresh_token"]).json()
    third = refresh(server, second["refresh_token"]).json()
    replay = refresh(server, first["refresh_token"])
    assert replay.status_code == 401 and "already used" in replay.json()["error_description"]
    assert deployment.revoked_reason(sid_of(first)) == "reuse"
    assert refresh(server, third["refresh_token"]).status_code == 401


def test_the_previous_token_gets_the_current_one_and_a_new_access_token(
    deployment: Deployment,
) -> None:
    server = deployment.server(WIDE_GRACE_SECONDS)
    first = server.login()
    second = refresh(server, first["refresh_token"]).json()
    again = refresh(server, first["refresh_token"])
    assert again.status_code == 200
    assert again.json()["refresh_token"] == second["refresh_token"]
    assert again.json()["access_token"] != second["access_token"]
    assert sid_of(again.json()) == sid_of(first)
    access = again.json()["access_token"]
    me = server.client.get("/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200
    # Once the current token is spent, the first one is two behind: theft.
    refresh(server, second["refresh_token"])
    assert refresh(server, first["refresh_token"]).status_code == 401
    assert deployment.revoked_reason(sid_of(first)) == "reuse"


def test_the_previous_token_after_the_grace_is_theft(deployment: Deployment) -> None:
    server = deployment.server(SHORT_GRACE_SECONDS)
    first = server.login()
    second = refresh(server, first["refresh_token"]).json()
    time.sleep(SHORT_GRACE_SECONDS + 0.5)
    replay = refresh(server, first["refresh_token"])
    assert replay.status_code == 401 and "already used" in replay.json()["error_description"]
    assert deployment.revoked_reason(sid_of(first)) == "reuse"
    assert refresh(server, second["refresh_token"]).status_code == 401


def test_a_retry_after_a_lost_answer_and_a_kill_keeps_the_session(deployment: Deployment) -> None:
    """The refresh committed, the answer never reached the client, the instance died
    (SIGKILL): the client retries the same token on another instance and goes on."""
    survivor = deployment.server(WIDE_GRACE_SECONDS)
    doomed = deployment.detach(0)  # its own grace does not matter: the retry goes elsewhere
    pair = survivor.login()
    lost = refresh(doomed, pair["refresh_token"])
    assert lost.status_code == 200
    doomed.process.kill()
    doomed.process.wait()
    retried = refresh(survivor, pair["refresh_token"])
    assert retried.status_code == 200, retried.text
    assert retried.json()["refresh_token"] == lost.json()["refresh_token"]
    assert sid_of(retried.json()) == sid_of(pair)
    assert deployment.live_refresh_tokens(sid_of(pair)) == 1
    assert refresh(survivor, retried.json()["refresh_token"]).status_code == 200
