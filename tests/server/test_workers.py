"""``jotkit serve --workers 2`` on SQLite and on PostgreSQL: one real deployment per store.

What it shows: requests (refreshes, revocations) land on both workers; a token revoked
through one worker is refused by every worker (``/me`` and introspection) within a bound
(SQLite workers hear each other through the store poll, ``feed_poll_seconds``; PostgreSQL
ones through Redis and PostgreSQL's NOTIFY, the poll slowed past the bound); concurrent
refreshes from both workers never fail with "database is locked" (SQLite) or any 5xx;
``kill -9`` of a worker mid-load loses nothing acknowledged, and the parent replaces it;
SIGTERM stops every worker.
Which worker answered is read from ``/metrics`` (``jotkit_worker``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from servers import (
    DEADLINE_SECONDS,
    PrivateRedis,
    ServerProcess,
    postgres_schema,
    start_server,
)

INTROSPECTION_SECRET = "workers-introspection-secret-" + "x" * 16
# How long a revocation may take to reach the other worker: feed_poll_seconds is 20 ms; the
# margin is for a loaded machine, not a speed requirement.
PROPAGATION_BOUND_SECONDS = 5.0


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One ``jotkit serve --workers 2`` per store, shared by the module's tests."""
    tmp_path = tmp_path_factory.mktemp(f"workers-{request.param}")
    env = {
        "JOTKIT_INTROSPECTION_SECRET": INTROSPECTION_SECRET,
        "JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
    }
    with contextlib.ExitStack() as stack:
        url = None
        if request.param == "postgresql":
            # Here the workers hear each other over Redis and PostgreSQL's NOTIFY (the NOTIFY
            # path alone: tests/revocation/test_server_feed.py): the store poll is slowed past
            # the propagation bound, so the revocation test sees the push paths.
            url = stack.enter_context(postgres_schema())
            redis_server = PrivateRedis(tmp_path)
            redis_server.start()
            stack.callback(redis_server.kill)
            env |= {"JOTKIT_REDIS_URL": redis_server.url, "JOTKIT_FEED_POLL_SECONDS": "600"}
        server = start_server(tmp_path, env=env, args=["--workers", "2"], database_url=url)
        stack.callback(server.stop)
        yield server


def fresh(server: ServerProcess) -> httpx.Client:
    """A client whose every request opens a new connection: the kernel hands each new
    connection to whichever worker accepts first, so requests spread over the workers."""
    return httpx.Client(
        base_url=server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
    )


def scrape(client: httpx.Client) -> tuple[int, dict[str, float]]:
    """(worker index, its counters) from one GET /metrics."""
    text = client.get("/metrics").text
    values = {
        name: float(value)
        for name, value in re.findall(r"^(jotkit_[a-z_]+) ([0-9.e+]+)$", text, re.MULTILINE)
    }
    return int(values["jotkit_worker"]), values


def per_worker(client: httpx.Client, workers: int = 2) -> dict[int, dict[str, float]]:
    """Each worker's counters: scrape until every worker has answered once."""
    seen: dict[int, dict[str, float]] = {}
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(seen) < workers:
        assert time.monotonic() < deadline, f"only workers {sorted(seen)} answered /metrics"
        index, values = scrape(client)
        seen[index] = values
    return seen


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def worker_pids(server: ServerProcess) -> list[int]:
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_refreshes_and_revocations_spread_over_both_workers(deployment: ServerProcess) -> None:
    with fresh(deployment) as client:
        before = per_worker(client)
        pairs = [deployment.login() for _ in range(4)]
        sent = 0

        def refreshed() -> dict[int, float]:
            counts = per_worker(client)
            return {w: counts[w]["jotkit_refreshes_total"] - before[w][
                "jotkit_refreshes_total"] for w in counts}  # fmt: skip

        while min(refreshed().values()) == 0:  # until both workers have rotated tokens
            assert sent < 400, f"refreshes never reached both workers: {refreshed()}"
            for i, pair in enumerate(pairs):
                answer = client.post(
                    "/token/refresh", json={"refresh_token": pair["refresh_token"]}
                )
                assert answer.status_code == 200, answer.text
                pairs[i] = answer.json()
                sent += 1
        assert sum(refreshed().values()) == sent  # every refresh counted once, none lost
        # Each worker froze its own start-up heap out of full collections (their pauses were
        # the tail of refresh latency): the freeze runs in the worker's start-up, not the parent's.
        assert all(v["jotkit_gc_frozen_objects"] > 10_000 for v in per_worker(client).values())

        revoked = 0
        while True:
            counts = per_worker(client)
            if all(
                counts[w]["jotkit_revocations_total"] > before[w]["jotkit_revocations_total"]
                for w in counts
            ):
                break
            assert revoked < 100, "revocations never reached both workers"
            victim = deployment.login()
            answer = client.post(
                "/logout", headers={"Authorization": f"Bearer {victim['access_token']}"}
            )
            assert answer.status_code == 204, answer.text
            revoked += 1


