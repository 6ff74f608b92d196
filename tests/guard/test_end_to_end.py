"""The guard against a real ``jotkit serve``: discovery, /login tokens, logout through the feed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _apps import fastapi_app, serve_asgi

from jotkit import RevokedToken
from jotkit.guard import Guard
from jotkit.revocation import RevocationSet
from jotkit.revocation.http import HttpFeedSubscriber
from servers import DEADLINE_SECONDS, ServerProcess, free_port, start_server


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # One server for the module: each test logs in afresh, so its session is its own.
    server = start_server(tmp_path_factory.mktemp("auth"))
    yield server
    server.stop()


def _wait_until_revoked(guard: Guard, token: str) -> None:
    """The feed is a long poll: wait for the logout's entry to reach the guard."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        try:
            guard.verify(token)
        except RevokedToken:
            return
        assert time.monotonic() < deadline, "the logout never reached the guard"
        time.sleep(0.05)


def test_guard_discovers_keys_and_verifies_a_login_token(auth_server: ServerProcess) -> None:
    guard = Guard(issuer=auth_server.url, audience="jotkit")
    try:
        claims = guard.verify(auth_server.login()["access_token"])
        assert claims.sid and claims.jti and claims.sub
        assert (
            guard.jwks is not None and guard.jwks.url == auth_server.url + "/.well-known/jwks.json"
        )
    finally:
        guard.close()


def test_logout_reaches_the_guard_through_the_http_feed(auth_server: ServerProcess) -> None:
    revocations = RevocationSet(max_staleness_seconds=60)
    feed = HttpFeedSubscriber(auth_server.url, revocations, wait_seconds=5)
    guard = Guard(issuer=auth_server.url, audience="jotkit", revocation=revocations, feed=feed)
    guard.start()
    try:
        # A new set with a staleness bound refuses every token until the feed's first answer.
        assert feed.wait_ready(DEADLINE_SECONDS), "the revocation feed never answered"
        token = auth_server.login()["access_token"]
        with serve_asgi(fastapi_app(guard)) as service:
            headers = {"Authorization": f"Bearer {token}"}
            assert httpx.get(service + "/me", headers=headers).status_code == 200
            logout = auth_server.client.post("/logout", headers=headers)
            assert logout.status_code in (200, 204), logout.text
            _wait_until_revoked(guard, token)
            answer = httpx.get(service + "/me", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["code"] == "ERR_JWT_REVOKED"
    finally:
        guard.close()


REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLES = {
    "fastapi": [str(BIN / "uvicorn"), "--app-dir", "examples", "fastapi_service:app", "--port"],
    "flask": [str(BIN / "flask"), "--app", "examples/flask_service", "run", "--port"],
}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_service_runs_by_its_documented_command(
    auth_server: ServerProcess, example: str, tmp_path: Path
) -> None:
    port = free_port()
    log = (tmp_path / f"{example}.log").open("wb")
    service = subprocess.Popen(
        [*EXAMPLES[example], str(port)],
        cwd=REPO,
        env={**os.environ, "JOTKIT_ISSUER": auth_server.url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert service.poll() is None, (tmp_path / f"{example}.log").read_text()
            try:
                # Ready = the revocation feed has loaded; until then tokens are refused.
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the example service did not start"
            time.sleep(0.1)
        assert httpx.get(url + "/hello").json() == {"hello": "world"}
        headers = {"Authorization": f"Bearer {auth_server.login()['access_token']}"}
        me = httpx.get(url + "/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["sub"]
        assert httpx.get(url + "/admin", headers=headers).status_code == 403
        assert httpx.get(url + "/me").status_code == 401
    finally:
        service.terminate()
        service.wait(15)
        log.close()


def test_a_guard_never_started_starts_its_feed_on_the_first_request(
    auth_server: ServerProcess,
) -> None:
    # No guard.start(): without the first request starting the feed, an unbounded set would
    # let the revoked token through for ever.
    revocations = RevocationSet()
    feed = HttpFeedSubscriber(auth_server.url, revocations, wait_seconds=5)
    guard = Guard(issuer=auth_server.url, audience="jotkit", revocation=revocations, feed=feed)
    try:
        token = auth_server.login()["access_token"]
        assert guard.verify(token).jti  # fetches the keys and starts the feed
        assert feed.wait_ready(DEADLINE_SECONDS), "the first request did not start the feed"
        logout = auth_server.client.post("/logout", headers={"Authorization": f"Bearer {token}"})
        assert logout.status_code == 204, logout.text
        _wait_until_revoked(guard, token)
    finally:
        guard.close()
