"""HTTP routes for operators: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
import gc

from fastapi import APIRouter, Request
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
async def metrics(request: Request, service: Service) -> PlainTextResponse:
    """Prometheus metrics (of the one process that answers: under ``--workers``, the
    ``jotkit_worker`` gauge says which)."""
    feed = service.feed
    revocations = feed.revocations
    text = service.metrics.render(
        [
            (
                "jotkit_worker",
                "Index of the worker process answering (jotkit serve --workers; else 0).",
                request.app.state.worker,
            ),
            ("jotkit_revocation_entries", "Live revocation entries in memory.", len(revocations)),
            ("jotkit_revocation_feed_cursor", "The feed's cursor in this process.", feed.cursor),
            (
                "jotkit_revocation_feed_polls",
                "GET /revocations long-polls held right now.",
                feed.http.polls,
            ),
            (
                "jotkit_revocation_set_full",
                "1 while tokens are refused because the revocation set is full.",
                int(revocations.is_full),
            ),
            (
                "jotkit_revocation_entries_not_held",
                "Revocation entries not held because the set was full (since start).",
                revocations.not_held,
            ),
            (
                "jotkit_gc_frozen_objects",
                "Objects built at start-up that garbage collection no longer walks.",
                gc.get_freeze_count(),
            ),
            (
                "jotkit_gc_full_collections",
                "Full (oldest generation) garbage collections since start.",
                gc.get_stats()[2]["collections"],
            ),
            (
                "jotkit_signing_keys",
                "Published signing keys.",
                len(service.keyring.verification_keys),
            ),
        ]
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
