"""HTTP routes for operators: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from jotkit.server.dependencies import Service
from jotkit.server.errors import ApiError, JsonResponse

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", tags=["operations"])
async def healthz() -> JsonResponse:
    """The process is up."""
    return JsonResponse({"status": "ok"})


@router.get("/readyz", tags=["operations"])
async def readyz(service: Service) -> JsonResponse:
    """The store answers and a signing key is loaded."""
    if not await asyncio.to_thread(service.store.ping):
        raise ApiError("unavailable", "the database does not answer")
    return JsonResponse({"status": "ready", "cursor": service.feed.cursor})


@router.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
async def metrics(service: Service) -> PlainTextResponse:
    """Prometheus metrics."""
    feed = service.feed
    revocations = feed.revocations
    text = service.metrics.render(
        [
            ("jotkit_revocation_entries", "Live revocation entries in memory.", len(revocations)),
            ("jotkit_revocation_feed_cursor", "The feed's cursor in this process.", feed.cursor),
            (
                "jotkit_revocation_feed_polls",
                "GET /revocations long-polls held right now.",
                feed.polls,
            ),
            (
                "jotkit_signing_keys",
                "Published signing keys.",
                len(service.keyring.verification_keys),
            ),
        ]
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
