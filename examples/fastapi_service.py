"""A FastAPI service whose endpoints are protected by the jotkit guard.

It trusts the auth server at JOTKIT_ISSUER (default http://127.0.0.1:8000): keys by discovery
(/.well-known/openid-configuration -> jwks_uri), audience "jotkit", and the server's
revocation feed (GET /revocations) so a logout is refused here within a second or so.

Run it (with ``jotkit serve`` running), from the repository root:

    .venv/bin/uvicorn --app-dir examples fastapi_service:app --port 8001

then ``curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8001/me``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from jotkit.guard import Claims, Guard, JWKSUnavailable
from jotkit.guard.asgi import install_error_handler
from jotkit.revocation import RevocationSet

ISSUER = os.environ.get("JOTKIT_ISSUER", "http://127.0.0.1:8000")
logger = logging.getLogger("fastapi_service")

# Fail closed: once the feed has been silent for a minute, tokens are refused (503) because a
# revocation might have been missed. The feed's heartbeats keep it fresh when all is well.
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


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    try:
        guard.start()
    except JWKSUnavailable as exc:  # the first request will try again
        logger.warning("auth server not reachable yet: %s", exc)
    yield
    guard.close()


app = FastAPI(title="jotkit-protected FastAPI service", lifespan=lifespan)
install_error_handler(app)  # refusals as {"error", "error_description", "code"}

User = Annotated[Claims, Depends(guard.require())]


@app.get("/hello")
async def hello() -> dict[str, str]:
    """Public: no token needed."""
    return {"hello": "world"}


@app.get("/me")
async def me(claims: User) -> dict[str, Any]:
    """Who the access token speaks for."""
    return {"sub": claims.sub, "sid": claims.sid, "scope": sorted(claims.scope)}


@app.get("/admin")
async def admin(
    claims: Annotated[Claims, Depends(guard.require(scopes=["admin"]))],
) -> dict[str, str]:
    """Needs the ``admin`` scope: other valid tokens get 403 insufficient_scope."""
    return {"sub": claims.sub, "role": "admin"}
