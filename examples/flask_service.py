"""A Flask service whose views are protected by the jotkit guard.

It trusts the auth server at JOTKIT_ISSUER (default http://127.0.0.1:8000): keys by discovery,
audience "jotkit", and the server's revocation feed: over Redis when JOTKIT_REDIS_URL is set
(the Redis ``jotkit serve`` publishes to), otherwise the server's HTTP long-poll
(GET /revocations).

Run it (with ``jotkit serve`` running), from the repository root:

    .venv/bin/flask --app examples/flask_service run --port 8002

(prefix it with ``JOTKIT_REDIS_URL=redis://127.0.0.1:6379/0`` when the server publishes there),
then ``curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8002/me``.

DPoP-bound tokens (RFC 9449) are accepted with their proof; JOTKIT_PUBLIC_URL names the URL
clients call when a proxy stands in front, and with JOTKIT_REDIS_URL every process serving the
API shares one memory of used proofs, so a proof is refused the second time wherever it goes.
JOTKIT_DPOP_NONCE_SECRET turns on resource-server nonces (``DPoP-Nonce``, RFC 9449 §9).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, g

from jotkit.guard import DPoPNonces, Feed, Guard, JWKSUnavailable
from jotkit.revocation import RevocationSet
from jotkit.revocation.http import HttpFeedSubscriber

ISSUER = os.environ.get("JOTKIT_ISSUER", "http://127.0.0.1:8000")
REDIS_URL = os.environ.get("JOTKIT_REDIS_URL", "")
# The scheme://host[:port] clients call, when a proxy in front changes what this app sees:
# DPoP proofs (RFC 9449) name that URL. Unset: the URL each request arrives with.
PUBLIC_URL = os.environ.get("JOTKIT_PUBLIC_URL") or None
# RFC 9449 §9: with JOTKIT_DPOP_NONCE_SECRET (32 bytes or more, the same in every process of
# this API) a proof must carry a nonce this API handed out, so none can be made in advance.
NONCE_SECRET = os.environ.get("JOTKIT_DPOP_NONCE_SECRET", "")
# How long the revocation feed may stay silent before tokens are refused (fail closed).
MAX_STALENESS_SECONDS = float(os.environ.get("JOTKIT_MAX_STALENESS_SECONDS", "60"))
logger = logging.getLogger("flask_service")

# Fail closed after a minute without hearing from the feed (see docs/guard.md).
revocations = RevocationSet(max_staleness_seconds=MAX_STALENESS_SECONDS)
feed: Feed
if REDIS_URL:
    # Imported here: redis-py (the "redis" extra) is only needed when Redis carries the feed.
    from jotkit.revocation.redis import RedisSubscriber

    feed = RedisSubscriber(REDIS_URL, revocations)
else:
    feed = HttpFeedSubscriber(ISSUER, revocations)
# A DPoP proof works once: the guard remembers its jti for the proof's lifetime. Processes
# serving this API side by side must share that memory (Redis when JOTKIT_REDIS_URL is set),
# or a proof used at one could be replayed at another.
guard = Guard(
    issuer=ISSUER,
    audience="jotkit",
    revocation=revocations,
    feed=feed,
    dpop_replay=REDIS_URL or None,
    public_url=PUBLIC_URL,
    dpop_nonces=DPoPNonces(NONCE_SECRET.encode()) if NONCE_SECRET else None,
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


@app.get("/readyz")
def readyz() -> tuple[dict[str, bool], int]:
    """Ready once the revocation feed has loaded: until then every token is refused (503)."""
    ready = not revocations.is_stale
    return {"ready": ready}, 200 if ready else 503


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
