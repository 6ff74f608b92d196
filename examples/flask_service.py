"""A Flask service whose views are protected by the jotkit guard.

It trusts the auth server at JOTKIT_ISSUER (default http://127.0.0.1:8000): keys by discovery,
audience "jotkit", and the server's revocation feed (GET /revocations).

Run it (with ``jotkit serve`` running), from the repository root:

    .venv/bin/flask --app examples/flask_service run --port 8002

then ``curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8002/me``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, g

from jotkit.guard import Guard, JWKSUnavailable
from jotkit.revocation import RevocationSet

ISSUER = os.environ.get("JOTKIT_ISSUER", "http://127.0.0.1:8000")
logger = logging.getLogger("flask_service")

# Fail closed after a minute without hearing from the feed (see docs/guard.md).
revocations = RevocationSet(max_staleness_seconds=60)
try:
    from jotkit.revocation.http import HttpFeedSubscriber

    feed: HttpFeedSubscriber | None = HttpFeedSubscriber(ISSUER, revocations)
except ImportError:  # a jotkit without the HTTP feed: verify signatures and claims only
    feed = None
guard = Guard(
    issuer=ISSUER,
    audience="jotkit",
    revocation=revocations if feed is not None else None,
    feed=feed,
)
try:
    guard.start()  # the feed runs in a daemon thread for the life of the process
except JWKSUnavailable as exc:  # the first request will try again
    logger.warning("auth server not reachable yet: %s", exc)

app = Flask(__name__)


@app.get("/hello")
def hello() -> dict[str, str]:
    """Public: no token needed."""
    return {"hello": "world"}


@app.get("/me")
@guard.flask_required()
def me() -> dict[str, Any]:
    """Who the access token speaks for."""
    return {"sub": g.claims.sub, "sid": g.claims.sid, "scope": sorted(g.claims.scope)}


@app.get("/admin")
@guard.flask_required(scopes=["admin"])
def admin() -> dict[str, str]:
    """Needs the ``admin`` scope: other valid tokens get 403 insufficient_scope."""
    return {"sub": g.claims.sub, "role": "admin"}
