"""SIGTERM ends held ``GET /revocations`` long-polls with a proper answer (issue 17 item 4).

Before, uvicorn cancelled them at the end of its graceful timeout: a plain-text 500, and a
"poll failed (HTTP 500)" warning at every guard on every deploy.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from _revocation_helpers import verdict, wait_for

from jotkit.jose.jwt import peek
from jotkit.revocation import RevocationSet
from jotkit.revocation.http import HttpFeedSubscriber
from servers import DEADLINE_SECONDS, ServerProcess, start_server


def held_polls(server: ServerProcess) -> float:
    for line in server.client.get("/metrics").text.splitlines():
        if line.startswith("jotkit_revocation_feed_polls "):
            return float(line.split()[1])
    pytest.fail("/metrics has no jotkit_revocation_feed_polls gauge")


def restarting_said(caplog: pytest.LogCaptureFixture) -> bool:
    return any("server restarting" in r.getMessage() for r in caplog.records)


def expire_newest_entry(database: Path, cursor: int) -> int:
    """Store an already expired entry above ``cursor``, as a crashed writer's last one."""
    newest = cursor + 7
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO revocations (id, kind, value, not_before, forget_after, created_at)"
            " VALUES (?, 'jti', 'long-gone', 0, ?, ?)",
            (newest, time.time() - 60, time.time() - 1000),
        )
    return newest


def test_sigterm_answers_held_polls_and_the_guard_logs_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jotkit.revocation")
    server = start_server(tmp_path)
    revocations = RevocationSet()
    subscriber = HttpFeedSubscriber(server.url, revocations, wait_seconds=25)
    answers: list[httpx.Response] = []

    def hold() -> None:
        cursor = server.client.get("/revocations").json()["cursor"]
        with httpx.Client(timeout=DEADLINE_SECONDS + 30) as client:
            answers.append(client.get(f"{server.url}/revocations?since={cursor}&wait=25"))

    poll = threading.Thread(target=hold)
    restarted = None
    try:
        subscriber.start()
        assert subscriber.wait_ready(DEADLINE_SECONDS)
        poll.start()
        wait_for(lambda: held_polls(server) >= 2, "the subscriber's poll and ours to be held")

        server.process.send_signal(signal.SIGTERM)
        poll.join(DEADLINE_SECONDS)
        assert answers, "the held poll got no answer"
        answer = answers[0]
        assert answer.status_code == 200, answer.text
        body = answer.json()
        # Answered by the shutdown, not by its 25 s hold running out.
        assert body["closing"] is True
        assert body["entries"] == []
        assert isinstance(body["cursor"], int)
        server.process.wait(DEADLINE_SECONDS)
        log = server.log()
        assert "Cancel" not in log, log  # uvicorn cancelled nothing at its graceful timeout
        assert "Exception in ASGI application" not in log, log

        # The guard's subscriber took its closing answer and polls again: the server is down
        # for the restart, which is said at INFO, not as a warning on every deploy.
        wait_for(lambda: restarting_said(caplog), "the subscriber to poll the stopped server")
        complaints = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert not complaints, complaints

        # While it is down, the newest entry expires: the restarted server's cursor must not
        # go back below it, or subscribers take the store for a new one and read it all again.
        expired = expire_newest_entry(tmp_path / "jotkit.db", body["cursor"])

        # The deploy goes on: the same server comes back, and the guard follows it again.
        restarted = start_server(tmp_path, port=int(server.url.rsplit(":", 1)[1]))
        assert restarted.client.get("/revocations").json()["cursor"] == expired
        pair = restarted.login()
        answer = restarted.client.post(
            "/logout", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
        assert answer.status_code == 204, answer.text
        claims = peek(pair["access_token"])[1]
        wait_for(
            lambda: verdict(revocations, claims) == "ERR_JWT_REVOKED",
            "a logout on the restarted server to reach the guard",
        )
    finally:
        subscriber.close()
        server.stop()
        if restarted is not None:
            restarted.stop()
        poll.join(DEADLINE_SECONDS)