def test_a_token_revoked_through_one_worker_is_refused_by_every_worker(
    deployment: ServerProcess,
) -> None:
    pair = deployment.login()
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    with fresh(deployment) as client:
        before = per_worker(client)
        answer = client.post("/logout", headers=bearer)
        assert answer.status_code == 204, answer.text
        revoked_at = time.monotonic()
        # Keep asking (each request on a new connection, so on either worker) until both
        # workers have refused the token; an acceptance is allowed only within the bound.
        asked = 0
        while True:
            me = client.get("/me", headers=bearer)
            late = time.monotonic() - revoked_at
            assert me.status_code == 401 or late < PROPAGATION_BOUND_SECONDS, (
                f"a worker accepted the revoked token {late:.2f} s after the revocation"
            )
            counts = per_worker(client)
            refused_by = {
                w
                for w in counts
                if counts[w]["jotkit_verify_failures_total"]
                > before[w]["jotkit_verify_failures_total"]
            }
            if refused_by == set(counts):
                break
            asked += 1
            assert asked < 400, f"only workers {refused_by} ever refused the revoked token"
        for _ in range(10):  # and introspection, on whichever worker answers, says inactive
            state = client.post(
                "/introspect",
                data={"token": pair["access_token"]},
                headers={"Authorization": f"Bearer {INTROSPECTION_SECRET}"},
            )
            assert state.status_code == 200, state.text
            assert state.json() == {"active": False}


def test_concurrent_refreshes_and_a_killed_worker_lose_nothing(
    deployment: ServerProcess,
) -> None:
    sessions = [deployment.login() for _ in range(12)]
    latest: list[str] = [pair["refresh_token"] for pair in sessions]
    unknown: set[int] = set()  # sessions whose in-flight refresh died with the worker
    failures: list[str] = []
    stop = threading.Event()

    def refresher(slot: int) -> None:
        with fresh(deployment) as client:
            while not stop.is_set():
                try:
                    answer = client.post("/token/refresh", json={"refresh_token": latest[slot]})
                except httpx.TransportError:
                    unknown.add(slot)  # the outcome is unknown: this session stops here
                    return
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text}")
                    return
                latest[slot] = answer.json()["refresh_token"]

    threads = [threading.Thread(target=refresher, args=(slot,)) for slot in range(12)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # both workers under concurrent refreshes (SQLite: concurrent writers)
    victim, survivor = worker_pids(deployment)
    os.kill(victim, signal.SIGKILL)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert not failures, failures[:5]  # no 5xx, no "database is locked", no false reuse

    # Every acknowledged rotation is stored: each session's last token refreshes.
    with fresh(deployment) as client:
        for slot, token in enumerate(latest):
            if slot in unknown:
                continue
            answer = client.post("/token/refresh", json={"refresh_token": token})
            assert answer.status_code == 200, (slot, answer.text)
        # The parent replaced the killed worker; the survivor kept serving.
        until(lambda: len(worker_pids(deployment)) == 2, "the killed worker was not replaced")
        pids = worker_pids(deployment)
        assert survivor in pids and victim not in pids
        assert len(per_worker(client)) == 2
        assert client.get("/readyz").status_code == 200


def test_sigterm_stops_every_worker(deployment: ServerProcess) -> None:
    # Last in the module: it ends the shared deployment.
    pids = worker_pids(deployment)
    assert len(pids) == 2
    deployment.process.send_signal(signal.SIGTERM)
    assert deployment.process.wait(DEADLINE_SECONDS) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
