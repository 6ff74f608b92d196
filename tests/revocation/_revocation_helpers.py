"""Real parts for the revocation transport tests: a scripted feed server, clocks, polling.

``PrivateRedis`` (tests/servers.py) is a redis-server this test owns, so it can be killed and
restarted without touching the shared one on 6379. ``ScriptedFeedServer`` is a small real
Starlette app served by uvicorn that speaks the auth server's ``GET /revocations`` protocol
and can be told to misbehave (errors, malformed bodies) as the real server never does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jotkit.jose.errors import JoseError
from jotkit.revocation import Revocation, RevocationSet
from servers import DEADLINE_SECONDS, free_port

SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"


def wait_for(predicate: Callable[[], object], what: str, timeout: float = DEADLINE_SECONDS) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` if it never becomes true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:g} s waiting for: {what}")
        time.sleep(0.005)


def verdict(revocations: RevocationSet, claims: Mapping[str, Any]) -> str:
    """``"accepted"`` or the error code ``is_revoked`` raises for these claims."""
    try:
        revocations.is_revoked(claims)
    except JoseError as error:
        return error.code
    return "accepted"


def entry(kind: str, value: str, cursor: int, *, not_before: float = 0) -> Revocation:
    """A stored-looking entry that stays live for an hour."""
    return Revocation(kind, value, time.time() + 3600, not_before, cursor)  # type: ignore[arg-type]


class ManualClock:
    """A monotonic clock the test moves by hand, so staleness needs no real waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedFeedServer:
    """A real HTTP server speaking the revocation feed protocol, fed by the test.

    ``add()`` stores entries with the next cursor; ``status`` / ``body`` make it answer
    errors or malformed bodies; ``holding`` counts long-polls currently held.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[Revocation] = []
        self.base_cursor = 0
        self.status = 200
        self.body: Any = None
        self.holding = 0
        self.requests: list[dict[str, str]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/revocations", self._revocations)])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def add(self, kind: str, value: str, *, not_before: float = 0) -> Revocation:
        """Store one entry under the next cursor and return it."""
        with self._lock:
            cursor = self.base_cursor + len(self.entries) + 1
            stored = entry(kind, value, cursor, not_before=not_before)
            self.entries.append(stored)
            return stored

    def cursor(self) -> int:
        with self._lock:
            return self.entries[-1].cursor if self.entries else self.base_cursor

    def since(self, cursor: int) -> list[Revocation]:
        with self._lock:
            return [e for e in self.entries if e.cursor > cursor]

    async def _revocations(self, request: Request) -> Response:
        self.requests.append(dict(request.query_params))
        if self.status != 200:
            return JSONResponse({"error": "unavailable"}, status_code=self.status)
        if self.body is not None:
            return Response(self.body, media_type="application/json")
        since = int(request.query_params.get("since", "0"))
        wait = float(request.query_params.get("wait", "0"))
        deadline = time.monotonic() + wait
        self.holding += 1
        try:
            while not self.since(since) and time.monotonic() < deadline:
                if await request.is_disconnected():
                    break
                await asyncio.sleep(0.01)
        finally:
            self.holding -= 1
        return JSONResponse(
            {
                "cursor": self.cursor(),
                "entries": [e.to_json() for e in self.since(since)],
                "heartbeat_seconds": 1.0,
                "now": time.time(),
            }
        )

    def start(self) -> None:
        self._thread.start()
        wait_for(lambda: self._server.started, "the feed stub to listen")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(DEADLINE_SECONDS)
